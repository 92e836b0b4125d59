"""Detect breaking changes between two JSON Schemas of the same major version.

Breaking: a property removed or renamed, a property's type or constraints changed, a new required field.
Adding an optional field is fine (consumers ignore unknown fields). Descriptions and titles don't matter.
"""

from __future__ import annotations

from typing import Any

_IGNORED = {"title", "description", "examples", "default", "$id", "x-ce-type", "x-kafka-topic", "$defs"}
_COMPOSITE = ("anyOf", "oneOf", "allOf", "prefixItems")


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    found: list[str] = []
    _compare(old, new, "", old.get("$defs", {}), new.get("$defs", {}), found)
    return found


def _compare(
    old: dict[str, Any],
    new: dict[str, Any],
    path: str,
    old_defs: dict[str, Any],
    new_defs: dict[str, Any],
    out: list[str],
) -> None:
    old, new = _resolve(old, old_defs), _resolve(new, new_defs)
    here = path or "<root>"
    if "properties" in old or "properties" in new:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        for name, schema in old_props.items():
            if name not in new_props:
                out.append(f"{path}.{name}: removed or renamed")
            else:
                _compare(schema, new_props[name], f"{path}.{name}", old_defs, new_defs, out)
        for name in sorted(set(new.get("required", [])) - set(old.get("required", []))):
            out.append(f"{path}.{name}: new required field")
        return
    for key in _COMPOSITE:
        if key in old or key in new:
            olds, news = old.get(key, []), new.get(key, [])
            if len(olds) != len(news):
                out.append(f"{here}: {key} changed")
                return
            for i, (o, n) in enumerate(zip(olds, news, strict=True)):
                _compare(o, n, f"{path}[{key}{i}]", old_defs, new_defs, out)
            return
    if "items" in old or "items" in new:
        _compare(old.get("items", {}), new.get("items", {}), f"{path}[]", old_defs, new_defs, out)
    o = {k: v for k, v in old.items() if k not in _IGNORED and k != "items"}
    n = {k: v for k, v in new.items() if k not in _IGNORED and k != "items"}
    if o != n:
        out.append(f"{here}: type or constraints changed from {o} to {n}")

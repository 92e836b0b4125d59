"""Render a kustomization without kustomize: the small subset deploy/k8s uses, and nothing more.

kustomize is neither a Debian nor a PyPI package, so the offline checks render the manifests themselves.
Supported: `resources` (files, or folders with a kustomization.yaml), `images` (name/newName/newTag),
`replicas`, `patches` with a JSON 6902 `patch` and a `target` (kind, name), and strategic-merge patch
files that only say `$patch: delete`. Any other field fails loudly, so this can never silently render
something kustomize would render differently; check_deploy.sh also compares the result with
`kubectl kustomize` where kubectl happens to be installed.

    python render_kustomize.py DIR [--json]     # multi-document YAML (or a JSON list) on stdout
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "images", "replicas", "patches"}
Doc = dict[str, Any]


class Unsupported(Exception):
    pass


def _load_docs(path: Path) -> list[Any]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _key(doc: Doc) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")]


def _json6902(doc: Doc, ops: list[Doc]) -> None:
    for op in ops:
        *parents, last = _pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        kind = op["op"]
        if isinstance(node, list):
            index = len(node) if last == "-" else int(last)
            if kind == "add":
                node.insert(index, op["value"])
            elif kind == "replace":
                node[index] = op["value"]
            elif kind == "remove":
                del node[index]
            else:
                raise Unsupported(f"JSON patch op {kind!r}")
        else:
            if kind in ("replace", "remove") and last not in node:
                raise KeyError(f"JSON patch {kind} {op['path']}: no such path")
            if kind in ("add", "replace"):
                node[last] = op["value"]
            elif kind == "remove":
                del node[last]
            else:
                raise Unsupported(f"JSON patch op {kind!r}")


def _set_image(container: Doc, images: list[Doc]) -> None:
    ref = container["image"]
    name, _, tag = ref.partition(":") if "@" not in ref else (ref, "", "")
    for image in images:
        if image["name"] == name:
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}".rstrip(":")


def render(folder: Path) -> list[Doc]:
    spec = yaml.safe_load((folder / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise Unsupported(f"{folder}/kustomization.yaml: {sorted(unknown)} not supported by this renderer")
    docs: list[Doc] = []
    for entry in spec.get("resources", []):
        target = (folder / entry).resolve()
        docs += render(target) if target.is_dir() else _load_docs(target)
    for patch in spec.get("patches", []):
        if "target" in patch:
            selector = patch["target"]
            if set(selector) - {"kind", "name"}:
                raise Unsupported(f"patch target {selector}")
            ops: list[Doc] = (
                yaml.safe_load(patch["patch"]) if "patch" in patch else _load_docs(folder / patch["path"])[0]
            )
            matched = [
                d
                for d in docs
                if d["kind"] == selector.get("kind", d["kind"])
                and d["metadata"]["name"] == selector.get("name", d["metadata"]["name"])
            ]
            if not matched:
                raise KeyError(f"patch target {selector} matches nothing")
            for d in matched:
                _json6902(d, ops)
        else:
            for smp in _load_docs(folder / patch["path"]):
                if smp.get("$patch") != "delete":
                    raise Unsupported(
                        f"{patch['path']}: only `$patch: delete` strategic merges are supported"
                    )
                before = len(docs)
                docs = [d for d in docs if _key(d) != _key(smp)]
                if len(docs) == before:
                    raise KeyError(f"{patch['path']}: {_key(smp)} not found")
    for replica in spec.get("replicas", []):
        matched = [
            d for d in docs if d["metadata"]["name"] == replica["name"] and "replicas" in d.get("spec", {})
        ]
        if not matched:
            raise KeyError(f"replicas: no workload named {replica['name']}")
        for d in matched:
            d["spec"]["replicas"] = replica["count"]
    for d in docs:
        pod = d.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            _set_image(container, spec.get("images", []))
    keys = [_key(d) for d in docs]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise ValueError(f"{folder}: duplicate resources {sorted(duplicates)}")
    return copy.deepcopy(docs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of YAML")
    args = parser.parse_args(argv)
    try:
        docs = render(args.folder)
    except (Unsupported, KeyError, ValueError, OSError, yaml.YAMLError) as exc:
        print(f"render_kustomize: {args.folder}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        json.dump(docs, sys.stdout, indent=1)
    else:
        yaml.safe_dump_all(docs, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""An immutable JSON snapshot of an issued document, kept 5 years beside its XML and PDF.

Canonical JSON (sorted keys, no whitespace variance, amounts as integer øre, dates ISO) so the same
document always gives the same bytes, and a SHA-256 of those bytes can be stored as its fingerprint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import date
from enum import Enum
from typing import Any

from ..domain.documents import Document

SNAPSHOT_SCHEMA_VERSION = 1


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def snapshot_dict(document: Document) -> dict[str, Any]:
    body = _plain(document)
    body["kind"] = document.kind.value
    body["uuid"] = document.uuid
    body["totals"].update(
        vat_total_oere=document.totals.vat_total_oere,
        total_excl_vat_oere=document.totals.total_excl_vat_oere,
        total_incl_vat_oere=document.totals.total_incl_vat_oere,
    )
    return {"schema_version": SNAPSHOT_SCHEMA_VERSION, "document": body}


def render_snapshot(document: Document) -> bytes:
    return json.dumps(
        snapshot_dict(document), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()


def snapshot_sha256(snapshot: bytes) -> str:
    return hashlib.sha256(snapshot).hexdigest()

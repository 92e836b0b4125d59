"""Generate the committed JSON Schema and example file of every event type.

Run `python -m komponent_contracts.schema_files` after changing a model; a test fails while the committed
files differ from what the models generate, and another fails on a breaking change within a major version.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from komponent_contracts.events import EVENT_TYPES
from komponent_contracts.examples import all_examples

CONTRACTS_DIR = Path(__file__).resolve().parents[2]
SCHEMA_DIR = CONTRACTS_DIR / "schemas"
EXAMPLE_DIR = CONTRACTS_DIR / "examples"


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def expected_files() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for ce_type, model in sorted(EVENT_TYPES.items()):
        schema = model.model_json_schema(mode="serialization")
        schema["$id"] = f"https://schemas.komponent.dk/events/{ce_type}.json"
        schema["x-ce-type"] = ce_type
        schema["x-kafka-topic"] = model.topic
        files[SCHEMA_DIR / f"{ce_type}.schema.json"] = _dump(schema)
    for event in all_examples():
        files[EXAMPLE_DIR / f"{event.ce_type}.json"] = _dump(json.loads(event.model_dump_json()))
    return files


def main() -> int:
    for path, text in expected_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"wrote {path.relative_to(CONTRACTS_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

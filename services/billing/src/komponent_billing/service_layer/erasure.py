"""ParticipantDataErased: billing anonymises its registration projection and keeps its documents.

Issued invoices and credit notes are accounting records (bogføringsloven: kept 5 years, unaltered), and
the participant named on an invoice line is part of the record, so `billing_document` (XML, PDF, snapshot)
is never touched; the erasure's legal basis is art. 17(3)(b) GDPR. Everything else billing holds about
the participant goes: the projection's participant becomes the placeholder, and buyer fields that repeat
the participant's own data are scrubbed. A registration erased before its invoice run is invoiced with
the placeholder name.
"""

from __future__ import annotations

import json
from typing import Any

from komponent_contracts.erasure import erased_participant, personal_values, scrub
from komponent_contracts.events import ParticipantDataErased
from komponent_runtime.database import Connection

from ..adapters import repository


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def on_participant_data_erased(conn: Connection, event: ParticipantDataErased) -> None:
    replaced = []
    for row in await repository.registration_people(conn, event.registration_ids):
        mine = personal_values(_json(row["participant"]), with_job_title=False)
        rid = row["registration_id"]
        replaced.append((rid, erased_participant(rid), scrub(_json(row["buyer"]), mine, rid)))
    await repository.replace_registration_people(conn, replaced)

"""ParticipantDataErased: anonymise what notifications holds about the erased registrations.

The projection's participant becomes the placeholder; every send-ledger row of the course has the
participant's name, address, phone and job title scrubbed from its recipient, render data and SMTP reply,
so the email log still shows which email was sent when (ids, kind, status, timestamps), not to whom.
A not yet sent email to an erased participant is given up (failed), never sent to the placeholder.
"""

from __future__ import annotations

import json
from typing import Any

from komponent_contracts import events as ev
from komponent_contracts.erasure import erased_participant, personal_values, scrub
from komponent_runtime import outbox
from komponent_runtime.database import Connection

from ..adapters import repository as repo


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


async def erase(conn: Connection, event: ev.ParticipantDataErased) -> None:
    personal: set[str] = set()  # what identifies them in text shared with others (no job title)
    own: set[str] = set()  # in the erased registrations' own emails, the job title too
    replaced = []
    for row in await repo.projected_people(conn, event.registration_ids):
        participant = _json(row["participant"])
        mine = personal_values(participant)
        own |= mine
        personal |= personal_values(participant, with_job_title=False)
        buyer = _json(row["buyer"]) if row["buyer"] else None
        replaced.append(
            (
                row["registration_id"],
                erased_participant(row["registration_id"]),
                None if buyer is None else scrub(buyer, mine, row["registration_id"]),
            )
        )
    await repo.replace_people(conn, replaced)
    if not personal:
        return
    erased_ids = set(event.registration_ids)
    ledger = []
    for row in await repo.course_ledger(conn, event.course_id):
        values = own if row["registration_id"] in erased_ids else personal
        data = _json(row["render_data"])
        new_data = scrub(data, values, row["email_id"])
        new_recipient = scrub(row["recipient"], values, row["email_id"])
        new_reply = scrub(row["last_reply"], values, row["email_id"]) if row["last_reply"] else None
        cancel = row["registration_id"] in erased_ids and new_recipient != row["recipient"]
        if (new_data, new_recipient, new_reply) != (data, row["recipient"], row["last_reply"]):
            ledger.append((row["id"], new_recipient, new_data, new_reply, cancel))
    await repo.replace_ledger_rows(conn, ledger)
    documents = []
    for row in await repo.course_documents(conn, event.course_id):
        doc = _json(row["document"])
        new_doc = scrub(doc, personal, row["document_id"])
        if new_doc != doc:
            documents.append((row["document_id"], new_doc))
    await repo.replace_documents(conn, documents)
    # Published EmailSent/EmailFailed rows name the recipient: history only, so they go.
    await outbox.forget_published(conn, sorted(p for p in personal if "@" in p))

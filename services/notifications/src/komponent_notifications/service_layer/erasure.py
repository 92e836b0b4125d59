"""ParticipantDataErased: anonymise what notifications holds about the erased registrations.

The projection's participant becomes the placeholder; every send-ledger row of the course has the
participant's name, address, phone and job title scrubbed from its recipient, render data and SMTP reply,
so the email log still shows which email was sent when (ids, kind, status, timestamps), not to whom.
A not yet sent email to an erased participant is given up (failed), never sent to the placeholder.

FormerParticipantDataErased: the same for a participant who handed registrations over to colleagues. The
registrations stay the colleagues'; the person is found by the substitution: the recipient (and the
participant in the render data) of the email that told them about it (`substituted_out`, caused by the
named `ParticipantSubstituted`). Their own emails on those registrations lose their data and, if not
yet sent, are given up; the colleagues' emails only lose the mentions of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from uuid import UUID

from komponent_contracts import events as ev
from komponent_contracts.erasure import erased_participant, personal_values, scrub
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
    erased_ids = set(event.registration_ids)
    await _scrub_course(
        conn,
        event.course_id,
        personal,
        lambda row: own if row["registration_id"] in erased_ids else personal,
        lambda row: row["registration_id"] in erased_ids,
    )


async def erase_former(conn: Connection, event: ev.FormerParticipantDataErased) -> None:
    """Scrub the people the named substitutions replaced from the course's emails (module docstring)."""
    personal: set[str] = set()
    own: dict[tuple[UUID, str], set[str]] = {}  # (registration, their address) -> with the job title
    substitutions: dict[UUID, UUID] = {}  # ParticipantSubstituted event -> its registration
    handed_over = [(h.registration_id, h.substitution_event_id) for h in event.handed_over]
    for row in await repo.told_of_substitution(conn, handed_over):
        participant = _json(row["render_data"]).get("participant")
        own[(row["registration_id"], row["recipient"].lower())] = personal_values(participant)
        personal |= personal_values(participant, with_job_title=False)
        substitutions[row["caused_by"]] = row["registration_id"]

    def theirs(row: Any) -> bool:
        return (row["registration_id"], row["recipient"].lower()) in own

    def values_for(row: Any) -> set[str]:
        # Their own emails lose their job title too; everyone's lose their name and address.
        return own[(row["registration_id"], row["recipient"].lower())] | personal if theirs(row) else personal

    def without_them(row: Any, data: Any) -> Any:
        # The substitution's emails (theirs and the colleague's) carry the event, whose
        # `previous_participant` is all theirs, job title included: replaced whole.
        registration_id = substitutions.get(row["caused_by"])
        if registration_id is not None and isinstance(data.get("event"), dict):
            if "previous_participant" in data["event"]:
                scrubbed = {**data["event"], "previous_participant": erased_participant(registration_id)}
                return {**data, "event": scrubbed}
        return data

    await _scrub_course(conn, event.course_id, personal, values_for, theirs, without_them)


async def _scrub_course(
    conn: Connection,
    course_id: UUID,
    personal: set[str],
    values_for: Callable[[Any], set[str]],
    addressed_to_erased: Callable[[Any], bool],
    reshape: Callable[[Any, Any], Any] = lambda row, data: data,
) -> None:
    """Scrub the erased people's values from every ledger row and document of the course: `personal` (no
    job titles) from all, `values_for(row)` from each ledger row (after `reshape(row, render_data)`). A row
    `addressed_to_erased` whose recipient changed is given up if still pending."""
    if not personal:
        return
    ledger = []
    for row in await repo.course_ledger(conn, course_id):
        values = values_for(row)
        data = _json(row["render_data"])
        new_data = scrub(reshape(row, data), values, row["email_id"])
        new_recipient = scrub(row["recipient"], values, row["email_id"])
        new_reply = scrub(row["last_reply"], values, row["email_id"]) if row["last_reply"] else None
        cancel = addressed_to_erased(row) and new_recipient != row["recipient"]
        if (new_data, new_recipient, new_reply) != (data, row["recipient"], row["last_reply"]):
            ledger.append((row["id"], new_recipient, new_data, new_reply, cancel))
    await repo.replace_ledger_rows(conn, ledger)
    documents = []
    for row in await repo.course_documents(conn, course_id):
        doc = _json(row["document"])
        new_doc = scrub(doc, personal, row["document_id"])
        if new_doc != doc:
            documents.append((row["document_id"], new_doc))
    await repo.replace_documents(conn, documents)

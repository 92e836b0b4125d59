"""HTTP routes: thin translations between requests and the intake/read use cases."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from komponent_contracts.events import Buyer, Participant
from komponent_runtime.auth import require_scope
from komponent_runtime.clock import Clock
from pydantic import BaseModel, ConfigDict, EmailStr, Field

from komponent_registration.adapters import repository
from komponent_registration.service_layer import erasure, intake
from komponent_registration.service_layer.intake import Answer


class RegistrationBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    participant: Participant
    buyer: Buyer
    terms_version: Annotated[str, Field(min_length=1, max_length=50)]


class SubstitutionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    new_participant: Participant
    new_buyer: Buyer | None = None


class ErasureBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: EmailStr


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255)]


def _respond(answer: Answer) -> JSONResponse:
    return JSONResponse(status_code=answer.status, content=answer.body, headers=answer.headers)


def build_router(pool: asyncpg.Pool, clock: Clock) -> APIRouter:
    router = APIRouter()

    @router.post("/courses/{course_id}/registrations", status_code=202, tags=["intake"])
    async def register(
        course_id: UUID, body: RegistrationBody, request: Request, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        fingerprint = intake.request_hash("POST", request.url.path, body.model_dump(mode="json"))
        return _respond(
            await intake.register(
                pool,
                clock,
                course_id,
                body.participant,
                body.buyer,
                body.terms_version,
                key=idempotency_key,
                fingerprint=fingerprint,
            )
        )

    @router.post("/registrations/{registration_id}/cancellation", status_code=202, tags=["intake"])
    async def cancel(
        registration_id: UUID, request: Request, idempotency_key: IdempotencyKey = None
    ) -> JSONResponse:
        fingerprint = intake.request_hash("POST", request.url.path, {})
        return _respond(
            await intake.cancel(pool, clock, registration_id, key=idempotency_key, fingerprint=fingerprint)
        )

    @router.post("/registrations/{registration_id}/substitution", status_code=202, tags=["intake"])
    async def substitute(
        registration_id: UUID,
        body: SubstitutionBody,
        request: Request,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        fingerprint = intake.request_hash("POST", request.url.path, body.model_dump(mode="json"))
        return _respond(
            await intake.substitute(
                pool,
                clock,
                registration_id,
                body.new_participant,
                body.new_buyer,
                key=idempotency_key,
                fingerprint=fingerprint,
            )
        )

    @router.get("/registrations/{registration_id}", tags=["read"])
    async def status(registration_id: UUID) -> dict[str, Any]:
        async with pool.acquire() as conn:
            found = await repository.registration_status(conn, registration_id)
        if found is None:
            # Unknown, or accepted but not yet allocated: the status URL starts answering once it is.
            raise HTTPException(404, "unknown registration (or not yet allocated)")
        return found

    @router.get(
        "/courses/{course_id}/registrations",
        tags=["admin"],
        dependencies=[Depends(require_scope("registration:admin"))],
    )
    async def course_registrations(course_id: UUID) -> dict[str, Any]:
        async with pool.acquire() as conn:
            found = await repository.course_registrations(conn, course_id)
        if found is None:
            raise HTTPException(404, "unknown course")
        return found

    @router.post(
        "/admin/erasures",
        status_code=202,
        tags=["admin"],
        dependencies=[Depends(require_scope("registration:admin"))],
    )
    async def erase(body: ErasureBody) -> dict[str, Any]:
        """Erase a participant's personal data (GDPR art. 17) from every registration with this address,
        and from what is kept about registrations they handed over to a colleague. Accepted: registration
        is anonymised now; notifications and billing follow via events."""
        try:
            done = await erasure.erase_participant(pool, clock, str(body.email))
        except erasure.ErasurePending:
            raise HTTPException(
                409,
                "events about this participant are still being published; retry",
                headers={"Retry-After": "1"},
            ) from None
        return {
            "erased_at": done.erased_at.isoformat(),
            "registrations": _listed(done.registrations),
            # Registrations they handed over: the colleagues keep them and their own data.
            "handed_over": _listed(done.handed_over),
        }

    return router


def _listed(by_course: dict[UUID, list[UUID]]) -> list[dict[str, str]]:
    return [
        {"course_id": str(course_id), "registration_id": str(rid)}
        for course_id, rids in by_course.items()
        for rid in rids
    ]

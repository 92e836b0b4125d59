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
from pydantic import BaseModel, ConfigDict, Field

from komponent_registration.adapters import repository
from komponent_registration.service_layer import intake
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

    return router

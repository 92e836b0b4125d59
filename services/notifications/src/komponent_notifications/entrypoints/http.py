"""Admin HTTP API: the email log and resend. Thin: parse, authorise, call the use case."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Query, status
from komponent_runtime.auth import require_scope

from ..service_layer import email_log

ADMIN = Depends(require_scope("notifications:admin"))


def email_log_router(pool: asyncpg.Pool, message_id_domain: str) -> APIRouter:
    router = APIRouter(prefix="/emails", tags=["email log"], dependencies=[ADMIN])

    @router.get("")
    async def list_emails(
        course_id: UUID | None = None,
        registration_id: UUID | None = None,
        recipient: str | None = None,
        limit: int = Query(100, ge=1, le=1000),
    ) -> list[dict[str, Any]]:
        """What was (or will be) sent to whom and when, newest first."""
        return await email_log.find(
            pool, course_id=course_id, registration_id=registration_id, recipient=recipient, limit=limit
        )

    @router.get("/{email_id}")
    async def get_email(email_id: UUID) -> dict[str, Any]:
        try:
            return await email_log.get(pool, email_id)
        except email_log.UnknownEmail:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such email") from None

    @router.post("/{email_id}/resend", status_code=status.HTTP_202_ACCEPTED)
    async def resend_email(email_id: UUID) -> dict[str, Any]:
        """Queue the same email again as a new message, linked to the original (`resend_of`)."""
        try:
            return await email_log.resend(pool, email_id, message_id_domain)
        except email_log.UnknownEmail:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such email") from None

    return router

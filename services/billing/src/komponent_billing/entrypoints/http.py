"""HTTP API: issued documents (PDF/XML) for notifications and admins, admin listing, payments."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Response
from komponent_runtime.auth import require_scope
from pydantic import BaseModel, Field

from ..service_layer.issuing import BillingContext
from ..service_layer.receivables import InvalidPayment, UnknownInvoice, register_payment

DOCUMENTS_SCOPE = "billing:documents"
ADMIN_SCOPE = "billing:admin"


class PaymentIn(BaseModel):
    amount_ore: Annotated[int, Field(gt=0, description="Amount paid, in øre")]
    paid_on: date
    payment_id: UUID | None = Field(default=None, description="Idempotency key: repeat it to retry safely")


class PaymentOut(BaseModel):
    payment_id: UUID
    document_number: str
    outstanding_ore: int


def make_router(pool: asyncpg.Pool, ctx: BillingContext) -> APIRouter:
    router = APIRouter()

    async def _artefact(document_id: UUID, column: str) -> bytes:
        async with pool.acquire() as conn:
            # The column name comes from the fixed set below, never from the request.
            data = await conn.fetchval(
                f"SELECT {column} FROM billing_document WHERE document_id = $1", document_id
            )
        if data is None:
            raise HTTPException(404, "no such document")
        return bytes(data)

    @router.get("/documents/{document_id}/pdf", dependencies=[Depends(require_scope(DOCUMENTS_SCOPE))])
    async def document_pdf(document_id: UUID) -> Response:
        pdf = await _artefact(document_id, "pdf")
        return Response(pdf, media_type="application/pdf")

    @router.get("/documents/{document_id}/xml", dependencies=[Depends(require_scope(DOCUMENTS_SCOPE))])
    async def document_xml(document_id: UUID, format: Literal["peppol", "oioubl"] = "peppol") -> Response:
        xml = await _artefact(document_id, "peppol_xml" if format == "peppol" else "oioubl_xml")
        return Response(xml, media_type="application/xml")

    @router.get("/courses/{course_id}/documents", dependencies=[Depends(require_scope(ADMIN_SCOPE))])
    async def course_documents(course_id: UUID) -> list[dict[str, object]]:
        async with pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT d.document_id, d.kind, d.number, d.registration_id, d.issue_date, d.due_date,"
                " d.total_excl_vat_ore, d.vat_ore, d.total_incl_vat_ore, d.reason,"
                " c.number AS credits_number, r.number AS replaces_number, dd.status AS delivery_status,"
                " (SELECT coalesce(sum(amount_ore), 0) FROM payment p WHERE p.document_id = d.document_id)"
                " AS paid_ore"
                " FROM billing_document d"
                " LEFT JOIN billing_document c ON c.document_id = d.credits_document_id"
                " LEFT JOIN billing_document r ON r.document_id = d.replaces_document_id"
                " LEFT JOIN document_delivery dd ON dd.document_id = d.document_id"
                " WHERE d.course_id = $1 ORDER BY d.issued_at, d.kind, d.number",
                course_id,
            )
        return [
            {
                **{k: r[k] for k in r.keys() if k not in {"issue_date", "due_date", "paid_ore"}},
                "issue_date": r["issue_date"].isoformat(),
                "due_date": r["due_date"].isoformat() if r["due_date"] else None,
                "paid_ore": int(r["paid_ore"]),
                "pdf_url": f"/documents/{r['document_id']}/pdf",
            }
            for r in rows
        ]

    @router.post(
        "/invoices/{number}/payments",
        status_code=201,
        response_model=PaymentOut,
        dependencies=[Depends(require_scope(ADMIN_SCOPE))],
    )
    async def add_payment(number: str, payment: PaymentIn, response: Response) -> PaymentOut:
        try:
            async with pool.acquire() as conn, conn.transaction():
                result = await register_payment(
                    conn,
                    ctx,
                    number=number,
                    amount_ore=payment.amount_ore,
                    paid_on=payment.paid_on,
                    payment_id=payment.payment_id,
                )
        except UnknownInvoice as exc:
            raise HTTPException(404, f"no invoice {number}") from exc
        except InvalidPayment as exc:
            raise HTTPException(
                422, detail={"errors": [{"field": "amount_ore", "rule": "payment", "message": str(exc)}]}
            ) from exc
        if not result.new:
            response.status_code = 200
        return PaymentOut(
            payment_id=result.payment_id,
            document_number=result.document_number,
            outstanding_ore=result.outstanding_ore,
        )

    return router

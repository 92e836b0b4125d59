"""The invoice and credit-note PDFs, fetched from the billing service when the email is sent.

Fetched at send time (not when the event is consumed) so a consumer never waits on billing, and so an
email waiting for billing's endpoint is retried on the ledger's schedule instead of going out without
its PDF.
"""

from __future__ import annotations

from typing import Protocol

import httpx


class DocumentUnavailable(Exception):
    """The PDF could not be had now (billing away, not found yet, not a PDF): try again later."""


class DocumentSource(Protocol):
    async def pdf(self, pdf_url: str) -> bytes: ...


class HttpBillingDocuments:
    def __init__(self, base_url: str, api_key: str, *, timeout_seconds: float = 10.0) -> None:
        # Billing serves documents only to callers holding the `billing:documents` scope.
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=timeout_seconds,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else {},
        )

    async def pdf(self, pdf_url: str) -> bytes:
        try:
            response = await self._client.get(pdf_url, headers={"Accept": "application/pdf"})
        except httpx.HTTPError as exc:
            raise DocumentUnavailable(f"billing unreachable: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise DocumentUnavailable(f"billing answered {response.status_code} for the PDF")
        if not response.content.startswith(b"%PDF-"):
            raise DocumentUnavailable("billing's answer is not a PDF")
        return response.content

    async def close(self) -> None:
        await self._client.aclose()

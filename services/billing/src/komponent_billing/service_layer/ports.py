"""The small interfaces the use cases depend on; adapters implement them."""

from __future__ import annotations

from typing import Protocol

from komponent_runtime.consuming import PermanentError

from ..adapters.artefacts import Artefacts
from ..domain.documents import Document


class DocumentRejected(PermanentError):
    """A document broke an official e-invoice rule. It is never issued: the issuing transaction rolls
    back (its number is not consumed) and the triggering event goes to the dead-letter topic with this
    message, to be replayed once the renderer or the data is fixed."""


class ArtefactRenderer(Protocol):
    def render(self, document: Document) -> Artefacts:
        """Peppol + OIOUBL XML, PDF, snapshot; raise on any fatal validation finding."""
        ...

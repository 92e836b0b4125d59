"""Who receives an email: a course participant or the billing contact of a public-sector buyer."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID


@dataclass(frozen=True, slots=True)
class Participant:
    participant_id: UUID
    name: str
    email: str
    organisation: str = ""


@dataclass(frozen=True, slots=True)
class BillingReferences:
    """What a Danish public buyer needs on every invoice-related document to route and approve payment.

    EAN (GLN location number), order/requisition number and person reference are mandatory for
    NemHandel; a missing one lets the municipality postpone payment, so we show them in emails too.
    """

    ean: str = ""
    order_number: str = ""
    person_reference: str = ""
    account_string: str = ""  # kontostreng, only when the authority has given one

    @property
    def is_empty(self) -> bool:
        return not (self.ean or self.order_number or self.person_reference or self.account_string)


@dataclass(frozen=True, slots=True)
class BillingContact:
    name: str
    email: str
    organisation: str
    references: BillingReferences = BillingReferences()

"""The fault suite runs against its OWN Kafka and PostgreSQL (var/faults/, ports 29092/29093 and 55442),
started here once per session and stopped at the end: it SIGKILLs the broker and the database, which must
never happen to the shared dev stack other engineers' tests use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.private_stack import PrivateStack, private_stack


@pytest.fixture(scope="session")
def fault_stack() -> Iterator[PrivateStack]:
    with private_stack() as stack:
        yield stack

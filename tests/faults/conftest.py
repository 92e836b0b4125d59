"""The fault suite runs against its OWN Kafka and PostgreSQL (var/faults/, ports 29092/29093 and 55442),
started here once for this directory and stopped after its last test: it SIGKILLs the broker and the
database, which must never happen to the shared dev stack other engineers' tests use. Package scope (this
directory is a package for that): the environment points at the private stack only while these tests run,
so the test directories after this one use the shared stack again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.private_stack import PrivateStack, private_stack


@pytest.fixture(scope="package")
def fault_stack() -> Iterator[PrivateStack]:
    with private_stack() as stack:
        yield stack

"""Test and benchmark topics and databases name their creating process; those of dead processes are orphans."""

from __future__ import annotations

import os
import subprocess
import sys

from komponent_runtime.testing import orphaned, orphaned_databases, owned_token


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_topics_of_dead_processes_are_orphans() -> None:
    dead, alive = dead_pid(), os.getpid()
    topics = [
        f"t{dead}xabc123.komponent.registration.v1",
        f"t{dead}xabc123.komponent.registration.v1.dlq",
        f"test.intake.{dead}x0f0f0f",
        f"test.intake.{dead}x0f0f0f.dlq",
        f"bench.relay.in.{dead}x123456",
        f"t{alive}xabc123.komponent.registration.v1",
        f"test.intake.{alive}x0f0f0f",
        "komponent.registration.v1",  # the platform's own topics are never touched
        "komponent.registration.v1.dlq",
        "tenant.komponent.registration.v1",  # a deployment's prefix, not a test's
        "__consumer_offsets",
    ]
    assert orphaned(topics) == topics[:5]


def test_owned_token_names_this_process() -> None:
    assert owned_token().startswith(f"{os.getpid()}x")


def test_only_databases_of_dead_processes_are_orphans() -> None:
    dead, alive = dead_pid(), os.getpid()
    names = [
        f"test_{dead}xabc123",
        f"bench_registration_stage_{dead}x0f0f0f",
        f"test_{alive}xabc123",
        "registration",  # the local stack's own databases are never touched
        "postgres",
        "template1",
        "test_0123456789ab",  # an older naming: not attributable, left alone
    ]
    assert orphaned_databases(names) == names[:2]

"""The collector settings every service applies once start-up is done (komponent_runtime.service)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest
from komponent_runtime.collector import THRESHOLDS, tune_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    built_at_start_up = [{"course": i} for i in range(1000)]
    tune_collector()
    assert gc.get_threshold() == THRESHOLDS and THRESHOLDS[0] > 700  # CPython's default is 700
    # Frozen: in the permanent generation, which no collection scans.
    assert gc.get_freeze_count() >= len(built_at_start_up)
    oldest = {id(o) for o in gc.get_objects(generation=2)}
    assert not any(id(o) in oldest for o in built_at_start_up)

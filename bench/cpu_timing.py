"""CPU time per item for the micro-benchmarks: this thread's own CPU (`time.thread_time`, so neither other
processes nor waiting count), best of several rounds (the least disturbed one)."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_cpu_us_per_item(run_once: Callable[[], object], items: int, rounds: int = 5) -> float:
    """`run_once` handles `items` items; the best round's CPU µs per item."""
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        run_once()
        best = min(best, (time.thread_time() - started) / items * 1e6)
    return best

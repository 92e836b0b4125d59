"""Document number series (§58 stk. 1 nr. 2): sequential, gapless, never reused.

This is the pure half. The allocation itself happens in the issuing DB transaction, on a counter row
locked with ``SELECT … FOR UPDATE`` (not a sequence, which leaves gaps on rollback): the repository reads
``last_issued``, calls :func:`next_number`, writes it back and freezes the document in the same commit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .documents import DocumentKind


@dataclass(frozen=True, slots=True)
class NumberSeries:
    """One series, e.g. invoices ``2026-000123`` or credit notes ``KN-2026-000007``.

    The year is part of the series key: a new financial year starts a new series at 1, the only moment
    the scheme may change.
    """

    prefix: str  # "" for invoices, "KN-" for the separate credit-note series
    year: int
    width: int = 6

    def format(self, sequence: int) -> str:
        if sequence < 1 or sequence >= 10**self.width:
            raise ValueError(f"sequence {sequence} does not fit series width {self.width}")
        return f"{self.prefix}{self.year}-{sequence:0{self.width}d}"

    def parse(self, number: str) -> int:
        match = re.fullmatch(rf"{re.escape(self.prefix)}{self.year}-(\d{{{self.width}}})", number)
        if match is None:
            raise ValueError(f"{number!r} is not in series {self.prefix}{self.year}")
        return int(match.group(1))

    @property
    def key(self) -> str:
        """The counter row's key in the database."""
        return f"{self.prefix}{self.year}"


@dataclass(frozen=True, slots=True)
class NumberingConfig:
    """Which series each document kind uses. Chosen once; never changed mid-year."""

    credit_note_prefix: str = "KN-"
    separate_credit_note_series: bool = True
    width: int = 6

    def series_for(self, kind: DocumentKind, year: int) -> NumberSeries:
        if kind is DocumentKind.CREDIT_NOTE and self.separate_credit_note_series:
            return NumberSeries(self.credit_note_prefix, year, self.width)
        return NumberSeries("", year, self.width)


def next_number(series: NumberSeries, last_issued: int | None) -> tuple[int, str]:
    """The sequence and formatted number that follow ``last_issued`` (None: series not yet used)."""
    sequence = 1 if last_issued is None else last_issued + 1
    return sequence, series.format(sequence)


def is_gapless(sequences: list[int]) -> bool:
    """True when issued sequences are exactly 1..n, each once (an audit check on a series)."""
    return sorted(sequences) == list(range(1, len(sequences) + 1))

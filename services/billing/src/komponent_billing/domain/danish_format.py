"""Danish presentation of amounts and dates (participant-facing text)."""

from __future__ import annotations

from datetime import date

_MONTHS = (
    "januar", "februar", "marts", "april", "maj", "juni",
    "juli", "august", "september", "oktober", "november", "december",
)  # fmt: skip


def format_dkk(oere: int) -> str:
    """``550000`` → ``5.500,00``: thousands separated by ``.``, decimals by ``,``."""
    sign = "-" if oere < 0 else ""
    kroner, oere_part = divmod(abs(oere), 100)
    grouped = f"{kroner:,}".replace(",", ".")
    return f"{sign}{grouped},{oere_part:02d}"


def format_kr(oere: int) -> str:
    """``550000`` → ``5.500,00 kr.``"""
    return f"{format_dkk(oere)} kr."


def format_date(day: date) -> str:
    """``20.04.2026``"""
    return f"{day.day:02d}.{day.month:02d}.{day.year}"


def format_long_date(day: date) -> str:
    """``20. april 2026``"""
    return f"{day.day}. {_MONTHS[day.month - 1]} {day.year}"


def format_period(start: date, end: date) -> str:
    """Course dates in running text: ``18.-19. maj 2026``, ``30. april - 1. maj 2026``, or one day."""
    if start == end:
        return format_long_date(start)
    if (start.year, start.month) == (end.year, end.month):
        return f"{start.day}.-{end.day}. {_MONTHS[end.month - 1]} {end.year}"
    if start.year == end.year:
        return f"{start.day}. {_MONTHS[start.month - 1]} - {format_long_date(end)}"
    return f"{format_long_date(start)} - {format_long_date(end)}"

"""Danish display of money and course times, used as Jinja2 filters.

Written out by hand instead of through `locale`/Babel: `locale` depends on what the container has installed
(and is process-global), and these few formats are fixed by Danish convention.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

COPENHAGEN = ZoneInfo("Europe/Copenhagen")

WEEKDAYS = ("mandag", "tirsdag", "onsdag", "torsdag", "fredag", "lørdag", "søndag")
MONTHS = (
    "januar",
    "februar",
    "marts",
    "april",
    "maj",
    "juni",
    "juli",
    "august",
    "september",
    "oktober",
    "november",
    "december",
)


def kroner(ore: int) -> str:
    """`550000` → `5.500,00 kr.` (dot for thousands, comma for decimals, as Danes write it)."""
    sign = "-" if ore < 0 else ""
    whole, fraction = divmod(abs(ore), 100)
    grouped = f"{whole:,}".replace(",", ".")
    return f"{sign}{grouped},{fraction:02d} kr."


def local(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("refusing to format a naive datetime as course time")
    return moment.astimezone(COPENHAGEN)


def long_date(day: date | datetime) -> str:
    """`onsdag den 3. maj 2023`."""
    if isinstance(day, datetime):
        day = local(day).date()
    return f"{WEEKDAYS[day.weekday()]} den {day.day}. {MONTHS[day.month - 1]} {day.year}"


def clock(moment: datetime) -> str:
    """`11:30` in Copenhagen wall-clock time."""
    return local(moment).strftime("%H:%M")


def long_datetime(moment: datetime) -> str:
    """`onsdag den 3. maj 2023 kl. 11:30`."""
    return f"{long_date(moment)} kl. {clock(moment)}"


def time_span(starts_at: datetime, ends_at: datetime) -> str:
    """`Onsdag den 3. maj 2023 kl. 11:30–16:00`, or across days
    `Onsdag den 3. maj 2023 kl. 11:30 – torsdag den 4. maj 2023 kl. 14:00` (a session may span days)."""
    if local(starts_at).date() == local(ends_at).date():
        text = f"{long_date(starts_at)} kl. {clock(starts_at)}–{clock(ends_at)}"
    else:
        text = f"{long_datetime(starts_at)} – {long_datetime(ends_at)}"
    return text[0].upper() + text[1:]


def short_date(day: date | datetime) -> str:
    """`03.05.2023`, the form used on invoices and course pages."""
    if isinstance(day, datetime):
        day = local(day).date()
    return day.strftime("%d.%m.%Y")

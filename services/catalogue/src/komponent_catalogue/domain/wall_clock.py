"""Europe/Copenhagen wall-clock arithmetic.

Course times, deadlines and lead days are what a participant reads on the course page, so they are
Copenhagen wall-clock values. Stored instants are UTC. Subtracting "28 days" must keep the time of
day on the wall clock even when a DST change lies in between; plain UTC subtraction would move the
invoice run by an hour twice a year.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

COPENHAGEN = ZoneInfo("Europe/Copenhagen")


def is_aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.utcoffset() is not None


def copenhagen_time(day: date, clock: time) -> datetime:
    """The instant a Copenhagen wall clock shows `clock` on `day`.

    In the spring gap (02:00-03:00 does not exist) fold=0 reads the time with the pre-change offset,
    which lands one hour later on the wall clock; in the autumn overlap fold=0 picks the first
    (summer-time) occurrence. Neither ever happens for 23:59 or course hours, but it is defined.
    """
    local = datetime.combine(day, clock).replace(tzinfo=COPENHAGEN, fold=0)
    return normalise(local)


def normalise(moment: datetime) -> datetime:
    """Express an aware instant on the Copenhagen wall clock (valid offset, no gap times)."""
    return moment.astimezone(UTC).astimezone(COPENHAGEN)


def to_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def days_before(moment: datetime, days: int) -> datetime:
    """The same Copenhagen wall-clock time `days` calendar days earlier."""
    local = moment.astimezone(COPENHAGEN)
    return copenhagen_time(local.date() - timedelta(days=days), local.timetz().replace(tzinfo=None))


def days_after(moment: datetime, days: int) -> datetime:
    """The same Copenhagen wall-clock time `days` calendar days later."""
    return days_before(moment, -days)

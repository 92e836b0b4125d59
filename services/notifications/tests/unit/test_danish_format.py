from datetime import UTC, date, datetime

import pytest
from komponent_notifications.adapters.danish_format import (
    COPENHAGEN,
    kroner,
    long_date,
    long_datetime,
    short_date,
)


@pytest.mark.parametrize(
    ("ore", "shown"),
    [
        (550_000, "5.500,00 kr."),
        (687_500, "6.875,00 kr."),
        (0, "0,00 kr."),
        (5, "0,05 kr."),
        (123_456_789, "1.234.567,89 kr."),
        (-137_500, "-1.375,00 kr."),
    ],
)
def test_money_is_written_the_danish_way(ore: int, shown: str) -> None:
    assert kroner(ore) == shown


def test_course_start_reads_as_on_the_course_page() -> None:
    start = datetime(2023, 5, 3, 11, 30, tzinfo=COPENHAGEN)
    assert long_datetime(start) == "onsdag den 3. maj 2023 kl. 11:30"


def test_times_stored_in_utc_are_shown_in_copenhagen_wall_clock() -> None:
    # 09:30 UTC on 3 May is 11:30 summer time (CEST, UTC+2).
    assert long_datetime(datetime(2023, 5, 3, 9, 30, tzinfo=UTC)) == "onsdag den 3. maj 2023 kl. 11:30"
    # In winter the same UTC time is only one hour behind.
    assert long_datetime(datetime(2023, 1, 4, 9, 30, tzinfo=UTC)) == "onsdag den 4. januar 2023 kl. 10:30"


def test_the_date_follows_copenhagen_not_utc_around_midnight() -> None:
    # 22:30 UTC on 28 March 2023 is already 29 March in Denmark.
    assert long_date(datetime(2023, 3, 28, 22, 30, tzinfo=UTC)) == "onsdag den 29. marts 2023"
    assert short_date(datetime(2023, 3, 28, 22, 30, tzinfo=UTC)) == "29.03.2023"


def test_every_weekday_and_month_name_is_danish() -> None:
    assert long_date(date(2023, 12, 31)) == "søndag den 31. december 2023"
    assert long_date(date(2024, 2, 3)) == "lørdag den 3. februar 2024"


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        long_datetime(datetime(2023, 5, 3, 11, 30))

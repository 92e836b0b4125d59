"""Session times as participants read them: one line per session, across days when a session spans them."""

from datetime import datetime
from zoneinfo import ZoneInfo

from komponent_notifications.adapters.danish_format import time_span

CPH = ZoneInfo("Europe/Copenhagen")


def test_a_session_within_one_day_shows_the_date_once() -> None:
    assert (
        time_span(datetime(2023, 5, 3, 11, 30, tzinfo=CPH), datetime(2023, 5, 3, 16, 0, tzinfo=CPH))
        == "Onsdag den 3. maj 2023 kl. 11:30–16:00"
    )


def test_a_session_across_two_days_shows_both_ends() -> None:
    # The seed course is one session from 03.05.2023 11:30 to 04.05.2023 14:00.
    assert (
        time_span(datetime(2023, 5, 3, 11, 30, tzinfo=CPH), datetime(2023, 5, 4, 14, 0, tzinfo=CPH))
        == "Onsdag den 3. maj 2023 kl. 11:30 – torsdag den 4. maj 2023 kl. 14:00"
    )

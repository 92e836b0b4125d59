"""The seed course page parsed with every field intact, and shifted into the future for demos."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from komponent_catalogue.adapters.seed_page import (
    DEMO_CAPACITY,
    DEMO_COURSE_ID,
    SeedPageError,
    load_course_page,
    parse_course_page,
)
from komponent_catalogue.domain.course import Course, CourseStatus, Instructor
from komponent_catalogue.domain.demo_dates import shift_to_future, weeks_to_shift
from komponent_catalogue.domain.operations import publish
from komponent_catalogue.domain.timers import TimerKind, derive_timers
from komponent_catalogue.domain.validation import validate_course

SEED_PAGE = Path("/work/shared/seed/course-page.da.txt")
CPH = ZoneInfo("Europe/Copenhagen")


@pytest.fixture(scope="module")
def course() -> Course:
    return load_course_page(SEED_PAGE)


def test_title_and_introduction(course: Course) -> None:
    assert course.details.title == "Nye typer af udfordringer i samfundet kræver nye typer af løsninger"
    assert len(course.details.introduction) == 5
    assert course.details.introduction[0].startswith("Det gælder også i kommunalpolitik")
    assert course.details.introduction[-1].endswith("færdigt formulerede politiske bestillinger.")


def test_six_learning_outcomes_verbatim(course: Course) -> None:
    outcomes = course.details.learning_outcomes
    assert len(outcomes) == 6
    assert outcomes[0] == (
        "En ramme for forståelse af samfundets udfordringer, kommunernes muligheder og behovet for "
        "forandring af systemer og processer"
    )
    assert (
        outcomes[-1]
        == "Indblik i andre kommuners erfaringer med vilde metoder til at håndtere svære problemer"
    )


def test_instructors(course: Course) -> None:
    assert course.details.instructors == (
        Instructor("Louise Angelo", "Specialkonsulent", "Komponent"),
        Instructor("Theis Rubinke Sørensen", "Konsulent", "Komponent"),
        Instructor("Center for Offentlig-Privat Innovation (CO-PI)", "Oplæg"),
    )
    assert course.details.instructors_text.startswith("Specialkonsulent Louise Angelo og Konsulent")


def test_price_duration_and_what_the_price_includes(course: Course) -> None:
    price = course.details.price
    assert (price.excl_vat_ore, price.vat_rate_basis_points) == (550_000, 2500)
    assert price.includes == ("undervisning", "materialer", "forplejning")
    assert course.details.duration_days == 2
    assert course.details.price_terms[0].startswith("Din tilmelding er bindende efter tilmeldingsfristens")
    assert "Faktura sendes ud 3-4 uger før kursusstart." in course.details.price_terms[1]


def test_venue(course: Course) -> None:
    venue = course.details.venue
    assert venue is not None
    assert (venue.name, venue.address.street, venue.address.postcode, venue.address.city) == (
        "Comwell Roskilde",
        "Vestre Kirkevej 12",
        "4000",
        "Roskilde",
    )


def test_dates_on_the_copenhagen_clock(course: Course) -> None:
    (session,) = course.schedule.sessions
    assert session.starts_at == datetime(2023, 5, 3, 11, 30, tzinfo=CPH)
    assert session.ends_at == datetime(2023, 5, 4, 14, 0, tzinfo=CPH)
    assert session.starts_at.astimezone(UTC) == datetime(2023, 5, 3, 9, 30, tzinfo=UTC)


def test_target_group(course: Course) -> None:
    assert course.details.target_group == (
        "Embedsmænd/ledere og udviklingskonsulenter i kommunerne med opgaver indenfor "
        "udvalgsbetjening eller anden form for politikerbetjening."
    )


def test_programme_day_one(course: Course) -> None:
    day1 = course.details.programme[0]
    assert day1.day_number == 1
    assert [i.title for i in day1.items] == [
        "Fælles frokost",
        "Velkomst og introduktion",
        "Vildskab og innovation i politik",
        "Pause",
        "Workshop om redskaber og eksempler på innovation",
        "Pause",
        "Opsamling på dag 1 og blik frem mod dag 2 samt walk and talk:",
        "Egen tid",
        "Middag",
        "Klap Kæphesten",
        "Tak for i aften",
    ]
    wild = day1.items[2].description
    assert len(wild) == 5
    assert wild[0].endswith("drøfter vi:")
    assert [line[:2] for line in wild[1:4]] == ["- ", "- ", "- "]
    assert wild[4].startswith("Undervejs bliver deltagernes egne erfaringer")
    workshop = day1.items[4].description
    assert workshop[1] == "- Redskaber til nye rammer: Den dynamiske dialog – i teori og praksis."
    assert len(workshop) == 4


def test_programme_day_two(course: Course) -> None:
    day2 = course.details.programme[1]
    assert day2.day_number == 2
    assert [i.title for i in day2.items] == [
        "Tilbageblik på dag 1 og introduktion til dag 2: To konkrete eksempler på kreative rammer for "
        "politikudvikling",
        "Spørgsmål og drøftelser – fordele, ulemper, muligheder",
        "Pause",
        "Mandat – spillet, der bringer innovation ind i politikudviklingen",
        "Opsamling",
        "Frokost og tak for i dag",
    ]
    assert day2.items[0].description == (
        "Sådan gjorde vi: En inspirerende fortælling fra en kommunal kollega eller kommunalpolitiker.",
    )


def test_programme_times_only_where_the_page_gives_them(course: Course) -> None:
    items = [item for day in course.details.programme for item in day.items]
    assert items[0].starts_at == time(11, 30)
    assert items[-1].ends_at == time(14, 0)
    others = items[1:-1]
    assert all(i.starts_at is None and i.ends_at is None for i in others)
    assert items[0].ends_at is None and items[-1].starts_at is None


def test_contacts_with_demo_emails(course: Course) -> None:
    assert [(c.name, c.role, c.email, c.phone) for c in course.details.contacts] == [
        ("Louise Angelo", "Chefkonsulent", "loua@komponent.dk", None),
        ("Aida Hadzimahovic Buzdalek", "Koordinator", "ah@komponent.dk", None),
    ]


def test_demo_defaults_for_what_the_page_lacks(course: Course) -> None:
    assert course.course_id == DEMO_COURSE_ID
    assert course.capacity == DEMO_CAPACITY == 30
    assert course.schedule.registration_deadline == datetime(2023, 4, 5, 23, 59, tzinfo=CPH)
    assert (course.invoice_lead_days, course.reminder_lead_days) == (28, 7)
    assert course.status == CourseStatus.DRAFT
    assert validate_course(course) == []


def test_the_published_seed_course_timers(course: Course) -> None:
    timers = {t.kind: t.due_at for t in derive_timers(publish(course))}
    assert timers == {
        TimerKind.DEADLINE_PASSED: datetime(2023, 4, 5, 21, 59, tzinfo=UTC),
        TimerKind.INVOICE_DUE: datetime(2023, 4, 5, 9, 30, tzinfo=UTC),
        TimerKind.COURSE_REMINDER_DUE: datetime(2023, 4, 26, 9, 30, tzinfo=UTC),
    }


def test_a_page_without_a_landmark_is_refused() -> None:
    with pytest.raises(SeedPageError, match="Program"):
        parse_course_page(SEED_PAGE.read_text(encoding="utf-8").replace("\nProgram\n", "\nProgramme\n"))


TODAY = date(2026, 11, 27)  # a fixed "today": tests never read the real clock


def test_shift_to_future_keeps_weekday_and_time_of_day(course: Course) -> None:
    shifted = shift_to_future(course, TODAY)
    start = shifted.schedule.starts_at.astimezone(CPH)
    end = shifted.schedule.ends_at.astimezone(CPH)
    deadline = shifted.schedule.registration_deadline.astimezone(CPH)
    assert (start.weekday(), start.time()) == (2, time(11, 30))  # Wednesday, like 3 May 2023
    assert (end.weekday(), end.time()) == (3, time(14, 0))
    assert deadline.time() == time(23, 59)  # kept on the wall clock although DST differs
    assert start.utcoffset() == timedelta(hours=1)  # winter now, summer in 2023
    assert TODAY + timedelta(weeks=8) <= start.date() < TODAY + timedelta(weeks=9)
    assert (start.date() - deadline.date()).days == 28


def test_shift_to_future_makes_every_timer_live(course: Course) -> None:
    shifted = publish(shift_to_future(course, TODAY))
    midnight = datetime.combine(TODAY, time(0), tzinfo=CPH) + timedelta(days=1)
    assert all(t.due_at > midnight for t in derive_timers(shifted))
    assert shifted.details == course.details
    assert validate_course(shifted) == []


def test_shift_to_future_leaves_a_course_far_enough_ahead_alone(course: Course) -> None:
    assert shift_to_future(course, date(2023, 1, 1)) is course
    assert weeks_to_shift(date(2023, 5, 3), date(2023, 3, 8)) == 0  # exactly 8 weeks ahead
    assert weeks_to_shift(date(2023, 5, 3), date(2023, 3, 9)) == 1

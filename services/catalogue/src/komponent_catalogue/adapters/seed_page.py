"""Parse the plain-text course page (/work/shared/seed/course-page.da.txt) into a `Course`.

The page is text copied from komponent.dk, so the parser reads its landmarks ("På dette kursus får
du:", "Undervisere", "Er du i målgruppen?", "Program", "Kontakt") and keeps Danish text verbatim
(only surrounding whitespace is stripped). Reading the file is the only I/O; `parse_course_page`
itself is pure so tests can feed it variants.

The page lacks capacity, a registration deadline and contact emails. The DEMO_* values below fill
them in and are demo data, not Komponent's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from uuid import UUID, uuid5

from komponent_catalogue.domain.course import (
    Address,
    ContactPerson,
    Course,
    CourseDetails,
    Instructor,
    Price,
    ProgrammeDay,
    ProgrammeItem,
    Schedule,
    Session,
    Venue,
)
from komponent_catalogue.domain.operations import create_course
from komponent_catalogue.domain.wall_clock import copenhagen_time

# --- Demo data (not on the page) -----------------------------------------------------------------
DEMO_COURSE_ID = uuid5(
    UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8"), "https://komponent.dk/demo/course-page.da"
)
DEMO_CAPACITY = 30
# Four weeks before start at 23:59: the page says invoices go out 3-4 weeks before start, and a
# deadline that evening is the latest plausible one. Demo data, not on the page.
DEMO_DEADLINE_DAYS_BEFORE_START = 28
DEMO_DEADLINE_TIME = time(23, 59)
DEMO_EMAIL_DOMAIN = "komponent.dk"  # addresses are <initials>@komponent.dk, invented for the demo

_BULLET = "•"
_PRICE = re.compile(r"^(?P<kr>\d{1,3}(?:\.\d{3})*)(?:,(?P<ore>\d{2}))? kr\.$")
_DURATION = re.compile(r"^Varighed: (?P<days>\d+)$")
_DATES = re.compile(
    r"^(?P<d1>\d{2}\.\d{2}\.\d{4}) kl\. (?P<t1>\d{2}:\d{2}) - (?P<d2>\d{2}\.\d{2}\.\d{4}) kl\. (?P<t2>\d{2}:\d{2})$"
)
_VENUE = re.compile(r"^(?P<name>[^,]+), (?P<street>[^,]+), (?P<postcode>\d{4}) (?P<city>.+)$")
_INCLUDES = re.compile(r"dækker (?P<items>[^.]+)\.")
_NEXT_DAY = re.compile(r"^Tilbageblik på dag (?P<day>\d+)")
_SENTENCE_END = (".", "?", "!")


class SeedPageError(ValueError):
    """The page is missing a landmark the parser relies on."""


@dataclass(frozen=True)
class _Lines:
    lines: tuple[str, ...]

    def index(self, landmark: str, start: int = 0) -> int:
        for i in range(start, len(self.lines)):
            if self.lines[i] == landmark:
                return i
        raise SeedPageError(f"landmark {landmark!r} not found")

    def non_blank(self, start: int, stop: int) -> list[str]:
        return [line for line in self.lines[start:stop] if line]


def load_course_page(path: Path, course_id: UUID = DEMO_COURSE_ID) -> Course:
    return parse_course_page(path.read_text(encoding="utf-8"), course_id)


def parse_course_page(text: str, course_id: UUID = DEMO_COURSE_ID) -> Course:
    # Non-breaking spaces stand for empty lines on the web page.
    page = _Lines(tuple(line.replace("\xa0", " ").strip() for line in text.splitlines()))
    outcomes_at = page.index("På dette kursus får du:")
    instructors_at = page.index("Undervisere")
    price_heading_at = page.index("Se hvad prisen inkluderer")
    target_at = page.index("Er du i målgruppen?")
    programme_at = page.index("Program")
    contact_at = page.index("Kontakt")

    title, *introduction = page.non_blank(0, outcomes_at)
    outcomes = [
        line.removeprefix(_BULLET).strip()
        for line in page.non_blank(outcomes_at + 1, instructors_at)
        if line.startswith(_BULLET)
    ]
    facts = page.non_blank(instructors_at + 1, price_heading_at)
    instructors_text = facts[0]
    price_ore = _find_price(facts)
    duration_days = _find_int(facts, _DURATION, "days")
    venue = _find_venue(facts)
    starts_at, ends_at = _find_dates(facts)
    binding_notes = [line for line in facts if line.startswith("Din tilmelding")]
    price_terms = page.non_blank(price_heading_at + 1, target_at)
    includes = _price_includes(price_terms)
    target_group = " ".join(page.non_blank(target_at + 1, programme_at))
    programme = _parse_programme(page.lines[programme_at + 1 : contact_at], starts_at.time(), ends_at.time())
    contacts = _parse_contacts(page.non_blank(contact_at + 1, len(page.lines)))

    details = CourseDetails(
        title=title,
        introduction=tuple(introduction),
        learning_outcomes=tuple(outcomes),
        instructors=_parse_instructors(instructors_text),
        instructors_text=instructors_text,
        price=Price(excl_vat_ore=price_ore, includes=includes),
        price_terms=(*binding_notes, *price_terms),
        duration_days=duration_days,
        venue=venue,
        target_group=target_group,
        programme=programme,
        contacts=contacts,
    )
    deadline_day = starts_at.date() - timedelta(days=DEMO_DEADLINE_DAYS_BEFORE_START)
    schedule = Schedule(
        sessions=(Session(starts_at, ends_at),),
        registration_deadline=copenhagen_time(deadline_day, DEMO_DEADLINE_TIME),
    )
    return create_course(course_id, details, schedule, capacity=DEMO_CAPACITY)


def _find_price(facts: list[str]) -> int:
    for line in facts:
        if match := _PRICE.match(line):
            # Danish format: "." groups thousands, "," separates øre.
            return int(match["kr"].replace(".", "")) * 100 + int(match["ore"] or 0)
    raise SeedPageError("price line ('5.500 kr.') not found")


def _find_int(facts: list[str], pattern: re.Pattern[str], group: str) -> int:
    for line in facts:
        if match := pattern.match(line):
            return int(match[group])
    raise SeedPageError(f"line matching {pattern.pattern!r} not found")


def _find_venue(facts: list[str]) -> Venue:
    for line in facts:
        if match := _VENUE.match(line):
            return Venue(match["name"], Address(match["street"], match["postcode"], match["city"]))
    raise SeedPageError("venue line ('Name, Street, 4000 City') not found")


def _find_dates(facts: list[str]) -> tuple[datetime, datetime]:
    for line in facts:
        if match := _DATES.match(line):
            return _danish_datetime(match["d1"], match["t1"]), _danish_datetime(match["d2"], match["t2"])
    raise SeedPageError("date line ('03.05.2023 kl. 11:30 - 04.05.2023 kl. 14:00') not found")


def _danish_datetime(day: str, clock: str) -> datetime:
    dd, mm, yyyy = (int(part) for part in day.split("."))
    hh, mi = (int(part) for part in clock.split(":"))
    return copenhagen_time(date(yyyy, mm, dd), time(hh, mi))


def _price_includes(price_terms: list[str]) -> tuple[str, ...]:
    for line in price_terms:
        if match := _INCLUDES.search(line):
            head, _, last = match["items"].rpartition(" og ")
            return (*(part.strip() for part in head.split(",")), last.strip()) if head else (last,)
    return ()


def _parse_instructors(text: str) -> tuple[Instructor, ...]:
    # "<Title> <Name> og <Title> <Name>, <Organisation> samt oplæg fra <Guest>"
    main, _, guest = text.partition(" samt oplæg fra ")
    people, _, organisation = main.rpartition(", ")
    if not people:
        people, organisation = main, ""
    instructors = []
    for person in people.split(" og "):
        job_title, _, name = person.partition(" ")
        instructors.append(Instructor(name=name, title=job_title, organisation=organisation or None))
    if guest:
        instructors.append(Instructor(name=guest, title="Oplæg"))
    return tuple(instructors)


def _is_description(line: str, next_line: str | None) -> bool:
    """Headings are short phrases; descriptions are sentences or bullets.

    A line ending in ":" is a description when bullets follow it ("… giver dig:") and a heading
    otherwise ("Opsamling … walk and talk:").
    """
    if line.startswith("- ") or line.endswith(_SENTENCE_END):
        return True
    return line.endswith(":") and next_line is not None and next_line.startswith("- ")


def _parse_programme(lines: tuple[str, ...], first_start: time, last_end: time) -> tuple[ProgrammeDay, ...]:
    text = [line for line in lines if line]
    days: list[list[ProgrammeItem]] = [[]]
    for i, line in enumerate(text):
        next_line = text[i + 1] if i + 1 < len(text) else None
        if days[-1] and _is_description(line, next_line):
            last = days[-1][-1]
            days[-1][-1] = ProgrammeItem(last.title, (*last.description, line))
            continue
        if (match := _NEXT_DAY.match(line)) and int(match["day"]) == len(days) and days[-1]:
            days.append([])
        days[-1].append(ProgrammeItem(line))
    # The page's only times are the course's start and end: the first item starts at the former,
    # the last ends at the latter. Every other time is left empty rather than invented.
    days[0][0] = ProgrammeItem(days[0][0].title, days[0][0].description, starts_at=first_start)
    final = days[-1][-1]
    days[-1][-1] = ProgrammeItem(final.title, final.description, final.starts_at, ends_at=last_end)
    return tuple(ProgrammeDay(n, tuple(items)) for n, items in enumerate(days, start=1))


def _parse_contacts(lines: list[str]) -> tuple[ContactPerson, ...]:
    # After the prose ("Hvis du har spørgsmål …", "Klik her …") each card is three lines: the
    # portrait's label (its tail holds the initials, e.g. "1500x920_LOUA"), the role and the name.
    cards = [line for line in lines if not line.endswith(_SENTENCE_END)]
    contacts = []
    for label, role, name in zip(cards[0::3], cards[1::3], cards[2::3], strict=True):
        initials = label.rpartition("_")[2].lower()
        contacts.append(ContactPerson(name=name, role=role, email=f"{initials}@{DEMO_EMAIL_DOMAIN}"))
    return tuple(contacts)

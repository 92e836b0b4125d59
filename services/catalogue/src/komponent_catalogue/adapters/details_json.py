"""`CourseDetails` <-> the JSON stored in `courses.details`.

The page content is read and written whole, so one JSON document per course keeps the schema small;
the columns that queries and constraints need are stored separately by the repository.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import time
from typing import Any

from komponent_catalogue.domain.course import (
    Address,
    ContactPerson,
    CourseDetails,
    Instructor,
    Price,
    ProgrammeDay,
    ProgrammeItem,
    Venue,
)


def dumps(details: CourseDetails) -> str:
    return json.dumps(asdict(details), ensure_ascii=False, default=_encode_time)


def _encode_time(value: object) -> str:
    if isinstance(value, time):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in course details")


def loads(raw: str) -> CourseDetails:
    d: dict[str, Any] = json.loads(raw)
    venue = d["venue"]
    return CourseDetails(
        title=d["title"],
        introduction=tuple(d["introduction"]),
        learning_outcomes=tuple(d["learning_outcomes"]),
        instructors=tuple(Instructor(**i) for i in d["instructors"]),
        instructors_text=d["instructors_text"],
        price=Price(
            excl_vat_ore=d["price"]["excl_vat_ore"],
            vat_rate_basis_points=d["price"]["vat_rate_basis_points"],
            includes=tuple(d["price"]["includes"]),
        ),
        price_terms=tuple(d["price_terms"]),
        duration_days=d["duration_days"],
        venue=Venue(venue["name"], Address(**venue["address"])) if venue else None,
        target_group=d["target_group"],
        programme=tuple(
            ProgrammeDay(
                day["day_number"],
                tuple(
                    ProgrammeItem(
                        title=item["title"],
                        description=tuple(item["description"]),
                        starts_at=_time(item["starts_at"]),
                        ends_at=_time(item["ends_at"]),
                    )
                    for item in day["items"]
                ),
            )
            for day in d["programme"]
        ),
        contacts=tuple(ContactPerson(**c) for c in d["contacts"]),
    )


def _time(raw: str | None) -> time | None:
    return time.fromisoformat(raw) if raw is not None else None

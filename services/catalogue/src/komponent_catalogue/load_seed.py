"""`python -m komponent_catalogue.load_seed <course-page.da.txt>`: load the demo course.

Parses the seed page, moves its dates into the future (whole weeks, wall clock kept) and creates and
publishes it through the running catalogue's admin API, under a fixed id, so re-running changes
nothing. Environment: CATALOGUE_URL (default http://127.0.0.1:8001), ADMIN_API_KEY (default the local
stack's key).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from datetime import date, datetime
from pathlib import Path
from typing import Any

from komponent_runtime.auth import LOCAL_DEV_KEY

from komponent_catalogue.adapters.seed_page import load_course_page
from komponent_catalogue.domain.course import Course
from komponent_catalogue.domain.demo_dates import shift_to_future
from komponent_catalogue.domain.wall_clock import COPENHAGEN
from komponent_catalogue.entrypoints.schemas import CourseCreateRequest, CourseDetailsSchema, ScheduleSchema


def create_request(course: Course) -> dict[str, Any]:
    """The admin API's create body for a domain course."""
    body = CourseCreateRequest(
        details=CourseDetailsSchema.from_domain(course.details),
        schedule=ScheduleSchema.from_domain(course.schedule),
        capacity=course.capacity,
        invoice_lead_days=course.invoice_lead_days,
        reminder_lead_days=course.reminder_lead_days,
    )
    return body.model_dump(mode="json")


class Api:
    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.key = key

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


def load(page: Path, api: Api, today: date) -> dict[str, Any]:
    """Create and publish the demo course unless it exists; return the course as the API shows it."""
    course = shift_to_future(load_course_page(page), today)
    path = f"/admin/courses/{course.course_id}"
    code, shown = api.call("GET", path)
    if code == 404:
        code, shown = api.call("PUT", path, create_request(course))
        if code != 201:
            raise SystemExit(f"creating the demo course failed ({code}): {shown}")
    elif code != 200:
        raise SystemExit(f"reading the demo course failed ({code}): {shown}")
    if shown["status"] == "draft":
        code, shown = api.call("POST", f"{path}/publish")
        if code != 200:
            raise SystemExit(f"publishing the demo course failed ({code}): {shown}")
    return dict(shown)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: {argv[0]} <course-page.da.txt>", file=sys.stderr)
        return 2
    base_url = os.environ.get("CATALOGUE_URL", "http://127.0.0.1:8001")
    api = Api(base_url, os.environ.get("ADMIN_API_KEY", LOCAL_DEV_KEY))
    shown = load(Path(argv[1]), api, datetime.now(COPENHAGEN).date())
    print(f"demo course {shown['course_id']} ({shown['status']}), starts {shown['starts_at']}")
    print(f"public page: {base_url}/courses/{shown['course_id']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""HTTP routes: translate requests to use cases and results to responses. No rules live here."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response, status
from fastapi.responses import JSONResponse
from komponent_runtime.auth import require_scope

from komponent_catalogue.domain.operations import TransitionNotAllowed
from komponent_catalogue.domain.validation import CourseInvalid
from komponent_catalogue.entrypoints.schemas import (
    CancelRequest,
    CapacityChangeRequest,
    CourseCreateRequest,
    CourseListItem,
    CourseUpdateRequest,
    CourseView,
    ErrorsOut,
    RescheduleRequest,
    field_errors_from_domain,
)
from komponent_catalogue.service_layer import courses as use_cases
from komponent_catalogue.service_layer.courses import CourseExists, CourseNotFound, Courses

ADMIN_SCOPE = "catalogue:admin"
_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such course."},
    409: {"model": ErrorsOut, "description": "Not allowed in the course's status, or the id exists."},
    422: {"model": ErrorsOut, "description": "Field-level errors: `field` (dotted path) and `rule`."},
}


def _out(view: use_cases.CourseView) -> CourseView:
    return CourseView.from_view(view.course, view.seats_taken, view.deadline_passed)


def routes(courses: Courses) -> APIRouter:
    router = APIRouter()
    admin = APIRouter(
        prefix="/admin/courses",
        tags=["admin"],
        dependencies=[Depends(require_scope(ADMIN_SCOPE))],
        responses={401: {"description": "Missing or unknown API key."}, 403: {"description": "No scope."}},
    )

    @admin.post("", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
    async def create_course(body: CourseCreateRequest, response: Response) -> CourseView:
        """Create a draft course with a new id. Nothing is published until `/publish`."""
        view = _out(await courses.add(body.create(uuid.uuid4())))
        response.headers["Location"] = f"/admin/courses/{view.course_id}"
        return view

    @admin.put("/{course_id}", status_code=status.HTTP_201_CREATED, responses=_ERRORS)
    async def create_course_with_id(course_id: UUID, body: CourseCreateRequest) -> CourseView:
        """Create a draft course under an id the caller chose (idempotent imports); 409 if it exists."""
        return _out(await courses.add(body.create(course_id)))

    @admin.get("/{course_id}", responses=_ERRORS)
    async def get_course(course_id: UUID) -> CourseView:
        """Any course, drafts and cancelled ones included."""
        return _out(await courses.get(course_id))

    @admin.patch("/{course_id}", responses=_ERRORS)
    async def update_course(course_id: UUID, body: CourseUpdateRequest) -> CourseView:
        """Replace the page content and/or the lead days. Lead days move pending timers."""
        return _out(
            await courses.update(
                course_id,
                details=body.details.to_domain() if body.details else None,
                invoice_lead_days=body.invoice_lead_days,
                reminder_lead_days=body.reminder_lead_days,
            )
        )

    @admin.post("/{course_id}/publish", responses=_ERRORS)
    async def publish_course(course_id: UUID) -> CourseView:
        """Open for registration: emits CoursePublished and starts the course's timers."""
        return _out(await courses.publish(course_id))

    @admin.post("/{course_id}/reschedule", responses=_ERRORS)
    async def reschedule_course(course_id: UUID, body: RescheduleRequest) -> CourseView:
        """New sessions and deadline together; pending timers move, fired ones stay fired."""
        return _out(await courses.reschedule(course_id, body.schedule.to_domain()))

    @admin.post("/{course_id}/capacity", responses=_ERRORS)
    async def change_capacity(course_id: UUID, body: CapacityChangeRequest) -> CourseView:
        """Never below the seats already taken (as last reported by registration)."""
        return _out(await courses.change_capacity(course_id, body.capacity))

    @admin.post("/{course_id}/cancel", responses=_ERRORS)
    async def cancel_course(course_id: UUID, body: CancelRequest) -> CourseView:
        """Call the course off: emits CourseCancelled and removes its pending timers."""
        return _out(await courses.cancel(course_id, body.reason))

    public = APIRouter(prefix="/courses", tags=["public"])

    @public.get("")
    async def list_courses(
        q: Annotated[str | None, Query(max_length=200, description="Words in title or page text.")] = None,
        city: Annotated[str | None, Query(max_length=100)] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,  # unbounded overflowed int8: 500
    ) -> list[CourseListItem]:
        """Upcoming published courses, soonest first."""
        views = await courses.upcoming(text=q, city=city, limit=limit, offset=offset)
        return [CourseListItem.from_view(v.course, v.seats_taken, v.deadline_passed) for v in views]

    @public.get("/{course_id}", responses={404: {"description": "No such published course."}})
    async def get_published_course(course_id: UUID) -> CourseView:
        """The whole course page with seats left and whether the deadline has passed."""
        return _out(await courses.get(course_id, published_only=True))

    router.include_router(admin)
    router.include_router(public)
    return router


def install(app: FastAPI, courses: Courses) -> None:
    """Add the catalogue's routes and the translation of domain errors to HTTP to `app`."""
    app.include_router(routes(courses))

    @app.exception_handler(TransitionNotAllowed)
    async def not_allowed(_: Request, exc: TransitionNotAllowed) -> JSONResponse:
        return _errors(409, exc)

    @app.exception_handler(CourseInvalid)
    async def invalid(_: Request, exc: CourseInvalid) -> JSONResponse:
        return _errors(422, exc)

    @app.exception_handler(CourseNotFound)
    async def not_found(_: Request, exc: CourseNotFound) -> JSONResponse:
        return JSONResponse(status_code=404, content={"detail": str(exc)})

    @app.exception_handler(CourseExists)
    async def exists(_: Request, exc: CourseExists) -> JSONResponse:
        error = {"field": "course_id", "rule": "course_exists", "message": str(exc)}
        return JSONResponse(status_code=409, content={"errors": [error]})


def _errors(code: int, exc: CourseInvalid) -> JSONResponse:
    return JSONResponse(
        status_code=code, content={"errors": [e.model_dump() for e in field_errors_from_domain(exc)]}
    )

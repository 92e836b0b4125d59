"""Jinja2 rendering of every email kind into a Danish subject, HTML body and plain-text alternative.

Templates live next to this module (`templates/<kind>.html.j2`, `<kind>.txt.j2`, subjects in
`subjects.j2`). HTML is autoescaped (course titles and participant names are user-supplied); the plain-text
part is not, or a participant called "Hansen & Co" would read "Hansen &amp; Co". StrictUndefined makes a
template that mentions a field the data model lacks fail in the unit tests instead of rendering blank.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jinja2

from ..domain.emails import Email
from . import danish_format

TEMPLATE_DIR = Path(__file__).parent / "templates"


@dataclass(frozen=True, slots=True)
class SenderProfile:
    """How we sign off; the same for every email of this installation."""

    organisation: str = "Komponent"
    website: str = "https://www.komponent.dk"
    address_line: str = ""  # postal address in the footer; configured per installation


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def _autoescape(template_name: str | None) -> bool:
    return template_name is not None and template_name.endswith(".html.j2")


def build_environment(template_dir: Path = TEMPLATE_DIR) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=_autoescape,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship inside the package and never change while the process runs; without this Jinja
        # stat()s every template file on every render.
        auto_reload=False,
    )
    # Memoised: every participant of a course gets the same dates and prices formatted (a quarter of the
    # rendering time). Safe because the formats are pure and depend only on the value: amounts are ints,
    # and datetimes are shown as Copenhagen wall-clock time, so equal instants (what the cache compares)
    # always read the same; a date never equals a datetime.
    formats: dict[str, Callable[..., str]] = {
        "kroner": danish_format.kroner,
        "long_date": danish_format.long_date,
        "long_datetime": danish_format.long_datetime,
        "clock": danish_format.clock,
        "time_span": danish_format.time_span,
        "short_date": danish_format.short_date,
    }
    env.filters.update({name: lru_cache(maxsize=4096)(format_) for name, format_ in formats.items()})
    return env


_WHITESPACE = re.compile(r"\s+")


class EmailRenderer:
    def __init__(self, sender: SenderProfile | None = None, env: jinja2.Environment | None = None) -> None:
        self._sender = sender or SenderProfile()
        self._env = env or build_environment()
        # The subject macros are compiled and instantiated once: `make_module` per email re-ran the whole
        # template module (≈15 % of rendering). Their only context variable is `sender`, fixed per renderer.
        self._subjects = self._env.get_template("subjects.j2").make_module({"sender": self._sender})
        self._bodies: dict[str, tuple[jinja2.Template, jinja2.Template]] = {}

    def render(self, email: Email) -> RenderedEmail:
        context = {"email": email, "course": email.course, "sender": self._sender}
        name = email.kind.value
        text_template, html_template = self._templates(name)
        # One line, no CR/LF: a course title with a line break must not be able to inject a header.
        subject = _WHITESPACE.sub(" ", str(getattr(self._subjects, name)(email))).strip()
        text = text_template.render(context)
        html = html_template.render(context)
        return RenderedEmail(subject=subject, text=_tidy_text(text), html=html)

    def _templates(self, name: str) -> tuple[jinja2.Template, jinja2.Template]:
        templates = self._bodies.get(name)
        if templates is None:
            templates = (self._env.get_template(f"{name}.txt.j2"), self._env.get_template(f"{name}.html.j2"))
            self._bodies[name] = templates
        return templates


_BLANK_RUNS = re.compile(r"\n{3,}")


def _tidy_text(text: str) -> str:
    # Optional sections leave blank lines behind; more than one in a row looks broken in a mail client.
    return _BLANK_RUNS.sub("\n\n", text).strip() + "\n"

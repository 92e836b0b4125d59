"""The HTML bodies as a browser shows them: headless Chromium takes a screenshot of the confirmation and
the invoice email, saved under var/test-artifacts/ for a person to look at; the test checks that the page
rendered (right size, not blank, more than one colour).

Needs Debian's chromium (`./dev setup` installs it). Absent, the test fails: it is never skipped."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.domain.emails import EmailKind
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[4]
ARTIFACTS = REPO_ROOT / "var" / "test-artifacts"
WIDTH, HEIGHT = 900, 1400


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        raise AssertionError("chromium is not installed: apt-get install -y chromium (./dev setup does it)")
    return path


def screenshot(html_file: Path, png: Path) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium(),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--screenshot={png}",
                f"--window-size={WIDTH},{HEIGHT}",
                html_file.as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


@pytest.mark.parametrize("kind", [EmailKind.REGISTRATION_CONFIRMED, EmailKind.INVOICE])
def test_html_email_renders_in_chromium(kind: EmailKind, emails: dict[EmailKind, Any]) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    rendered = EmailRenderer().render(emails[kind])
    html_file = ARTIFACTS / f"email-{kind.value}.html"
    html_file.write_text(rendered.html, encoding="utf-8")
    png = ARTIFACTS / f"email-{kind.value}.png"
    png.unlink(missing_ok=True)

    screenshot(html_file, png)

    assert png.stat().st_size > 10_000
    with Image.open(png) as image:
        assert image.size == (WIDTH, HEIGHT)
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50  # text is anti-aliased: many shades, not a flat page
        background = max(colours)[0]
        inked = sum(count for count, _ in colours) - background
        assert inked > WIDTH * HEIGHT * 0.02  # something drawn beyond the background

"""The wire-format writer on its own: folding, encoded-words, injection attempts, attachments' filenames.
Everything is parsed back with Python's `email` package (policy.default), as a recipient's client would."""

from __future__ import annotations

import base64
import re
from datetime import datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from komponent_notifications.adapters import rfc5322
from komponent_notifications.adapters.mime import MailIdentity, MimeComposer
from komponent_notifications.adapters.rendering import EmailRenderer
from komponent_notifications.domain.emails import Email, EmailKind

LONG_DANISH_NAME = (
    "Søren Ærø-Østergård Kjærsgaard-Bødkersen Åkjær Hvidtfeldt Frederiksberg Løvenørn Mærsk-Møller Æbelø"
)
# Text as a subject or display name can carry it: any character but surrogates (not encodable).
UNICODE_TEXT = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=300)


def parsed(head: bytes, body: bytes = b"x\r\n") -> EmailMessage:
    message = message_from_bytes(head + b"\r\n" + body, policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def lines(data: bytes) -> list[bytes]:
    assert data.endswith(b"\r\n")
    return data[:-2].split(b"\r\n")


def assert_well_formed_header(data: bytes, limit: int = rfc5322.LINE_LIMIT) -> None:
    """CRLF only, 7-bit, every continuation starts with white space, no line over `limit`."""
    assert data.isascii()
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    first, *rest = lines(data)
    assert re.match(rb"^[\x21-\x39\x3b-\x7e]+: ", first), first
    assert all(line[:1] == b" " and line.strip() for line in rest), rest
    assert all(len(line) <= limit for line in [first, *rest]), [len(x) for x in [first, *rest]]


# --- subjects -----------------------------------------------------------------------------------------


def test_a_long_danish_subject_is_folded_into_encoded_words_within_76_characters() -> None:
    subject = "Bekræftelse af tilmelding: Vildskab og innovation i politikudvikling – én dag på Ærø" * 2
    data = rfc5322.unstructured("Subject", subject)
    assert_well_formed_header(data, rfc5322.ENCODED_LINE_LIMIT)
    assert len(lines(data)) > 2
    assert all(b"=?utf-8?b?" in line for line in lines(data))
    assert parsed(data)["Subject"] == subject


def test_a_long_ascii_subject_is_folded_at_spaces_and_left_readable() -> None:
    subject = " ".join(["Invoice F-2023-00001 for the course on policy development"] * 3)
    data = rfc5322.unstructured("Subject", subject)
    assert_well_formed_header(data)
    assert b"=?" not in data
    assert parsed(data)["Subject"] == subject


def test_a_word_too_long_to_fold_is_encoded_so_no_line_passes_the_limit() -> None:
    subject = "Kursus " + "x" * 300
    data = rfc5322.unstructured("Subject", subject)
    assert_well_formed_header(data, rfc5322.ENCODED_LINE_LIMIT)
    assert parsed(data)["Subject"] == subject


def test_ascii_that_looks_like_an_encoded_word_is_encoded_not_passed_through() -> None:
    subject = "=?utf-8?b?SGVq?= is not a greeting"
    assert parsed(rfc5322.unstructured("Subject", subject))["Subject"] == subject


def test_four_byte_characters_are_never_split_between_encoded_words() -> None:
    subject = "Kursus 🎓" * 40
    data = rfc5322.unstructured("Subject", subject)
    assert_well_formed_header(data, rfc5322.ENCODED_LINE_LIMIT)
    for word in re.findall(rb"=\?utf-8\?b\?([^?]*)\?=", data):
        base64.b64decode(word).decode("utf-8")  # each word on its own is whole characters
    assert parsed(data)["Subject"] == subject


@settings(max_examples=300, deadline=None)
@given(UNICODE_TEXT)
def test_any_subject_round_trips_as_one_header(subject: str) -> None:
    data = rfc5322.unstructured("Subject", subject)
    assert_well_formed_header(data)
    message = parsed(data)
    assert message.keys() == ["Subject"]
    assert message["Subject"] == rfc5322.one_line(subject)


# --- header injection ----------------------------------------------------------------------------------

INJECTIONS = [
    "Kursus\r\nBcc: alle@kommune.dk",
    "Kursus\nBcc: alle@kommune.dk",
    "Kursus\rBcc: alle@kommune.dk",
    "Kursus\r\n\r\n<h1>body</h1>",
    "Kursus\u2028Bcc: alle@kommune.dk",
    "Kursus\x85Bcc: alle@kommune.dk",
    "Kursus\x00\x1b[2J",
]


@pytest.mark.parametrize("text", INJECTIONS, ids=range(len(INJECTIONS)))
def test_line_breaks_in_subjects_and_names_never_start_a_header(text: str) -> None:
    head = (
        rfc5322.mailbox("To", text, "deltager@kommune.dk")
        + rfc5322.unstructured("Subject", text)
        + rfc5322.header("X-Komponent-Email-Kind", "registration_confirmed")
    )
    assert_well_formed_header(rfc5322.unstructured("Subject", text))
    assert_well_formed_header(rfc5322.mailbox("To", text, "deltager@kommune.dk"))
    message = parsed(head, b"kroppen\r\n")
    assert message.keys() == ["To", "Subject", "X-Komponent-Email-Kind"]
    assert message["To"].addresses[0].addr_spec == "deltager@kommune.dk"
    assert message.get_content().strip() == "kroppen"


@pytest.mark.parametrize(
    "address",
    [
        "deltager@kommune.dk\r\nBcc: alle@kommune.dk",
        "deltager@kommune.dk>\r\nRCPT TO:<alle@kommune.dk",
        "deltager@kommune.dk> <alle@kommune.dk",
        "del tager@kommune.dk",
        "deltager@kommune.dk,alle@kommune.dk",
        "søren@kommune.dk",  # no SMTPUTF8: an internationalised address is refused, not mangled
        "deltager",
        "",
    ],
)
def test_addresses_that_are_not_plain_addr_specs_are_refused(address: str) -> None:
    with pytest.raises(ValueError):
        rfc5322.mailbox("To", "Deltager", address)


@pytest.mark.parametrize(
    ("name", "value"),
    [("Message-ID", "<x@y>\r\nBcc: a@b.dk"), ("X-Komponent-Email-Kind", "æ"), ("Bad Name", "x")],
)
def test_generated_headers_are_checked(name: str, value: str) -> None:
    with pytest.raises(ValueError):
        rfc5322.header(name, value)


# --- display names -------------------------------------------------------------------------------------


def rfc2047_display_name(data: bytes) -> str:
    """The display name as an RFC 2047 decoder reads it (white space between adjacent encoded-words
    dropped). Python's address parser keeps that white space; `email.header` follows the RFC."""
    value = data.decode("ascii").replace("\r\n", "").split(": ", 1)[1]
    phrase = value[: value.rindex(" <")]
    return str(make_header(decode_header(phrase)))


def test_a_long_danish_name_is_folded_and_arrives_intact() -> None:
    data = rfc5322.mailbox("To", LONG_DANISH_NAME, "soeren@kommune.dk")
    assert_well_formed_header(data, rfc5322.ENCODED_LINE_LIMIT)
    assert len(lines(data)) >= 3
    assert rfc2047_display_name(data) == LONG_DANISH_NAME
    # Python shows a doubled space where a run of non-ASCII words had to be cut: cuts go after a space,
    # never inside a word, so even such a reader shows every word whole.
    address = parsed(data)["To"].addresses[0]
    assert address.addr_spec == "soeren@kommune.dk"
    assert address.display_name.split() == LONG_DANISH_NAME.split()


def test_short_danish_names_read_the_same_everywhere() -> None:
    for name in ("Søren Ærø", "Deltager Ærø 12", "Louise Æ. Angelo", "Åse Bødker-Jørgensen", "Kommune Ø"):
        data = rfc5322.mailbox("To", name, "a@kommune.dk")
        assert parsed(data)["To"].addresses[0].display_name == name
        assert rfc2047_display_name(data) == name
    assert b"Deltager =?utf-8?b?" in rfc5322.mailbox("To", "Deltager Ærø 12", "a@kommune.dk")


@pytest.mark.parametrize(
    "name",
    [
        "Louise Angelo",
        "Hansen & Co",
        "Louise A. Angelo",
        'Mette "Mis" Hansen',
        "Back\\slash, Comma (and parentheses) <angles> @ ; :",
        " ".join(["Anne-Mette"] * 20),
    ],
)
def test_ascii_names_are_atoms_or_quoted_and_round_trip(name: str) -> None:
    data = rfc5322.mailbox("Reply-To", name, "loua@komponent.dk")
    assert_well_formed_header(data)
    address = parsed(data)["Reply-To"].addresses[0]
    assert (address.display_name, address.addr_spec) == (name, "loua@komponent.dk")


def test_a_word_too_long_to_fold_keeps_a_long_line_never_over_998() -> None:
    for name in ("A" * 100, "A" * 990):  # plain ASCII: stays readable on a line of its own
        data = rfc5322.mailbox("To", name, "a@kommune.dk")
        assert max(len(line) for line in lines(data)) <= rfc5322.HARD_LIMIT
        assert parsed(data)["To"].addresses[0].display_name == name
    for name in ("A" * 1200, '"Q" ' + "A" * 1200, "Æ" * 100):  # encoded-words, which may be cut anywhere
        data = rfc5322.mailbox("To", name, "a@kommune.dk")
        assert_well_formed_header(data, rfc5322.ENCODED_LINE_LIMIT)
        assert rfc2047_display_name(data) == name


def test_an_empty_name_leaves_the_bare_address() -> None:
    assert rfc5322.mailbox("To", " \r\n ", "a@b.dk") == b"To: a@b.dk\r\n"


@settings(max_examples=300, deadline=None)
@given(UNICODE_TEXT)
def test_any_display_name_round_trips(name: str) -> None:
    data = rfc5322.mailbox("To", name, "deltager@kommune.dk")
    assert_well_formed_header(data)
    message = parsed(data)
    assert message.keys() == ["To"]
    address = message["To"].addresses[0]
    assert address.addr_spec == "deltager@kommune.dk"
    expected = rfc5322.one_line(name)
    if b"=?" in data:
        assert rfc2047_display_name(data) == expected
        # Python's own reading differs only in white space between encoded-words (see above).
        assert address.display_name.replace(" ", "") == expected.replace(" ", "")
    else:
        assert address.display_name == expected


# --- bodies and attachments ---------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 56, 57, 58, 10_000])
def test_base64_lines_are_76_characters_with_crlf_and_decode_back(size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    encoded = rfc5322.base64_lines(data)
    assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
    assert b"\n" not in encoded.replace(b"\r\n", b"")
    assert base64.b64decode(encoded) == data


def test_boundaries_are_random_and_cannot_occur_in_base64() -> None:
    marks = {rfc5322.boundary() for _ in range(100)}
    assert len(marks) == 100
    assert all(m.startswith("=_") and len(m) <= 70 for m in marks)


@pytest.mark.parametrize(
    "filename",
    [
        "Faktura F-2023-00001.pdf",
        "Kreditnota K-2023-00001 for Ærø Kommune.pdf",
        "Rykker nr. 2 til Æbeltoft-Ørbæk-Åbenrå Kommunes Økonomiafdeling vedrørende faktura F-2023-00001.pdf",
        'Faktura "hastende" F-1.pdf',
        "F" * 90 + ".pdf",
    ],
)
def test_attachment_filenames_arrive_intact(filename: str) -> None:
    part = rfc5322.base64_part(
        "Content-Type: application/pdf\r\n" + rfc5322.attachment_disposition(filename), b"%PDF-1.4 x"
    )
    head, _ = part.split(b"\r\n\r\n", 1)
    assert all(len(line) <= rfc5322.LINE_LIMIT for line in head.split(b"\r\n"))
    message = message_from_bytes(part, policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert message.get_filename() == filename
    assert message.get_content_disposition() == "attachment"
    assert message.get_content() == b"%PDF-1.4 x"


# --- whole messages -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(EmailKind), ids=lambda k: k.value)
def test_every_composed_message_is_7bit_crlf_with_short_lines(
    kind: EmailKind, emails: dict[EmailKind, Email], now: datetime
) -> None:
    identity = MailIdentity("kurser@komponent.dk", "Komponent Kurser & Konferencer", "komponent.dk")
    message = MimeComposer(identity, EmailRenderer()).compose(emails[kind], now=now)
    data = message.data
    assert data.isascii()
    assert data.count(b"\r\n") == data.count(b"\n") == data.count(b"\r")
    assert max(len(line) for line in data.split(b"\r\n")) <= rfc5322.LINE_LIMIT
    assert message.recipients == (emails[kind].recipient.email,)
    assert message.envelope_from == "kurser@komponent.dk"
    head = data.split(b"\r\n\r\n", 1)[0]
    names = [line.split(b":")[0] for line in head.split(b"\r\n") if not line.startswith(b" ")]
    expected = [
        b"From",
        b"To",
        b"Reply-To",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"MIME-Version",
        b"Auto-Submitted",
        b"X-Auto-Response-Suppress",
        b"X-Komponent-Email-Kind",
        b"X-Komponent-Event-Id",
        b"Content-Type",
    ]
    assert names == expected
    assert message_from_bytes(data, policy=policy.default)["From"].addresses[0].display_name == (
        "Komponent Kurser & Konferencer"
    )


def test_two_compositions_differ_only_in_their_boundaries(
    emails: dict[EmailKind, Email], now: datetime
) -> None:
    composer = MimeComposer(MailIdentity("kurser@komponent.dk", "Komponent", "komponent.dk"), EmailRenderer())
    first = composer.compose(emails[EmailKind.INVOICE], now=now).data
    second = composer.compose(emails[EmailKind.INVOICE], now=now).data
    assert first != second
    unbounded = re.compile(rb"=_[0-9a-f]{24}")
    assert unbounded.sub(b"B", first) == unbounded.sub(b"B", second)

"""RFC 5322 / MIME messages written straight to bytes.

Why not `email.mime` + `email.generator`: flattening an object tree walks every part and header again in
Python and cost more CPU per email than the SMTP transaction (≈2 ms per confirmation); our messages have a
small fixed shape, so writing the bytes directly is simple and a fraction of that.

What comes out (the tests parse it back with the standard library and send it through a real SMTP server):
- CRLF line endings and 7-bit only: text and attachments in base64 (76-character lines), non-ASCII display
  names and subjects as RFC 2047 encoded-words, so no relay needs 8BITMIME or SMTPUTF8.
- Header lines of at most 78 characters (76 for lines carrying encoded-words, RFC 2047 §2); only an
  unfoldable token longer than that (an address, a URL) makes a longer line, never one over 998.
- No header injection: every value is either checked (ASCII, no control characters) or encoded; line
  breaks in display names and subjects become spaces before anything is written.
- Boundaries start with "=_", which base64 lines and our headers never contain, so no line of a part can
  be mistaken for a boundary; the random rest only keeps them distinct per message.
"""

from __future__ import annotations

import os
import re
from binascii import b2a_base64
from collections.abc import Sequence
from urllib.parse import quote

LINE_LIMIT = 78  # RFC 5322 §2.1.1 SHOULD
ENCODED_LINE_LIMIT = 76  # RFC 2047 §2: a line with encoded-words
HARD_LIMIT = 998  # RFC 5322 §2.1.1 MUST
_WORD_LIMIT = 75  # RFC 2047 §2: one encoded-word
_WORD_OVERHEAD = len("=?utf-8?b?") + len("?=")

_WHITESPACE = re.compile(r"\s+")
# A display name that needs no quoting: atext (RFC 5322 §3.2.3) and single spaces.
_ATOMS = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(?: [A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
# addr-spec as we send it: dot-atom local part, host name domain (what the validated contracts carry).
_ADDR_SPEC = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")
_FIELD_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")


def one_line(text: str) -> str:
    """Any run of whitespace (CR, LF, tab, Unicode line separators) as one space: a value can never start a
    new header line."""
    return _WHITESPACE.sub(" ", text).strip()


def _plain(text: str) -> bool:
    # "=?" in plain text could be read as the start of an encoded-word by a decoder: encode such text too.
    return text.isascii() and _PRINTABLE.fullmatch(text) is not None and "=?" not in text


def encoded_words(text: str, first_room: int, *, cut_after_space: bool = False) -> list[str]:
    """RFC 2047 "B" encoded-words for `text`: the first fits in `first_room` characters, the rest in a
    folded line each. Never splits a UTF-8 sequence (each word must decode to whole characters). With
    `cut_after_space`, a word ends after a space where one is in reach (see `_phrase`)."""
    data = text.encode("utf-8")
    words: list[str] = []
    room = min(max(first_room, 20), _WORD_LIMIT)  # 20: room for at least one 4-byte character
    start = 0
    while start < len(data):
        end = start + (room - _WORD_OVERHEAD) // 4 * 3
        if end < len(data):
            space = data.rfind(b" ", start + 1, end) if cut_after_space else -1
            if space != -1:
                end = space + 1
            while data[end] & 0xC0 == 0x80:  # a continuation byte: cut before its character
                end -= 1
        words.append(f"=?utf-8?b?{b2a_base64(data[start:end], newline=False).decode('ascii')}?=")
        start = end
        room = _WORD_LIMIT
    return words or ["=?utf-8?b??="]


def fold(name: str, tokens: Sequence[str], limit: int = LINE_LIMIT) -> bytes:
    """`Name: token token …` folded before a token whenever the line would pass `limit`."""
    line = name + ":"
    lines: list[str] = []
    for index, token in enumerate(tokens):
        if index and len(line) + 1 + len(token) > limit:
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    if any(len(each) > HARD_LIMIT for each in lines):
        raise ValueError(f"{name} header has a token longer than a line may be")
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def _foldable(name: str, tokens: Sequence[str]) -> bool:
    """Whether folding at these tokens keeps every line within LINE_LIMIT."""
    return len(name) + 2 + len(tokens[0]) <= LINE_LIMIT and all(len(t) < LINE_LIMIT for t in tokens)


def header(name: str, value: str) -> bytes:
    """A header whose value we generate (ids, dates, fixed words): checked, never encoded."""
    if _FIELD_NAME.fullmatch(name) is None:
        raise ValueError(f"not a header field name: {name!r}")
    if not value.isascii() or _PRINTABLE.fullmatch(value) is None:
        raise ValueError(f"{name} must be printable ASCII")
    if len(name) + 2 + len(value) > HARD_LIMIT:
        raise ValueError(f"{name} header is too long")
    return f"{name}: {value}\r\n".encode("ascii")


def unstructured(name: str, text: str) -> bytes:
    """Subject and the like: plain when it is printable ASCII with short words, else encoded-words."""
    text = one_line(text)
    if _plain(text):
        words = text.split(" ")
        if _foldable(name, words):
            return fold(name, words)
    return fold(name, encoded_words(text, ENCODED_LINE_LIMIT - len(name) - 2), ENCODED_LINE_LIMIT)


def addr_spec(address: str) -> str:
    """The address as it goes into headers and the SMTP envelope. Raises ValueError for anything that is
    not a plain ASCII address (no CR/LF, no angle brackets, no internationalised local part)."""
    if _ADDR_SPEC.fullmatch(address) is None:
        raise ValueError("not a plain ASCII email address")
    return address


def mailbox(name: str, display_name: str, address: str) -> bytes:
    """From/To/Reply-To with one mailbox: `Name <addr>`; the name as atoms, a quoted-string or, where it
    is not ASCII, atoms and encoded-words."""
    spec = addr_spec(address)
    display = one_line(display_name)
    if not display:
        return fold(name, [spec])
    if _plain(display):
        phrase = display
        if _ATOMS.fullmatch(phrase) is None:
            phrase = '"' + phrase.replace("\\", "\\\\").replace('"', '\\"') + '"'
        # Folding inserts CRLF before one of these spaces; unfolding restores the name exactly (also inside
        # a quoted-string, where folding white space is allowed). A word too long to fold keeps its line.
        tokens = phrase.split(" ")
        limit = LINE_LIMIT
    else:
        tokens = _phrase(display, ENCODED_LINE_LIMIT - len(name) - 2)
        limit = ENCODED_LINE_LIMIT
    if any(len(t) > HARD_LIMIT - len(name) - 4 for t in tokens):  # unfoldable even on a line of its own
        tokens = encoded_words(display, ENCODED_LINE_LIMIT - len(name) - 2)
        limit = ENCODED_LINE_LIMIT
    return fold(name, [*tokens, f"<{spec}>"], limit)


def _phrase(display: str, first_room: int) -> list[str]:
    """A display name with non-ASCII words: ASCII atoms stay readable, each run of other words becomes
    encoded-words with its spaces inside them.

    Why runs: RFC 2047 decoders drop the white space between two adjacent encoded-words, so "Søren Ærø" as
    two words would read "SørenÆrø". Python's address parser (and some others) keep that white space
    instead, so a run too long for one word is cut after one of its spaces, where both readings agree
    but for the space, never inside a word."""
    tokens: list[str] = []
    run: list[str] = []
    for word in [*display.split(" "), ""]:
        readable = bool(word) and _ATOMS.fullmatch(word) is not None and "=?" not in word
        if readable or not word:  # the empty word at the end flushes the last run
            if run:
                room = first_room if not tokens else _WORD_LIMIT
                tokens += encoded_words(" ".join(run), room, cut_after_space=True)
                run = []
            if word:
                tokens.append(word)
        else:
            run.append(word)
    return tokens


def boundary() -> str:
    return "=_" + os.urandom(12).hex()


def base64_lines(data: bytes) -> bytes:
    """Base64 in 76-character lines, each ending in CRLF (RFC 2045 §6.8)."""
    encoded = b2a_base64(data, newline=False)
    return b"".join([encoded[i : i + 76] + b"\r\n" for i in range(0, len(encoded), 76)])


def base64_part(content_headers: str, data: bytes) -> bytes:
    """A leaf part: its headers (CRLF-terminated lines), a blank line, the base64 body."""
    return (content_headers + "Content-Transfer-Encoding: base64\r\n\r\n").encode("ascii") + base64_lines(
        data
    )


def multipart(subtype: str, parts: Sequence[bytes]) -> bytes:
    """A multipart entity (its Content-Type header, a blank line, the parts between boundaries)."""
    mark = boundary()
    delimiter = f"--{mark}\r\n".encode("ascii")
    body = b"".join([delimiter + part for part in parts])
    head = f'Content-Type: multipart/{subtype}; boundary="{mark}"\r\n\r\n'.encode("ascii")
    return head + body + f"--{mark}--\r\n".encode("ascii")


def attachment_disposition(filename: str) -> str:
    """`Content-Disposition: attachment; filename…` as header lines: a quoted filename when it is plain
    ASCII (understood by every client), RFC 2231 UTF-8 (percent-encoded, continued over lines when long)
    otherwise, so Danish letters in a filename survive."""
    filename = one_line(filename)
    start = "Content-Disposition: attachment;"
    if _plain(filename) and '"' not in filename and "\\" not in filename:
        plain = f' filename="{filename}"'
        if len(start) + len(plain) <= LINE_LIMIT:
            return start + plain + "\r\n"
        if len(plain) < LINE_LIMIT:
            return start + "\r\n" + plain + "\r\n"
    value = "utf-8''" + quote(filename.encode("utf-8"), safe="")
    if len(start) + len(" filename*=") + len(value) <= LINE_LIMIT:
        return f"{start} filename*={value}\r\n"
    # RFC 2231 §3/§4: filename*0*=utf-8''…; filename*1*=…  Cut between %XX escapes, never inside one.
    chunks: list[str] = []
    while value:
        cut = min(len(value), 56)
        if cut < len(value):
            escape = value.rfind("%", cut - 2, cut)
            if escape != -1:
                cut = escape
        chunks.append(value[:cut])
        value = value[cut:]
    params = [f" filename*{n}*={chunk}" for n, chunk in enumerate(chunks)]
    return start + "\r\n" + ";\r\n".join(params) + "\r\n"

"""The email fast path gives exactly pydantic's result (email-validator's normal form, or the same error) for
every string, and really is taken for plain addresses."""

from __future__ import annotations

import re
from collections.abc import Callable

import email_validator
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from komponent_contracts import email_addresses
from komponent_contracts.email_addresses import checked_email
from komponent_contracts.events.values import Participant, _checked_email
from pydantic import ValidationError
from pydantic.networks import validate_email
from pydantic_core import PydanticCustomError


def _outcome(check: Callable[[str], str], value: str) -> tuple[str, str]:
    try:
        return "ok", check(value)
    except Exception as e:  # the type and message must match, whatever they are
        return type(e).__name__, str(e)


def _assert_same_as_pydantic(value: str, *, count: bool = False) -> None:
    fallbacks: list[str] = []

    def counted(v: str) -> tuple[str, str]:
        fallbacks.append(v)
        return validate_email(v)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_addresses, "validate_email", counted)
        fast = _outcome(checked_email, value)
    assert fast == _outcome(lambda v: validate_email(v)[1], value), value
    if count:  # hypothesis statistics (--hypothesis-show-statistics): the share each way
        taken = "pydantic" if fallbacks else "fast path"
        event(f"{'accepted' if fast[0] == 'ok' else 'rejected'} by {taken}")


# An email-like grammar that visits every rule: case, dots and hyphens in odd places, label and address
# lengths on both sides of the limits, Punycode and "ab--" labels, digit and mixed TLDs, special-use
# domains, RFC 2142 mailbox names, quoted local parts, Unicode, whitespace and "Name <addr>".
LOCAL_CHARS = st.sampled_from("abcxyzABCXYZ0189._+-'!#$%&*/=?^`{|}~\"\\ @<>()[],;:æøåÆØÅéüß\u0301\u200b\t")
LABEL_CHARS = st.sampled_from("abcxyzABCXYZ0189--_.æøåÆØÅüßİ\u0301\u200b\uff0e ")
MAILBOXES = ["info", "Info", "INFO", "postmaster", "PostMaster", "abuse", "www", "news", "sales", "infos"]
TLDS = [
    "dk", "DK", "com", "Com", "museum", "a", "1dk", "dk1", "123", "x1y", "xn--p1ai", "xn--", "ab--cd", "-dk",
    "dk-", "test", "TEST", "local", "localhost", "invalid", "example", "arpa", "onion", "in-addr.arpa", "",
    "ærø", "dk.", "d_k", "x" * 63, "x" * 64,
]  # fmt: skip
# 254 characters, the most email-validator allows, with the longest local part the fast path takes.
LONGEST = "l" * 64 + "@" + "d" * 63 + "." + "d" * 63 + "." + "d" * 58 + ".dk"
SPECIAL = ["test", "local", "localhost", "invalid", "example", "arpa", "onion", "example.com", "Local"]


@st.composite
def local_parts(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["atoms"] * 6 + ["mailbox", "chars", "quoted", "long"]))
    if kind == "mailbox":
        return draw(st.sampled_from(MAILBOXES))
    if kind == "chars":
        return draw(st.text(LOCAL_CHARS, max_size=12))
    if kind == "quoted":
        return '"' + draw(st.text(LOCAL_CHARS, max_size=10)) + '"'
    if kind == "long":
        return draw(st.sampled_from("aZ9")) * draw(st.integers(60, 70))
    atoms = draw(st.lists(st.from_regex(r"[A-Za-z0-9_+-]{1,8}", fullmatch=True), min_size=1, max_size=4))
    return draw(st.sampled_from(["."] * 5 + [".."])).join(atoms)


@st.composite
def labels(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["ldh"] * 8 + ["chars", "long", "punycode", "r-ldh"]))
    if kind == "chars":
        return draw(st.text(LABEL_CHARS, max_size=10))
    if kind == "long":
        return draw(st.sampled_from("aZ9")) * draw(st.integers(60, 66))
    if kind == "punycode":
        return draw(
            st.sampled_from(["xn--bcher-kva", "XN--BCHER-KVA", "xn--abc", "xn--", "xn--ls8h", "abxn--c"])
        )
    if kind == "r-ldh":
        return draw(st.sampled_from(["ab--cd", "a-b--c", "a--b", "AB--CD", "-ab", "ab-", "a-b"]))
    return draw(st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,6}[A-Za-z0-9])?", fullmatch=True))


@st.composite
def domains(draw: st.DrawFn) -> str:
    names = draw(st.lists(labels(), min_size=draw(st.sampled_from([0, 1, 1, 1])), max_size=3))
    tail = draw(st.sampled_from(["dk", "DK", "com", "Se"] * 8 + TLDS + SPECIAL))
    return ".".join([*names, tail])


@st.composite
def near_length_limits(draw: st.DrawFn) -> str:
    # A plain address whose total length is around 254, with long locals and labels around 63/64.
    around_limits = st.sampled_from([1, 2, 62, 63, 64, 65]) | st.integers(1, 70)
    local = "l" * draw(around_limits)
    target = draw(st.integers(245, 262)) - len(local) - 1 - 3  # "@" and ".dk"
    domain_labels = []
    while target > 1:
        size = min(target - 1, draw(around_limits))
        domain_labels.append(draw(st.sampled_from("dD7")) * size)
        target -= size + 1
    return f"{local}@{'.'.join([*domain_labels, 'dk'])}"


@st.composite
def email_like(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        address = draw(near_length_limits())
    else:
        address = (
            f"{draw(local_parts())}{draw(st.sampled_from(['@'] * 8 + ['@@', '', '＠']))}{draw(domains())}"
        )
    wrap = draw(
        st.sampled_from(
            ["{}"] * 8 + [" {}", "{} ", "\t{} ", "\t{}\n", "Anne <{}>", '"Hansen, A" <{}>', "<{}>"]
        )
    )
    return wrap.format(address)


@settings(max_examples=2000, deadline=None)
@given(email_like())
def test_same_as_pydantic_for_email_like_strings(value: str) -> None:
    _assert_same_as_pydantic(value, count=True)


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=40) | st.text(st.sampled_from('aZ9@.-_+ <>"æ'), max_size=30))
def test_same_as_pydantic_for_random_text(value: str) -> None:
    _assert_same_as_pydantic(value, count=True)


def test_longest_is_as_long_as_it_says() -> None:
    assert len(LONGEST) == 254
    assert len(LONGEST.replace(".dk", "d.dk")) == 255


def _pydantic_not_called(monkeypatch: pytest.MonkeyPatch) -> None:
    def unexpected(value: str) -> tuple[str, str]:
        raise AssertionError(f"fell back to pydantic for {value!r}")

    monkeypatch.setattr(email_addresses, "validate_email", unexpected)


# Plain addresses and what pydantic makes of them (None: the address as given).
PLAIN: list[tuple[str, str | None]] = [
    ("anne.hansen@roskilde.dk", "anne.hansen@roskilde.dk"),
    ("b123t456@bench.kommune.dk", "b123t456@bench.kommune.dk"),
    # The local part keeps its case; the domain is lowercased.
    ("Anne.Hansen@Roskilde.DK", "Anne.Hansen@roskilde.dk"),
    # RFC 2142 mailbox names are case-insensitive, so email-validator lowercases them.
    ("INFO@Kommune.dk", "info@kommune.dk"),
    ("PostMaster@kommune.dk", "postmaster@kommune.dk"),
    ("Infos@kommune.dk", "Infos@kommune.dk"),
    ("first_last+tag-1@a-b.c-d.dk", "first_last+tag-1@a-b.c-d.dk"),
    ("a@" + "d" * 63 + ".dk", "a@" + "d" * 63 + ".dk"),  # the longest label
    ("l" * 64 + "@kommune.dk", "l" * 64 + "@kommune.dk"),  # the longest local part taken here
    (LONGEST, None),  # 254 characters
    ("a@x.example", "a@x.example"),  # RFC 6761's example names are not rejected by email-validator
]
# Valid, but outside the plain subset, and what pydantic makes of them.
SLOW_BUT_VALID = [
    ("l" * 65 + "@kommune.dk", "l" * 65 + "@kommune.dk"),  # over 64 before the @: only strict mode rejects it
    ("o'brien@kommune.dk", "o'brien@kommune.dk"),  # atext other than _ + -
    ("a@x.1dk", "a@x.1dk"),  # a TLD need only end in a letter
    ("a@x.b", "a@x.b"),  # a one-letter TLD
    ("a@a-b--c.dk", "a@a-b--c.dk"),  # "--" other than at the third character
    ("a@xn--bcher-kva.dk", "a@bücher.dk"),  # Punycode comes back as Unicode
    ("æble@kommune.dk", "æble@kommune.dk"),
    (" a@kommune.dk\t", "a@kommune.dk"),  # pydantic strips whitespace around the address
    ("Anne <a@kommune.dk>", "a@kommune.dk"),  # pydantic's "Name <addr>"
]
# Rejected, and why.
REJECTED = [
    ('"a"@kommune.dk', "Quoting the part before the @-sign is not allowed"),  # even unnecessary quotes
    ("a@x.test", "special-use"),
    ("a@X.Local", "special-use"),
    ("a@x.localhost", "special-use"),
    ("a@x.invalid", "special-use"),
    ("a@1.0.10.in-addr.arpa", "special-use"),
    ("a@x.onion", "special-use"),
    ("a@ab--cd.dk", "two letters followed by two dashes"),
    ("a@-x.dk", "hyphen immediately after the @-sign"),
    ("a@x-.dk", "period and a hyphen next to each other"),
    ("a@x.dk-", "cannot end with a hyphen"),
    ("a@x..dk", "two periods in a row"),
    ("a@x.dk.", "cannot end with a period"),
    ("a.@x.dk", "period immediately before the @-sign"),
    (".a@x.dk", "cannot start with a period"),
    ("a..b@x.dk", "two periods in a row"),
    ("a@x.dk1", "not within a valid top-level domain"),
    ("a@x.123", "not within a valid top-level domain"),
    ("a@kommune", "should have a period"),
    ("a@" + "d" * 64 + ".dk", "periods cannot be separated by so many characters"),
    (LONGEST.replace(".dk", "d.dk"), "too long (1 character too many)"),
    ("a@b@kommune.dk", "invalid characters: '@'"),
    ("a b@kommune.dk", "invalid characters before the @-sign: SPACE"),
    ("a@kommune.dk\n", "Carriage return and line feed"),
    ("", "must have an @-sign"),
]
OTHERS = [value for value, _ in SLOW_BUT_VALID + REJECTED]


@pytest.mark.parametrize(("value", "normalized"), PLAIN)
def test_plain_addresses_take_the_fast_path(
    value: str, normalized: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = validate_email(value)[1]
    assert expected == (normalized or value)
    _pydantic_not_called(monkeypatch)
    assert checked_email(value) == expected


@pytest.mark.parametrize(("value", "normalized"), SLOW_BUT_VALID)
def test_valid_addresses_outside_the_plain_subset(value: str, normalized: str) -> None:
    assert validate_email(value)[1] == normalized
    assert checked_email(value) == normalized


@pytest.mark.parametrize(("value", "reason"), REJECTED)
def test_rejected_addresses(value: str, reason: str) -> None:
    with pytest.raises(PydanticCustomError, match=re.escape(reason)):
        checked_email(value)


@pytest.mark.parametrize("value", OTHERS)
def test_everything_else_goes_to_pydantic(value: str) -> None:
    calls: list[str] = []

    def spy(v: str) -> tuple[str, str]:
        calls.append(v)
        return validate_email(v)

    _assert_same_as_pydantic(value)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(email_addresses, "validate_email", spy)
        _outcome(checked_email, value)
    assert calls == [value]


@pytest.mark.parametrize(
    "options",
    [
        {"STRICT": True},
        {"TEST_ENVIRONMENT": True},
        {"GLOBALLY_DELIVERABLE": False},
        {"ALLOW_QUOTED_LOCAL": True},
    ],
    ids=str,
)
def test_same_as_pydantic_under_email_validators_global_options(
    options: dict[str, bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, setting in options.items():
        monkeypatch.setattr(email_validator, name, setting)
    for value in [value for value, _ in PLAIN] + OTHERS:
        _assert_same_as_pydantic(value)


def test_special_use_names_are_read_when_checking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        email_validator, "SPECIAL_USE_DOMAIN_NAMES", [*email_validator.SPECIAL_USE_DOMAIN_NAMES, "kommune.dk"]
    )
    with pytest.raises(PydanticCustomError, match="special-use"):
        checked_email("a@roskilde.kommune.dk")
    assert checked_email("a@kommune.dk.dk") == "a@kommune.dk.dk"


def test_events_use_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    _checked_email.cache_clear()
    _pydantic_not_called(monkeypatch)
    participant = Participant(name="Anne", email="Anne.Hansen@Roskilde.DK", job_title="Pædagog")
    assert participant.email == "Anne.Hansen@roskilde.dk"
    monkeypatch.undo()
    with pytest.raises(ValidationError, match="special-use"):
        Participant(name="Anne", email="anne@roskilde.test", job_title="Pædagog")

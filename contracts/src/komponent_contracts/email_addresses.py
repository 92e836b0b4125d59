"""Checking an email address: pydantic's result (email-validator's), without its cost for plain addresses.

`pydantic.networks.validate_email` spends ~25 µs CPU on a plain address (bench/email_check_bench.py), most
of it on Unicode work (UTS #46 checks per character of the domain, NFC per character of the address) that
cannot change a plain ASCII address. For the plain subset below, email-validator's result is simple: the
address as given, with the domain lowercased (UTS #46 case folding) and an RFC 2142 mailbox name (info@,
postmaster@ ...) lowercased. It is so under any of email-validator's global options (STRICT,
TEST_ENVIRONMENT, GLOBALLY_DELIVERABLE ...), see below. Everything outside the subset, valid or not, goes
to pydantic, so every error and every edge case stays exactly pydantic's."""

from __future__ import annotations

import re

import email_validator
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from pydantic.networks import validate_email

# Local part: dot-atom (no leading, trailing or doubled dots) of the usual characters; the rest of the
# RFC 5322 atext (!#$%&'*/=?^`{|}~) is valid but rare, and goes the slow way. Domain: at least two labels
# of letters, digits and inner hyphens, 1-63 characters each (RFC 1035), under an alphabetic top-level
# domain (email-validator wants a period and a TLD ending in a letter). Explicit ASCII classes only: \w
# and \d would let in Unicode. No space, quote or angle bracket, so pydantic's "Name <addr>" form and its
# stripping of surrounding whitespace never apply.
_PLAIN = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)


def checked_email(value: str) -> str:
    """`pydantic.networks.validate_email(value)[1]`: the normalized address, or pydantic's error."""
    # 254: email-validator's limit on the whole address (a plain address is as long in UTF-8 and after
    # normalization). 64: the local-part limit it applies only in strict mode; longer ones go the slow way.
    if len(value) <= 254 and _PLAIN.fullmatch(value):
        local, _, domain = value.partition("@")
        domain = domain.lower()
        if (
            len(local) <= 64
            # "--" at a label's third character is rejected unless the label is Punycode ("xn--"), which
            # decodes to Unicode; a domain with "--" anywhere goes the slow way.
            and "--" not in domain
            # Special-use names (test, local, invalid, arpa ...) and their subdomains are errors (but test
            # is allowed in email-validator's test environment): the slow way. The list is read per call,
            # as email-validator does, since it is a settable global.
            and not ("." + domain).endswith(
                tuple(["." + name for name in email_validator.SPECIAL_USE_DOMAIN_NAMES])
            )
        ):
            if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
                local = local.lower()
            return f"{local}@{domain}"
    return validate_email(value)[1]

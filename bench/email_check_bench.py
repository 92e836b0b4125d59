"""CPU per address of checking an email address: pydantic's `validate_email` (email-validator, the baseline)
against `komponent_contracts.email_addresses.checked_email`, in the same run, on the same addresses.

The addresses are distinct and look like the platform's: municipal staff (first.last@, initials@, mixed
case, RFC 2142 names such as info@) at municipal domains, and the e2e bench's b<seq>t<ns>@bench.kommune.dk.
Both functions are called uncached (the contracts remember addresses with an lru_cache on top of this;
what is measured is the cost of an address seen for the first time). CPU is the thread's own
(`time.thread_time`), best of five rounds.

    .venv/bin/python bench/email_check_bench.py [--addresses 20000]
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from cpu_timing import best_cpu_us_per_item
from komponent_contracts.email_addresses import checked_email
from pydantic.networks import validate_email

# Addresses spell æ, ø and å as ae, oe and aa (soeren@roskilde.dk); the few that do not go the slow way.
FIRST = "anne soeren mette lars Louise Jens ida mads karen peter aase Niels".split()
LAST = ["hansen", "Jensen", "nielsen", "pedersen", "andersen", "christensen", "larsen", "soerensen", "holm"]
DOMAINS = [
    "roskilde.dk", "kk.dk", "aarhus.dk", "odense.dk", "Aalborg.dk", "frederiksberg.dk", "gladsaxe.dk",
    "skole.holbaek.dk", "ballerup.dk", "vejle.dk", "sonderborg.dk", "komponent.dk", "bench.kommune.dk",
]  # fmt: skip


def addresses(count: int) -> list[str]:
    rng = random.Random(2026)
    found: set[str] = set()
    while len(found) < count:
        first, last, domain = rng.choice(FIRST), rng.choice(LAST), rng.choice(DOMAINS)
        n = rng.randrange(1, 1000)
        found.add(
            rng.choice(
                [
                    f"{first}.{last}{n}@{domain}",
                    f"{first[:2]}{last[:2]}{n}@{domain}",
                    f"{first.title()}.{last.title()}{n}@{domain.upper()}",
                    f"{first}-{last}.{n}@{domain}",
                    f"b{n}t{rng.randrange(10**18, 10**19)}@bench.kommune.dk",
                    f"info@{n}{domain}" if n % 2 else f"Faktura{n}@{domain}",
                ]
            )
        )
    return sorted(found)


def unusual(count: int) -> list[str]:
    # Valid, but outside the fast path's plain subset: it must cost no more than the baseline there.
    patterns = [
        "søren.{n}@roskilde.dk",
        "o'brien{n}@kk.dk",
        "a{n}@xn--bcher-kva.dk",
        " anne{n}@kk.dk",
        "Anne <a{n}@kk.dk>",
    ]
    return [patterns[n % len(patterns)].format(n=n) for n in range(count)]


def cpu_us_per_address(check: Callable[[str], str], values: list[str]) -> float:
    def run_once() -> None:
        for value in values:
            check(value)

    return best_cpu_us_per_item(run_once, len(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--addresses", type=int, default=20_000)
    args = parser.parse_args()
    values = addresses(args.addresses)
    others = unusual(args.addresses // 10)

    def pydantic_check(value: str) -> str:
        return validate_email(value)[1]

    for title, batch in [("distinct plain addresses", values), ("distinct unusual addresses", others)]:
        same = [checked_email(v) for v in batch] == [pydantic_check(v) for v in batch]
        library = cpu_us_per_address(pydantic_check, batch)
        ours = cpu_us_per_address(checked_email, batch)
        print(f"{len(batch)} {title}, e.g. {batch[len(batch) // 2]!r}")
        print(f"  pydantic.networks.validate_email (baseline)   {library:7.2f} µs CPU per address")
        print(f"  komponent_contracts checked_email             {ours:7.2f} µs CPU per address")
        print(f"  ratio ours / baseline                         {ours / library:7.3f}")
        print(f"  same result as pydantic for every address     {same}")


if __name__ == "__main__":
    main()

"""What PostgreSQL does per registration: every statement's calls and execution time, from
pg_stat_statements, divided by the registrations sent.

Starts the platform the way `bench/e2e_bench.py` does (tracing off unless --tracing), warms it up, resets
the statistics, sends registrations at one fixed rate (half over HTTP, half over Kafka) and prints, per
statement, calls and execution time per registration, rows per registration and the database it ran in
(each service has its own). Execution time is PostgreSQL's own (planning and commit waits not included).

    .venv/bin/python bench/pg_statements.py [--rate 100] [--seconds 10] [--top 25]

Needs the local stack (`./dev infra`) with pg_stat_statements loaded, which deploy/local/postgres.sh
configures; a server started before that needs a restart (`bash deploy/local/postgres.sh stop; ./dev
infra`). Run it alone, under `flock /tmp/komponent-bench.lock` when other benchmarks may run.
"""

from __future__ import annotations

import argparse
import asyncio
import re

import asyncpg
import e2e_bench as bench
from komponent_runtime.settings import DatabaseSettings

_STATEMENTS = """
SELECT d.datname, s.calls, s.total_exec_time, s.rows, s.query
FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
WHERE d.datname = ANY($1::text[])
ORDER BY s.total_exec_time DESC
"""


async def statistics_connection() -> asyncpg.Connection:
    # The view needs the extension in the database it is read from; creating it takes a superuser.
    conn = await asyncpg.connect(DatabaseSettings().dsn("postgres"), user="postgres")
    loaded = await conn.fetchval("SHOW shared_preload_libraries")
    if "pg_stat_statements" not in loaded:
        await conn.close()
        raise SystemExit(
            "pg_stat_statements is not loaded: restart PostgreSQL "
            "(bash deploy/local/postgres.sh stop; ./dev infra)"
        )
    await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    return conn


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=100.0, help="registrations per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--top", type=int, default=25, help="statements shown, costliest first")
    parser.add_argument("--tracing", action="store_true")
    args = parser.parse_args()
    await bench.ensure_stack()
    stats = await statistics_connection()
    try:
        async with bench.probe_platform("pg-statements", args.tracing, 40) as (platform, gen, courses):
            await asyncio.sleep(2)  # the warm-up's last statements
            await stats.execute("SELECT pg_stat_statements_reset()")
            step = await gen.step("spread100", f"{args.rate:.0f}/s", courses, args.rate, args.seconds, 4)
            await asyncio.sleep(1)
            n = step.registrations
            rows = await stats.fetch(_STATEMENTS, platform.databases)
            names = {db: name for name, db in zip(platform.services, platform.databases, strict=True)}
    finally:
        await stats.close()
    total = sum(r["total_exec_time"] for r in rows) * 1000 / n
    print(
        f"\n{n} registrations at {args.rate:.0f}/s; PostgreSQL execution time {total:.0f} µs per registration"
    )
    print(f"  {'calls/reg':>9} {'µs/reg':>8} {'rows/reg':>8}  {'service':<13} statement")
    for r in rows[: args.top]:
        query = re.sub(r"\s+", " ", r["query"])[:110]
        print(
            f"  {r['calls'] / n:9.2f} {r['total_exec_time'] * 1000 / n:8.1f} {r['rows'] / n:8.2f}"
            f"  {names.get(r['datname'], r['datname']):<13} {query}"
        )


if __name__ == "__main__":
    asyncio.run(main())

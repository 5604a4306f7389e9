"""Run the whole suite and print one table: ``python -m benchmarks [--quick] [--rows N]``."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import os
import platform
import sys
from collections.abc import Callable, Sequence

import pluggy
import sqlalchemy

import crmkit
from benchmarks import criteria, hooks, timeline
from benchmarks.report import Log, Result, format_table

ROWS_VARIABLE = "CRMKIT_BENCH_ROWS"
POSTGRES_VARIABLE = "CRMKIT_BENCH_POSTGRES_URL"
QUICK_ROWS = 20_000
QUICK_SAMPLES = 100
QUICK_QUERIES = 5
MODULES = ("hooks", "timeline", "criteria")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="crmkit's kernel benchmarks: each figure beside a reference from the "
        "same run, as a ratio.",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"fewer repetitions and {QUICK_ROWS:,} rows unless --rows is given")
    parser.add_argument("--rows", type=int, default=None,
                        help=f"interactions in the timeline and criteria databases (default "
                        f"1,000,000, or ${ROWS_VARIABLE})")
    parser.add_argument("--samples", type=int, default=None,
                        help="timed timeline calls per candidate and customer (default 300)")
    parser.add_argument("--customers", type=int, default=None,
                        help="customers in the criteria database (default: a tenth of --rows)")
    parser.add_argument("--queries", type=int, default=None,
                        help="timed segment queries per criteria candidate (default 15)")
    parser.add_argument("--postgres-url", default=os.environ.get(
                            POSTGRES_VARIABLE, timeline.DEFAULT_POSTGRES_URL),
                        help=f"PostgreSQL database to fill (all crmkit tables in it are "
                        f"dropped); default ${POSTGRES_VARIABLE} or %(default)s")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL")
    parser.add_argument("--no-sqlite", action="store_true", help="skip SQLite")
    parser.add_argument("--only", choices=MODULES, help="run one benchmark module only")
    return parser.parse_args(argv)


def hook_settings(args: argparse.Namespace) -> hooks.HookSettings:
    return hooks.HookSettings.quick() if args.quick else hooks.HookSettings()


def row_count(args: argparse.Namespace, default: int) -> int:
    """Interactions to load: ``--rows``, else ``$CRMKIT_BENCH_ROWS``, else the default."""
    count = args.rows or int(os.environ.get(ROWS_VARIABLE, 0)) or (
        QUICK_ROWS if args.quick else default)
    if count < 100:
        raise SystemExit("--rows must be at least 100")
    return count


def timeline_settings(args: argparse.Namespace) -> timeline.TimelineSettings:
    default = timeline.TimelineSettings()
    rows = row_count(args, default.rows)
    samples = args.samples or (QUICK_SAMPLES if args.quick else default.samples)
    return timeline.TimelineSettings(rows=rows, samples=samples,
                                     warmup=min(default.warmup, samples))


def criteria_settings(args: argparse.Namespace) -> criteria.CriteriaSettings:
    default = criteria.CriteriaSettings()
    interactions = row_count(args, default.interactions)
    customers = args.customers or max(10, interactions // 10)
    queries = args.queries or (QUICK_QUERIES if args.quick else default.samples)
    if customers < 10:
        raise SystemExit("--customers must be at least 10")
    return criteria.CriteriaSettings(customers=customers, interactions=interactions,
                                     samples=queries, warmup=min(default.warmup, queries))


def environment() -> str:
    """One line saying when and where the figures were taken."""
    return (
        f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; {platform.node()}, "
        f"{os.cpu_count()} CPUs, {platform.platform()}; Python {platform.python_version()}, "
        f"crmkit {crmkit.__version__}, pluggy {pluggy.__version__}, "
        f"SQLAlchemy {sqlalchemy.__version__}"
    )


def run_backends(args: argparse.Namespace, log: Log, sqlite: Callable[[], list[Result]],
                 postgres: Callable[[str], list[Result]]) -> list[Result]:
    """One database benchmark on SQLite, then on PostgreSQL if it answers."""
    results: list[Result] = []
    if not args.no_sqlite:
        results += sqlite()
    if args.no_postgres:
        log("postgresql: skipped (--no-postgres)")
        return results
    problem = timeline.postgres_reachable(args.postgres_url)
    if problem is not None:
        log(f"postgresql: SKIPPED, {args.postgres_url} is unreachable ({problem}); "
            "start PostgreSQL or pass --postgres-url, or --no-postgres to silence this")
        return results
    return results + postgres(args.postgres_url)


def run_timeline(args: argparse.Namespace, log: Log) -> list[Result]:
    settings = timeline_settings(args)
    return run_backends(args, log, lambda: timeline.run_sqlite(settings, log),
                        lambda url: timeline.run_postgres(url, settings, log))


def run_criteria(args: argparse.Namespace, log: Log) -> list[Result]:
    settings = criteria_settings(args)
    return run_backends(args, log, lambda: criteria.run_sqlite(settings, log),
                        lambda url: criteria.run_postgres(url, settings, log))


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    log: Log = functools.partial(print, flush=True)
    log(f"crmkit benchmarks — {environment()}")
    results: list[Result] = []
    if args.only in (None, "hooks"):
        results += hooks.run(hook_settings(args), log)
    if args.only in (None, "timeline"):
        results += run_timeline(args, log)
    if args.only in (None, "criteria"):
        results += run_criteria(args, log)
    log("")
    log(format_table(results) if results else "no benchmark ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())

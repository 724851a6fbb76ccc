"""Engine commands: ``convert`` (an analyst's SQLite file → a Parquet folder, a DuckDB file or Postgres)."""

from __future__ import annotations

import argparse

EXAMPLE = "python -m pipeline convert demo.db parquet:///demo_lake  (or duckdb:///demo.duckdb)"


def register(sub) -> None:
    p = sub.add_parser(
        "convert",
        help="Copy a SQLite file's tables to a Parquet folder or a DuckDB file (through Arrow).",
        description="Copy the input tables session_sources, conversions and session_costs (with --outputs "
        "also attribution_customer_journey and channel_reporting) of a SQLite file to parquet:///folder "
        "(one NAME.parquet per table), duckdb:///file.duckdb or postgres://user@host:5432/database "
        "(password from the URL, PGPASSWORD or .env), types unchanged. Written to a staging file, folder "
        "or tables and renamed into place; DB is only read.",
        epilog=f"example: {EXAMPLE}\npaths: three slashes then a relative path, four for an absolute one",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("db", metavar="DB", help="the analyst's SQLite database")
    p.add_argument("target", metavar="TARGET", help="parquet:///folder, duckdb:///file.duckdb or postgres://…")
    p.add_argument("--outputs", action="store_true", help="also copy the output tables when present")
    p.add_argument("--overwrite", action="store_true", help="replace TARGET (or its tables) if it exists")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    p.set_defaults(handler=cmd_convert)


def cmd_convert(args) -> int:
    from ..convert import convert
    from ..progress import StderrProgress, noop

    result = convert(
        args.db,
        args.target,
        outputs=args.outputs,
        overwrite=args.overwrite,
        progress=noop if args.quiet else StderrProgress(),
    )
    for table, rows in result.rows.items():
        print(f"{table}: {rows:,} rows")
    print(f"wrote {result.target} in {result.seconds:.1f} s")
    return 0

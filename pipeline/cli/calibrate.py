"""``ihc-calibrate``: fit an offline IHC profile to the IHC API's answers on a sample of the database's
journeys (or to answers already in its ledger, or to a recorded vectors file), and print its held-out
fidelity beside the ``default`` profile's. One library call per step (``pipeline.ihc_api.calibration``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from ..errors import InputError
from .core import positive_int

EXAMPLE = "python -m pipeline ihc-calibrate demo.db --sample 300 --output mine.json --dry-run"


def register(sub) -> None:
    from .api import add_config_arguments

    p = sub.add_parser(
        "ihc-calibrate",
        help="fit an offline IHC profile to the IHC API's answers on a sample of your journeys",
        description=(
            "Pick N conversions of DB (deterministic per --seed, stratified by journey length, multi-session "
            "journeys first), print the sessions that will be sent, send them to the IHC API (whole journeys, "
            "answers kept in DB's ledger: interrupted and run again, nothing is sent twice), fit a profile, "
            "write it to --output and print its held-out fidelity beside the default profile's. "
            "--from-ledger fits on answers already in DB's ledger; --from-vectors on a recorded vectors file."
        ),
        epilog=f"example: {EXAMPLE}",
    )
    p.add_argument("db", metavar="DB", nargs="?", help="the analyst's SQLite database (not with --from-vectors)")
    p.add_argument("--sample", type=positive_int, metavar="N", help="conversions to send to the API")
    p.add_argument("--output", required=True, metavar="PROFILE.json", help="where to write the fitted profile")
    p.add_argument("--seed", type=int, default=0, help="sampling and fold seed (default 0)")
    p.add_argument("--dry-run", action="store_true", help="print the sessions that would be sent, then stop")
    p.add_argument("--from-ledger", action="store_true", help="fit on answers already in DB's ledger; send nothing")
    p.add_argument("--from-vectors", metavar="FILE.jsonl", help="fit on recorded request/response pairs; no DB")
    p.add_argument("--name", default="", help="the profile's name (default: the output file's stem)")
    p.add_argument("--folds", type=positive_int, default=5, help="folds of the held-out fidelity (default 5)")
    p.add_argument(
        "--store",
        action="store_true",
        help="also keep the profile in DB (table pipeline_ihc_profiles; offered in the dashboard's model picker)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    add_config_arguments(p)
    p.set_defaults(handler=cmd_ihc_calibrate)


def _write_atomically(path: Path, text: str) -> None:
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise InputError(f"cannot write {path}: folder {directory} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def cmd_ihc_calibrate(args: argparse.Namespace) -> int:
    from ..db import open_database
    from ..ihc import calibrate
    from ..ihc_api import calibration
    from ..progress import StderrProgress, noop
    from .api import config_from_args

    output = Path(args.output)
    name = args.name or output.stem
    sources = sum(bool(x) for x in (args.from_vectors, args.from_ledger, args.sample))
    if sources != 1:
        raise InputError("give exactly one of --sample N, --from-ledger or --from-vectors FILE")
    if args.from_vectors:
        if args.db or args.store:
            raise InputError("--from-vectors needs no DB (and --store needs one)")
        pairs = calibrate.pairs_from_vectors(args.from_vectors)
        print(f"pairs: {pairs['group'].nunique():,} conversions, {len(pairs):,} sessions from {args.from_vectors}")
    else:
        if not args.db:
            raise InputError("give the database DB (or --from-vectors FILE)")
        progress = noop if args.quiet else StderrProgress()
        if args.from_ledger:
            config = config_from_args(args)  # picks the ledger's conversion type when one is set
            con = open_database(args.db)
            try:
                pairs = calibration.pairs_from_ledger(con, config)
            finally:
                con.close()
            print(f"pairs from the ledger: {pairs['conversion_id'].nunique():,} conversions, {len(pairs):,} sessions")
        else:
            config = config_from_args(args)
            con = open_database(args.db, write=not args.dry_run)
            try:
                plan = calibration.plan_calibration(con, args.sample, args.seed, config)
                _print_plan(plan)
                if args.dry_run:
                    return 0
                pairs, summary = calibration.send_sample(con, plan, config.require(), progress)
                print(summary.line())
            finally:
                con.close()
    result = calibration.fit_and_measure(pairs, name=name, folds=args.folds, seed=args.seed)
    _write_atomically(output, json.dumps(result.calibration.profile.to_dict(), indent=2) + "\n")
    print(result.report())
    if args.store:
        from ..ihc.profile_store import save_profile

        con = open_database(args.db, write=True)
        try:
            save_profile(con, result.calibration.profile, result.fidelity.as_dict(), result.calibration.notes)
        finally:
            con.close()
        print(f"stored as {name!r} in {args.db} (table pipeline_ihc_profiles)")
    sys.stderr.write(f"wrote profile {name!r} to {output}\n")
    return 0


def _print_plan(plan) -> None:
    print(plan.line())
    for row in plan.strata().itertuples():
        print(f"  journeys of length {row.stratum:<4} {row.conversions:>6,} conversions {row.sessions:>7,} sessions")
    print("sessions to send:")
    print(plan.records.to_csv(index=False, sep="\t"), end="")

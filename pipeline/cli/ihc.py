"""IHC commands: ``fidelity`` (replay of the real API vectors), ``ihc-local`` (the API drop-in) and
``ihc-import-weights`` (Haensel's IHC_channel_weights.csv into a profile)."""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import InputError
from ..ihc.profiles import builtin_profiles

# fidelity and the API drop-in need pandas: imported by their commands, not when the CLI starts.
DEFAULT_VECTORS = "../shared/data/ihc_api_vectors.jsonl beside the checkout"

PROFILE_HELP = f"profile name ({', '.join(builtin_profiles())}) or path to a .json/.toml profile"


def register(sub) -> None:
    p = sub.add_parser(
        "fidelity",
        help="replay the real IHC API vectors through the offline model and print the errors",
        description="Attribute every request of ihc_api_vectors.jsonl with the offline model and print "
        "mean / p99 / max absolute error per session for initializer, holder, closer and ihc, split by "
        "confidence and journey length, then the issue's fidelity targets. Exit 1 if a target fails.",
    )
    p.add_argument("--profile", default="challenge", help=f"{PROFILE_HELP} (default: challenge)")
    p.add_argument("--vectors", default=None, help=f"vector file (default: {DEFAULT_VECTORS})")
    p.set_defaults(handler=cmd_fidelity)

    p = sub.add_parser(
        "ihc-local",
        help="answer an IHC API request body offline: request JSON on stdin, response JSON on stdout",
        description='Read an IHC API request body ({"customer_journeys": [...], '
        '"redistribution_parameter": {...}} or a bare list of session records) from stdin and write '
        "the API's response body (statusCode, value, partialFailureErrors) to stdout. Invalid records "
        "are listed with their index and reason (status 206); valid journeys are still attributed.",
        epilog="example: python -m pipeline ihc-local --profile challenge < request.json > response.json",
    )
    p.add_argument("--profile", default=None, help=f"{PROFILE_HELP} (default: challenge)")
    p.add_argument(
        "--conv-type-id",
        default=None,
        help="the API's conv_type_id; selects the built-in profile trained for it (ignored when --profile is given)",
    )
    p.set_defaults(handler=cmd_ihc_local)

    p = sub.add_parser(
        "ihc-import-weights",
        help="make a profile from Haensel's IHC_channel_weights.csv",
        description="Copy a profile and replace its channel weights with those of an "
        "IHC_channel_weights.csv (columns: channel, initializer weight, holder weight, closer weight).",
        epilog="example: python -m pipeline ihc-import-weights IHC_channel_weights.csv "
        "--profile challenge --output my_profile.json",
    )
    p.add_argument("csv", help="IHC_channel_weights.csv downloaded from Haensel's dashboard")
    p.add_argument("--profile", default="challenge", help=f"base {PROFILE_HELP} (default: challenge)")
    p.add_argument("--output", required=True, help="where to write the new profile (.json)")
    p.add_argument("--name", default="", help="name of the new profile (default: the base's name)")
    p.set_defaults(handler=cmd_ihc_import_weights)


def cmd_fidelity(args: argparse.Namespace) -> int:
    from ..ihc import fidelity, load_profile

    profile = load_profile(args.profile)
    replayed = fidelity.replay(profile, fidelity.load_vectors(args.vectors))
    targets = fidelity.check_targets(replayed)
    print(fidelity.format_report(fidelity.summarise(replayed), targets, profile.name))
    return 0 if all(t["ok"] for t in targets) else 1


def cmd_ihc_local(args: argparse.Namespace) -> int:
    from ..ihc import load_profile, profile_for_conv_type
    from ..ihc_api.standin import parse_body, respond

    if args.profile:
        profile = load_profile(args.profile)
    elif args.conv_type_id:
        profile = profile_for_conv_type(args.conv_type_id)
    else:
        profile = load_profile("challenge")
    raw = sys.stdin.read()
    try:
        parse_body(raw)
    except InputError as exc:
        json.dump(respond(raw, profile), sys.stdout)  # the 400 body, like the API
        sys.stdout.write("\n")
        raise exc
    json.dump(respond(raw, profile), sys.stdout)
    sys.stdout.write("\n")
    return 0


def cmd_ihc_import_weights(args: argparse.Namespace) -> int:
    from ..ihc.channel_weights import import_channel_weights, write_profile

    profile = import_channel_weights(args.csv, args.profile, args.name)
    write_profile(profile, args.output)
    sys.stderr.write(
        f"wrote profile {profile.name!r} with {len(profile.channel_weights)} channel weights to {args.output}\n"
    )
    return 0

"""IHC API commands: ``ihc-api-check`` and ``ihc-local-server``; shared options for the API settings.

``add_config_arguments(parser)`` and ``config_from_args(args)`` are also what ``run --model ihc-api``
uses, so every command reads the API settings the same way (CLI > environment > .env > defaults).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..ihc_api.env_names import ENV_VARS

LOCAL_DEFAULT_KEY = "local-key"


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "IHC API settings (each defaults to its environment variable, then to a .env file)"
    )
    group.add_argument("--env-file", metavar="FILE", help="read settings from FILE instead of ./.env")
    group.add_argument(
        "--api-key",
        metavar="KEY",
        help=f"the account's key ({ENV_VARS['api_key']}); prefer the environment or "
        ".env: a key on the command line stays in the shell history",
    )
    group.add_argument("--conv-type-id", metavar="ID", help=f"trained conversion type ({ENV_VARS['conv_type_id']})")
    group.add_argument(
        "--api-url", metavar="URL", help=f"endpoint ({ENV_VARS['api_url']}; default the Haensel AMS API)"
    )
    group.add_argument(
        "--max-journeys", type=int, metavar="N", help=f"journeys per request ({ENV_VARS['max_journeys']}, default 100)"
    )
    group.add_argument(
        "--max-sessions",
        type=int,
        metavar="N",
        help=f"sessions per request ({ENV_VARS['max_sessions']}, default 3000; 200 for free accounts)",
    )
    group.add_argument(
        "--redistribution-parameter",
        metavar="FILE",
        dest="redistribution_file",
        help=f"JSON file sent as redistribution_parameter ({ENV_VARS['redistribution_file']})",
    )
    group.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        dest="read_timeout",
        help=f"seconds to wait for an answer ({ENV_VARS['read_timeout']}, default 120)",
    )
    group.add_argument(
        "--max-attempts",
        type=int,
        metavar="N",
        help=f"attempts per request, retries included ({ENV_VARS['max_attempts']}, default 6)",
    )


def config_from_args(args: argparse.Namespace):
    from ..ihc_api.config import load_config

    overrides = {
        name: getattr(args, name, None)
        for name in (
            "api_key",
            "conv_type_id",
            "api_url",
            "max_journeys",
            "max_sessions",
            "redistribution_file",
            "read_timeout",
            "max_attempts",
        )
    }
    return load_config(overrides, env_file=getattr(args, "env_file", None))


def register(sub) -> None:
    check = sub.add_parser(
        "ihc-api-check",
        help="check the IHC API key, conversion type and endpoint with one tiny request",
        description=(
            "Send one synthetic one-session journey to the IHC API (one conversion of quota) and report "
            "whether the key and conversion type are accepted, the latency and the answer. Nothing is "
            "attributed or stored. Exit 0 when everything checks out, 1 otherwise."
        ),
    )
    add_config_arguments(check)
    check.add_argument(
        "--probe-limits",
        action="store_true",
        help="also send one request filled exactly to the configured limits to learn whether the "
        "account accepts them (costs up to --max-journeys conversions of quota)",
    )
    check.set_defaults(handler=cmd_ihc_api_check)

    server = sub.add_parser(
        "ihc-local-server",
        help="run a local stand-in for the IHC API on 127.0.0.1 (for trying the pipeline without a key)",
        description=(
            "Serve the IHC API protocol (POST /v1/compute_ihc?conv_type_id=...) on 127.0.0.1 until "
            "Ctrl-C. Values come from the offline IHC model when it is installed, otherwise from a "
            "labelled stand-in; every answer says which in its X-Local-Ihc-Values header. Over-limit "
            "requests get 400, unparseable journeys 406, a wrong key 403."
        ),
    )
    server.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765; 0 picks a free one)")
    server.add_argument(
        "--api-key",
        metavar="KEY",
        default=None,
        help=f"key the server accepts (default {LOCAL_DEFAULT_KEY!r}); never use your real key here",
    )
    server.add_argument("--max-journeys", type=int, default=100, help="journeys per request (100)")
    server.add_argument("--max-sessions", type=int, default=3000, help="sessions per request (3000)")
    server.add_argument(
        "--stand-in", action="store_true", help="use the stand-in values even when the offline IHC model is installed"
    )
    server.add_argument(
        "--model-param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="parameter for the offline IHC model, e.g. profile=challenge (repeatable)",
    )
    server.set_defaults(handler=cmd_ihc_local_server)


def cmd_ihc_api_check(args: argparse.Namespace) -> int:
    from ..ihc_api.probe import check_api

    config = config_from_args(args)
    config.require()
    report = check_api(config, probe_limits=args.probe_limits)
    for line in report.lines:
        print(line)
    return 0 if report.ok else 1


def cmd_ihc_local_server(args: argparse.Namespace) -> int:
    from ..ihc_api.local_server import (
        STAND_IN_LABEL,
        LocalIhcServer,
        ValueFunction,
        default_value_function,
        stand_in_values,
    )

    if not 0 <= args.port <= 65535:
        raise InputError(f"--port must be between 0 and 65535, got {args.port}")
    if args.max_journeys < 1 or args.max_sessions < 1:
        raise InputError("--max-journeys and --max-sessions must be at least 1")
    key = args.api_key or LOCAL_DEFAULT_KEY
    params = {}
    for item in args.model_param:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--model-param expects NAME=VALUE, got {item!r}")
        params[name.strip()] = value
    if args.stand_in:
        if params:
            raise InputError("--model-param applies to the offline IHC model, not to --stand-in")
        values = ValueFunction(STAND_IN_LABEL, stand_in_values)
    else:
        values = default_value_function(params)
    server = LocalIhcServer(
        key,
        port=args.port,
        max_journeys=args.max_journeys,
        max_sessions=args.max_sessions,
        value_function=values,
    )
    try:
        server.start()
    except OSError as exc:
        raise InputError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    shown_key = key if args.api_key is None else "<the key given with --api-key>"
    print(f"IHC local server listening on {server.url}")
    print(f"values: {server.value_function.label}")
    print(f"limits: {server.max_journeys} journeys, {server.max_sessions} sessions per request")
    print(f"use it with: IHC_API_URL={server.url} IHC_API_KEY={shown_key} IHC_CONV_TYPE_ID=<any>")
    print("Ctrl-C stops it")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped")
    finally:
        server.stop()
    return 0

"""The README's commands are the ones that work: CI runs its test command, its CLI examples run."""

import re
import shlex

from tests.helpers import ROOT, cli

README = (ROOT / "README.md").read_text(encoding="utf-8")


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_exactly_two_setup_commands_and_ci_runs_the_test_one():
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    commands = [b.strip() for b in _bash_blocks(setup)]
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in ci, "the README's test command must be what .ci/run runs"


def test_cli_examples_run(tmp_path):
    block = README.split("<!-- runnable examples -->", 1)[1].split("<!-- end runnable examples -->", 1)[0]
    lines = [line for line in _bash_blocks(block)[0].splitlines() if line.strip()]
    assert len(lines) >= 8
    for line in lines:
        args = shlex.split(line)
        assert args[:3] == ["python", "-m", "pipeline"]
        if args[3] == "fidelity" and not (ROOT.parent / "shared" / "data" / "ihc_api_vectors.jsonl").exists():
            continue  # needs the shared reference data (covered with a skip in test_ihc_fidelity)
        result = cli(*args[3:], cwd=tmp_path)
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        if args[3] == "demo-db":  # the examples run on the demo's default: ids shaped like the real data
            assert "--short-ids" not in args
            _assert_real_shaped_ids(tmp_path / args[4])


def _registered_commands() -> list[str]:
    import argparse

    from pipeline.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(sub.choices)


def test_every_cli_command_is_in_the_readme_table():
    """The README's command table is one table (no blank line splits it) and names every command."""
    table = README.split("| command | what it does | library function |", 1)[1].split("\n\n", 1)[0]
    first_cells = [line.split("|")[1] for line in table.splitlines()[2:] if line.startswith("|")]
    documented = {name for cell in first_cells for name in re.findall(r"`([a-z][a-z-]*)", cell)}
    commands = _registered_commands()
    assert len(commands) >= 12
    assert [c for c in commands if c not in documented] == []


def _assert_real_shaped_ids(db) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        checks = {
            "SELECT session_id FROM session_sources": 64,
            "SELECT user_id FROM session_sources": 40,
            "SELECT conv_id FROM conversions": 64,
            "SELECT session_id FROM session_costs": 64,
        }
        for sql, length in checks.items():
            values = [row[0] for row in con.execute(sql)]
            assert values and all(
                isinstance(v, str) and len(v) == length and set(v) <= set("0123456789abcdef") for v in values
            ), sql
    finally:
        con.close()

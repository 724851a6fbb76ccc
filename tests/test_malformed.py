"""Malformed data: every data-shaped case gets validation's one line (exit 2, nothing written), or the
documented treatment with a warning; ids match by their exact stored value (issue 12, "Runs that fail
for good" and "Messages")."""

import sqlite3

import numpy as np
import pandas as pd
import pytest

from pipeline.schema import INPUT_DDL
from tests.helpers import TINY_CONVERSIONS, TINY_COSTS, TINY_SESSIONS, cli, make_db
from tests.test_cli import assert_clean_failure, digest

UNTYPED = """CREATE TABLE session_sources (session_id, user_id, event_date, event_time, channel_name,
               holder_engagement, closer_engagement, impression_interaction);
             CREATE TABLE conversions (conv_id, user_id, conv_date, conv_time, revenue);
             CREATE TABLE session_costs (session_id, cost);"""


def _with(rows, index, **changes):
    rows = [list(r) for r in rows]
    fields = {
        "session_id": 0,
        "user_id": 1,
        "conv_id": 0,
        "date": 2,
        "channel": 4,
    }
    for name, value in changes.items():
        rows[index][fields[name]] = value
    return [tuple(r) for r in rows]


# (name, sessions, conversions, costs, ddl, fragments of the one error line)
MALFORMED = [
    (
        "mixed_user_id_types_in_one_column",
        _with(TINY_SESSIONS, 5, user_id=3),
        TINY_CONVERSIONS,
        TINY_COSTS,
        UNTYPED,
        ["session_sources.user_id", "mixed types", "5 text", "1 integer"],
    ),
    (
        "integer_and_text_user_ids_across_tables",
        [(s, {"u1": 1, "u2": 2, "u3": 3}[u], *rest) for s, u, *rest in TINY_SESSIONS],
        TINY_CONVERSIONS,
        TINY_COSTS,
        UNTYPED,
        ["user_id", "text", "integer", "never match"],
    ),
    (
        "leading_zero_text_ids_against_integer_ids",
        [(s, {"u1": 7, "u2": 8, "u3": 9}[u], *rest) for s, u, *rest in TINY_SESSIONS],
        [(c, {"u1": "007", "u2": "8"}[u], *rest) for c, u, *rest in TINY_CONVERSIONS],
        TINY_COSTS,
        UNTYPED,
        ["user_id", "never match"],
    ),
    (
        "mixed_conv_id_types",
        TINY_SESSIONS,
        _with(TINY_CONVERSIONS, 2, conv_id=3),
        TINY_COSTS,
        UNTYPED,
        ["conversions.conv_id", "mixed types"],
    ),
    # binary (BLOB) values in text columns: validate sorted b'Display' against 'Display' (a TypeError)
    (
        "blob_channel_names",
        [(*s[:4], s[4].encode(), *s[5:]) if i < 3 else s for i, s in enumerate(TINY_SESSIONS)],
        TINY_CONVERSIONS,
        TINY_COSTS,
        UNTYPED,
        ["session_sources.channel_name holds 3 binary (BLOB) values", "store the names as text"],
    ),
    (
        "blob_and_text_session_ids",
        _with(TINY_SESSIONS, 0, session_id=b"s1"),
        TINY_CONVERSIONS,
        TINY_COSTS,
        UNTYPED,
        ["session_sources.session_id", "mixed types (5 text, 1 binary (BLOB))"],
    ),
    (
        "blob_user_ids_against_text_user_ids",
        TINY_SESSIONS,
        [(c, u.encode(), *rest) for c, u, *rest in TINY_CONVERSIONS],
        TINY_COSTS,
        UNTYPED,
        ["conversions.user_id holds 3 binary (BLOB) values where ids belong", "store them as text or integers"],
    ),
    (
        "blob_dates",
        _with(TINY_SESSIONS, 1, date=b"2023-09-02"),
        TINY_CONVERSIONS,
        TINY_COSTS,
        UNTYPED,
        ["session_sources.event_date: 1 row has no valid date", "b'2023-09-02'"],
    ),
    (
        # an empty user id is an id: c3 (u2) would get s6 (u3, 09-01) as its journey
        "empty_user_id_in_conversions_and_sessions",
        _with(TINY_SESSIONS, 5, user_id=""),
        _with(TINY_CONVERSIONS, 2, user_id=""),
        TINY_COSTS,
        INPUT_DDL,
        ["conversions.user_id: 1 conversion has an empty user id and 1 session has it too", "store NULL"],
    ),
    (
        "duplicate_conv_id",
        TINY_SESSIONS,
        [*TINY_CONVERSIONS, ("c1", "u1", "2023-09-03", "13:00:00", 10.0)],
        TINY_COSTS,
        UNTYPED,
        ["conversions.conv_id: 1 value appears more than once"],
    ),
]


@pytest.mark.parametrize(
    "sessions, conversions, costs, ddl, fragments", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
@pytest.mark.parametrize("command", ["run", "validate", "journeys"])
def test_malformed_data_gets_one_line_and_writes_nothing(
    tmp_path, sessions, conversions, costs, ddl, fragments, command
):
    path = make_db(tmp_path / "bad.db", sessions, conversions, costs, ddl=ddl)
    before = digest(path)
    r = cli(command, path, "--model", "linear") if command == "run" else cli(command, path)
    assert "Traceback" not in r.stderr and "UNIQUE constraint" not in r.stderr
    if command == "validate":
        assert r.returncode == 2
        line = next(line for line in r.stdout.splitlines() if line.startswith("fatal:"))
        for fragment in fragments:
            assert fragment in line, line
    else:
        assert_clean_failure(r, *fragments)
    assert digest(path) == before


def test_the_same_type_everywhere_matches_by_exact_value(tmp_path):
    # integer ids in every table: they match; '7' is not '07' (both text): no match, counted as such
    sessions = [(s, {"u1": 1, "u2": 2, "u3": 3}[u], *rest) for s, u, *rest in TINY_SESSIONS]
    conversions = [(c, {"u1": 1, "u2": 2}[u], *rest) for c, u, *rest in TINY_CONVERSIONS]
    path = make_db(tmp_path / "ints.db", sessions, conversions, TINY_COSTS, ddl=UNTYPED)
    r = cli("run", path, "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr
    assert "2 conversions attributed" in r.stdout
    texts = [(c, {"u1": "01", "u2": "u2"}[u], *rest) for c, u, *rest in TINY_CONVERSIONS]
    sessions = [(s, {"u1": "1", "u2": "u2", "u3": "u3"}[u], *rest) for s, u, *rest in TINY_SESSIONS]
    path = make_db(tmp_path / "texts.db", sessions, texts, TINY_COSTS, ddl=UNTYPED)
    r = cli("run", path, "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr
    assert "0 conversions attributed" in r.stdout or "no conversion attributed" in r.stdout, r.stdout


@pytest.mark.parametrize("blank", ["", "   ", "\t", "\u00a0"])
def test_an_empty_channel_name_is_reported_as_not_set_with_a_warning(tmp_path, blank):
    path = make_db(tmp_path / "empty.db", _with(TINY_SESSIONS, 1, channel=blank), TINY_CONVERSIONS, TINY_COSTS)
    out = tmp_path / "r.csv"
    r = cli("run", path, "--model", "linear", "--csv", out, "-q")
    assert r.returncode == 0, r.stderr
    assert "warning: session_sources.channel_name: 1 session has no channel" in r.stdout
    rows = out.read_text().splitlines()
    assert not any(line.split(",")[0].strip() == "" for line in rows), rows
    assert any(line.startswith("(not set),2023-09-02") for line in rows), rows


def test_validation_text_on_an_empty_conversions_table(tmp_path):
    path = make_db(tmp_path / "noconv.db", TINY_SESSIONS, [], TINY_COSTS)
    r = cli("validate", path)
    assert "None" not in r.stdout, r.stdout


def test_examples_are_distinct_and_the_grammar_holds(tmp_path):
    sessions = [
        *TINY_SESSIONS,
        ("s7", "u3", "2023-09-01", "10:00", "Display", 0, 0, 0),
        ("s8", "u3", "2023-09-01", "10:00", "Display", 0, 0, 0),
    ]
    conversions = [*TINY_CONVERSIONS, ("c9", "nobody", "2023-09-03", "10:00:00", 1.0)]
    path = make_db(tmp_path / "ex.db", sessions, conversions, TINY_COSTS)
    r = cli("validate", path)
    line = next(line for line in r.stdout.splitlines() if "event_time" in line)
    assert line.count("'10:00'") == 1, line
    assert (
        "2 conversions have no session of their user before them (1 of them: the user has no session at all) "
        "and cannot be attributed" in r.stdout
    ), r.stdout


def test_a_boolean_parameter_is_parsed_strictly(tiny):
    assert_clean_failure(cli("run", tiny, "--param", "round=maybe"), "round", "true or false")
    assert cli("run", tiny, "--param", "round=true", "-q").returncode == 0


def test_one_tolerance_for_a_long_api_journey():
    """A 350-session journey rounded to 4 decimals by the API sums to 1 within n·0.5e-4: the
    client's check accepts it, and so does the store (one rule)."""
    from pipeline.ihc_api.answers import check_reply
    from pipeline.store import check_credits

    n = 350
    rounded = np.round(np.full(n, 1.0 / n), 4)  # 0.002857… → 0.0029: the sum drifts to 1.015
    assert 1e-3 < abs(rounded.sum() - 1.0) < n * 0.5e-4
    sent = pd.DataFrame({"conversion_id": ["c1"] * n, "session_id": [f"s{i}" for i in range(n)]})
    payload = {
        "value": [
            {"conversion_id": "c1", "session_id": f"s{i}", "initializer": v, "holder": 0.0, "closer": 0.0, "ihc": v}
            for i, v in enumerate(rounded.tolist())
        ]
    }
    checked = check_reply(sent, payload)
    assert checked.failed.empty and len(checked.credits) == n
    check_credits(checked.credits["conversion_id"].to_numpy(), checked.credits["ihc"].to_numpy())  # no raise
    with pytest.raises(Exception):
        check_credits(np.array(["c1"] * 3, dtype=object), np.array([0.5, 0.3, 0.1]))


def test_an_api_run_of_a_long_journey_stores_its_credit(tmp_path):
    """Through the store path the API run uses: the credit of a 350-session journey is kept."""
    from pipeline.schema import ensure_output_tables
    from pipeline.store import store_credits

    n = 350
    values = np.round(np.full(n, 1.0 / n), 4)
    con = sqlite3.connect(":memory:", isolation_level=None)
    ensure_output_tables(con)
    frame = pd.DataFrame(
        {
            "conversion_id": ["c1"] * n,
            "session_id": [f"s{i}" for i in range(n)],
            "initializer": values,
            "holder": values * 0,
            "closer": values * 0,
            "ihc": values,
        }
    )
    assert store_credits(con, frame, ["c1"], model="ihc-api", run_id="r") == n


def test_an_empty_user_id_no_session_has_is_only_unattributed(tmp_path):
    """c3's user id '' matches no session: no journey, counted as such — not a fatal finding."""
    path = make_db(tmp_path / "e.db", TINY_SESSIONS, _with(TINY_CONVERSIONS, 2, user_id=""), TINY_COSTS)
    r = cli("run", path, "--model", "linear", "-q")
    assert r.returncode == 0, r.stderr
    assert "2 conversions attributed" in r.stdout and "no session before the conversion: 1" in r.stdout, r.stdout

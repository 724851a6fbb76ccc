"""Incomplete last days (pipeline.completeness), hand-computed on the tiny database."""

from __future__ import annotations

import numpy as np

from pipeline.completeness import incomplete_days, lag_distribution
from pipeline.db import open_database
from tests.helpers import cli, run_db


def test_lag_distribution_and_incomplete_days_by_hand(tiny):
    assert incomplete_days(open_database(tiny)) is None  # no attribution yet
    run_db(tiny, model="linear")
    con = open_database(tiny)
    # linear credit by lag (conversion date - session date): c1 (09-02) over s1 (lag 1) and s2 (lag 0),
    # 1/2 each; c2 (09-03) over s1 (lag 2), s2 (1), s3 (1), s4 (0), 1/4 each.
    # lag 0: 3/4, lag 1: 1, lag 2: 1/4 of 2 conversions -> F = 0.375, 0.875, 1.0
    assert np.allclose(lag_distribution(con), [0.375, 0.875, 1.0], rtol=0, atol=1e-12)
    late = incomplete_days(con)
    # the last conversion is on 09-03: 09-03 has had 0 days (37.5% in), 09-02 one day (87.5%)
    assert late.last_conversion == "2023-09-03"
    assert late.days == ["2023-09-02", "2023-09-03"]
    assert np.allclose(late.share_in, [0.875, 0.375])
    assert late.warning().startswith("the last 2 session days (2023-09-02 … 2023-09-03) are incomplete")
    assert "only 38%–88% of their eventual conversions had happened by 2023-09-03" in late.warning()


def test_run_and_validate_print_the_warning_once(tiny):
    first = cli("run", str(tiny), "--model", "linear")
    assert first.returncode == 0
    assert first.stdout.count("warning: report: the last 2 session days") == 1
    again = cli("run", str(tiny), "--model", "linear", "--force")
    assert again.stdout.count("the last 2 session days") == 1
    shown = cli("validate", str(tiny))
    assert "warning: report: the last 2 session days (2023-09-02 … 2023-09-03) are incomplete" in shown.stdout


def test_one_incomplete_day_is_said_in_the_singular():
    from pipeline.completeness import IncompleteDays

    one = IncompleteDays("2023-09-10", ["2023-09-10"], [0.93])
    assert one.warning() == (
        "the last session day (2023-09-10) is incomplete: judging by how long the attributed journeys took to "
        "convert, only 93% of its eventual conversions had happened by 2023-09-10, so its CPO reads high and "
        "its ROAS low"
    )
    two = IncompleteDays("2023-09-10", ["2023-09-09", "2023-09-10"], [0.97, 0.93])
    assert two.warning().startswith("the last 2 session days (2023-09-09 … 2023-09-10) are incomplete")


def test_counted_says_one_and_many():
    from pipeline.labels import counted

    assert counted(1, "session day", one="") == "session day"
    assert counted(1, "conversion") == "1 conversion"
    assert counted(0, "conversion") == "0 conversions"
    assert counted(1204, "conversion") == "1,204 conversions"
    assert counted(2, "day of data", "days of data") == "2 days of data"

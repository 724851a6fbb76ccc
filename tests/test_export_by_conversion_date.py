"""The report by conversion date (export --by conversion-date), hand-computed on the tiny database."""

from __future__ import annotations

import pytest

from pipeline.db import open_database
from pipeline.errors import InputError
from pipeline.export import read_report
from tests.helpers import cli, run_db

# Linear: c1 (09-02, revenue 100) over s1 (Paid Search Brand, 09-01) and s2 (FB & IG Ads, 09-02), ½ each;
# c2 (09-03, revenue 50) over s1, s2, s3 (Direct, 09-02), s4 (Newsletter, 09-03), ¼ each. c3 has no
# earlier session. Cost stays on the day it was spent: PSB 09-01 5.0 (s1 + s6), FB 09-02 1.0, Display 0.5.
BY_CONVERSION_DATE = [
    ("Paid Search Brand", "2023-09-01", 5.0, 0.0, 0.0),
    ("Direct Traffic", "2023-09-02", 0.0, 0.0, 0.0),
    ("Display", "2023-09-02", 0.5, 0.0, 0.0),
    ("FB & IG Ads", "2023-09-02", 1.0, 0.5, 50.0),
    ("Paid Search Brand", "2023-09-02", 0.0, 0.5, 50.0),
    ("Direct Traffic", "2023-09-03", 0.0, 0.25, 12.5),
    ("FB & IG Ads", "2023-09-03", 0.0, 0.25, 12.5),
    ("Newsletter & Email", "2023-09-03", 0.0, 0.25, 12.5),
    ("Paid Search Brand", "2023-09-03", 0.0, 0.25, 12.5),
]


@pytest.fixture
def attributed(tiny):
    run_db(tiny, model="linear")
    return tiny


def _rows(report):
    return [tuple(r) for r in report[["channel_name", "date", "cost", "ihc", "ihc_revenue"]].itertuples(index=False)]


def test_by_conversion_date_hand_computed(attributed):
    con = open_database(attributed)
    assert _rows(read_report(con, by="conversion-date")) == BY_CONVERSION_DATE
    # the date filter applies to the conversion's date for credit and to the spending day for cost
    assert _rows(read_report(con, "2023-09-03", "2023-09-03", by="conversion-date")) == BY_CONVERSION_DATE[5:]
    # both bases carry the same totals of credit over all dates, and the same cost
    by_session = read_report(con)
    by_conversion = read_report(con, by="conversion-date")
    assert by_session["ihc"].sum() == pytest.approx(by_conversion["ihc"].sum(), abs=1e-12)
    assert by_session["cost"].sum() == by_conversion["cost"].sum()
    with pytest.raises(InputError, match="date basis"):
        read_report(con, by="order-date")


def test_export_by_conversion_date_and_the_default_is_unchanged(attributed, tmp_path):
    default, explicit, conv = (tmp_path / f"{n}.csv" for n in ("default", "session", "conversion"))
    assert cli("export", str(attributed), "--csv", str(default)).returncode == 0
    assert cli("export", str(attributed), "--csv", str(explicit), "--by", "session-date").returncode == 0
    assert default.read_bytes() == explicit.read_bytes()
    result = cli("export", str(attributed), "--csv", str(conv), "--by", "conversion-date")
    assert result.returncode == 0, result.stderr
    lines = conv.read_text().splitlines()
    assert lines[0] == "channel_name,date,cost,ihc,ihc_revenue,CPO,ROAS"
    assert lines[4] == "FB & IG Ads,2023-09-02,1.00,0.5000,50.00,2.00,50.0000"
    bad = cli("export", str(attributed), "--csv", str(conv), "--by", "order-date")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr

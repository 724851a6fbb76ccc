"""The dashboard's library modules on the hand-computed tiny database (tests/helpers.py: TINY_*).

Linear credit (see test_core_pipeline.py): c1 ← s1, s2 (0.5 each); c2 ← s1..s4 (0.25 each); c3 has no
earlier session. Revenues: c1 100, c2 50. Costs: s1 2 (Paid Search Brand), s2 1 (FB & IG Ads), s5 0.5
(Display), s6 3 (Paid Search Brand).

Per channel with linear (credit, revenue = Σ credit × revenue):
  Paid Search Brand  (s1):  .5 + .25 = .75;  50 + 12.5 = 62.5;  cost 2 + 3 = 5
  FB & IG Ads        (s2):  .75;             62.5;              cost 1
  Direct Traffic     (s3):  .25;             12.5;              cost 0
  Newsletter & Email (s4):  .25;             12.5;              cost 0
  Display            (s5):  0;               0;                 cost .5
Last click: c1 → s2 (FB), c2 → s4 (Newsletter).
"""

from __future__ import annotations

import math
import sqlite3

import numpy as np
import pandas as pd
import pytest

from pipeline import explain
from pipeline import report_views as rv
from pipeline.compare import ModelSpec, compare_models
from pipeline.db import open_database
from pipeline.errors import InputError
from pipeline.export import read_report
from pipeline.palette import FIXED, channel_colors
from pipeline.run_summary import summarise
from pipeline.window import Window
from tests.helpers import run_db as run


@pytest.fixture
def linear_db(tiny):
    run(tiny, model="linear")
    return tiny


# ---- report views -------------------------------------------------------------------------------


def test_channel_totals_and_kpis(linear_db):
    report = read_report(open_database(linear_db))
    totals = rv.channel_totals(report).set_index("channel_name")
    assert totals.loc["Paid Search Brand", ["cost", "ihc", "ihc_revenue"]].tolist() == pytest.approx([5, 0.75, 62.5])
    assert totals.loc["Paid Search Brand", "CPO"] == pytest.approx(5 / 0.75)
    assert totals.loc["Paid Search Brand", "ROAS"] == pytest.approx(62.5 / 5)
    assert math.isnan(totals.loc["Display", "CPO"])  # cost, no credit: undefined, not inf
    assert math.isnan(totals.loc["Direct Traffic", "ROAS"])  # credit, no cost: undefined
    assert totals.loc["Direct Traffic", "CPO"] == 0.0
    k = rv.kpis(report)
    assert (k.cost, k.conversions, k.revenue) == pytest.approx((6.5, 2.0, 150.0))
    assert k.cpo == pytest.approx(3.25) and k.roas == pytest.approx(150 / 6.5)
    assert (k.channels, k.days) == (5, 3)


def test_kpis_undefined_ratios_are_none():
    empty = pd.DataFrame(
        {"channel_name": ["A"], "date": ["2023-09-01"], "cost": [0.0], "ihc": [0.0], "ihc_revenue": [0.0]}
    )
    k = rv.kpis(empty)
    assert k.cpo is None and k.roas is None
    assert rv.kpis(empty.iloc[:0]).channels == 0


def test_ranked_puts_undefined_last(linear_db):
    totals = rv.channel_totals(read_report(open_database(linear_db)))
    cpo = rv.ranked(totals, "CPO", ascending=True)
    assert cpo["channel_name"].tolist()[-1] == "Display"
    defined = cpo["CPO"].dropna().tolist()
    assert defined == sorted(defined)
    roas = rv.ranked(totals, "ROAS", ascending=False)
    assert roas["channel_name"].tolist()[:3] == ["FB & IG Ads", "Paid Search Brand", "Display"]
    assert roas["ROAS"].isna().tolist() == [False, False, False, True, True]
    assert "Direct Traffic" in rv.undefined_note(totals, "ROAS")
    assert rv.undefined_note(totals.iloc[:0], "CPO") == ""


def test_daily_series(linear_db):
    report = read_report(open_database(linear_db))
    data = rv.daily(report, "ihc_revenue", ["Paid Search Brand", "FB & IG Ads"])
    assert data.to_dict("records") == [
        {"date": "2023-09-01", "channel_name": "Paid Search Brand", "value": pytest.approx(62.5)},
        {"date": "2023-09-02", "channel_name": "FB & IG Ads", "value": pytest.approx(62.5)},
    ]
    roas = rv.daily(report, "ROAS")
    assert roas.loc[roas.channel_name == "Direct Traffic", "value"].isna().all()
    with pytest.raises(ValueError):
        rv.daily(report, "nonsense")


# ---- explain ------------------------------------------------------------------------------------


def test_length_distribution_and_paths(linear_db):
    con = open_database(linear_db)
    dist = explain.length_distribution(con)
    # every length up to the longest has its bar (1 and 3: none), so no gap is hidden on the chart
    assert dist[["sessions", "conversions"]].values.tolist() == [[0, 1], [1, 0], [2, 1], [3, 0], [4, 1]]
    assert dist["label"].tolist() == ["0", "1", "2", "3", "4"]
    assert dist["share"].tolist() == pytest.approx([1 / 3, 0, 1 / 3, 0, 1 / 3])  # of all conversions
    capped = explain.length_distribution(con, bins=3)  # 3 and 4 sessions share the "3+" bar
    assert capped[["label", "conversions"]].values.tolist() == [["0", 1], ["1", 0], ["2", 1], ["3+", 1]]
    paths = explain.top_paths(con)
    assert set(paths["path"]) == {
        "Paid Search Brand → FB & IG Ads",
        "Paid Search Brand → FB & IG Ads → Direct Traffic → Newsletter & Email",
    }
    assert paths["conversions"].tolist() == [1, 1] and paths["share"].tolist() == [0.5, 0.5]
    assert dict(zip(paths["length"], paths["revenue"])) == {2: 100.0, 4: 50.0}


def test_paths_collapse_repeats(tmp_path):
    from tests.helpers import make_db

    db = make_db(
        tmp_path / "rep.db",
        sessions=[
            ("a", "u", "2023-09-01", "10:00:00", "Direct", 0, 0, 0),
            ("b", "u", "2023-09-01", "11:00:00", "Direct", 0, 0, 0),
            ("c", "u", "2023-09-01", "12:00:00", "Search", 0, 0, 0),
            ("d", "u", "2023-09-01", "13:00:00", "Direct", 0, 0, 0),
        ],
        conversions=[("c1", "u", "2023-09-02", "00:00:00", 10.0)],
    )
    run(db, model="linear")
    con = open_database(db)
    assert explain.top_paths(con)["path"].tolist() == ["Direct → Direct → Search → Direct"]
    collapsed = explain.top_paths(con, collapse_repeats=True)
    assert collapsed["path"].tolist() == ["Direct → Search → Direct"] and collapsed["length"].tolist() == [3]


def test_conversion_detail(linear_db):
    con = open_database(linear_db)
    info = explain.conversion_info(con, "c1")
    assert (info.date, info.time, info.revenue, info.sessions, info.model) == (
        "2023-09-02",
        "12:00:00",
        100.0,
        2,
        "linear",
    )
    assert info.unattributed_reason is None
    rows = explain.conversion_sessions(con, "c1")
    assert rows["session_id"].tolist() == ["s1", "s2"] and rows["position"].tolist() == [1, 2]
    assert rows["ihc"].tolist() == [0.5, 0.5] and rows["revenue_share"].tolist() == [50.0, 50.0]
    assert rows["initializer"].isna().all()  # linear has no phases
    c3 = explain.conversion_info(con, "c3")
    assert c3.sessions == 0 and c3.unattributed_reason == "no session before the conversion"
    assert explain.conversion_sessions(con, "c3").empty
    with pytest.raises(InputError, match="no conversion"):
        explain.conversion_info(con, "nope")
    choices = explain.conversion_choices(con)
    assert choices["conversion_id"].tolist() == ["c2", "c1"]  # 4 sessions (3–8) first
    reasons = explain.unattributed_reasons(con)
    assert reasons.to_dict("records") == [{"reason": "no session before the conversion", "conversions": 1}]


def test_conversion_phases_with_ihc(small_demo, tmp_path):
    import shutil

    db = shutil.copy(small_demo, tmp_path / "demo.db")
    run(db, model="ihc")
    con = open_database(db)
    conv = explain.conversion_choices(con)["conversion_id"].iloc[0]
    rows = explain.conversion_sessions(con, conv)
    for phase in ("initializer", "holder", "closer", "ihc"):
        assert rows[phase].notna().all()
        if phase != "holder":  # a journey may have no engaged session: its holder phase is empty
            assert rows[phase].sum() == pytest.approx(1.0, abs=1e-6)


def test_explain_before_any_run(tiny):
    with pytest.raises(InputError, match="run the pipeline"):
        explain.length_distribution(open_database(tiny))


# ---- compare ------------------------------------------------------------------------------------


def test_compare_by_hand(linear_db):
    con = open_database(linear_db)
    result = compare_models(con, [ModelSpec("linear"), ModelSpec("last-click")])
    assert result.models == ["linear", "last-click"] and result.conversions == 2
    t = result.table.set_index(["model", "channel_name"])
    assert t.loc[("linear", "Paid Search Brand"), ["ihc", "ihc_revenue", "cost"]].tolist() == pytest.approx(
        [0.75, 62.5, 5]
    )
    assert t.loc[("last-click", "FB & IG Ads"), "ihc"] == pytest.approx(1.0)
    assert t.loc[("last-click", "Newsletter & Email"), "ihc_revenue"] == pytest.approx(50.0)
    assert t.loc[("last-click", "Paid Search Brand"), "ihc"] == 0.0
    assert math.isnan(t.loc[("last-click", "Paid Search Brand"), "CPO"])  # cost, no credit
    assert math.isnan(t.loc[("linear", "Direct Traffic"), "ROAS"])  # credit, no cost
    assert t.loc[("linear", "Display"), "cost"] == 0.5  # a channel with cost only is listed
    assert t.loc[("linear", "FB & IG Ads"), "share"] == pytest.approx(0.375)
    wide = result.wide("ihc").set_index("channel_name")
    assert wide.loc["Paid Search Brand", "Δ last-click"] == pytest.approx(-0.75)
    assert wide.loc["FB & IG Ads", "Δ last-click"] == pytest.approx(0.25)
    # Two spreads of .75. Paid Search Brand's comes from both conversions (c1: 0.5 → 0, c2: 0.25 → 0),
    # so every resample of the two conversions keeps a negative difference: beyond the noise, first.
    # Newsletter & Email's comes from c2 alone (0.25 → 1): a resample without c2 (one in four) has no
    # difference, so its 90% interval holds 0: within the noise, after it (by name it came first).
    shifts = result.biggest_shifts("ihc", 2)
    assert shifts["channel_name"].tolist() == ["Paid Search Brand", "Newsletter & Email"]
    assert shifts["spread"].tolist() == pytest.approx([0.75, 0.75])
    assert shifts["beyond_noise"].tolist() == [True, False]
    assert (shifts.iloc[0]["low_model"], shifts.iloc[0]["high_model"]) == ("last-click", "linear")
    # what every model's figure rests on: c1 (Paid Search Brand, FB & IG Ads) and c2 (Paid Search Brand,
    # Newsletter & Email, FB & IG Ads, Direct Traffic); Display has cost and no session. All under 10.
    assert result.touched == {
        "Direct Traffic": 1,
        "Display": 0,
        "FB & IG Ads": 2,
        "Newsletter & Email": 1,
        "Paid Search Brand": 2,
    }
    assert result.few() == sorted(result.touched)


def test_compare_table_deltas_are_the_difference_of_the_values_as_written():
    """A walk-through found "24.7% → 25.1%" with "Δ +0.5 pts" (here 0.24651 → 0.25149: 0.498 pts):
    the table's Δ is now the difference of the two values as written, +0.4 pts; ``wide`` keeps the
    exact difference for the noise and the ordering."""
    from pipeline.compare import Comparison, as_written, format_delta

    table = pd.DataFrame(
        {
            "model": ["a", "b", "a", "b"],
            "channel_name": ["X", "X", "Y", "Y"],
            "share": [0.24651, 0.25149, 0.0004, 0.0012],
            "cost": [1.0, 1.0, 1.0, 1.0],
        }
    )
    result = Comparison(table, ["a", "b"], 10, (None, None))
    exact = result.wide("share").set_index("channel_name")["Δ b"]
    shown = result.shown("share").set_index("channel_name")["Δ b"]
    assert exact["X"] == pytest.approx(0.00498) and format_delta(exact["X"], "share") == "+0.5 pts"
    assert shown["X"] == pytest.approx(0.004) and format_delta(shown["X"], "share") == "+0.4 pts"
    # Y: 0.04% → 0.12%, written 0.0% → 0.1%: Δ +0.1 pts (exact 0.08 pts also writes +0.1)
    assert format_delta(shown["Y"], "share") == "+0.1 pts" and list(as_written([0.0004, 0.0012], "share")) == [0, 0.001]


def test_compare_leaves_channels_without_cost_out_of_cpo_and_roas(linear_db):
    from pipeline.compare import format_value, shift_range

    result = compare_models(open_database(linear_db), [ModelSpec("linear"), ModelSpec("last-click")])
    unpaid = result.unpaid()
    assert "Direct Traffic" in unpaid and "Display" not in unpaid and "Paid Search Brand" not in unpaid
    assert "Direct Traffic" not in set(result.shown("CPO")["channel_name"])  # not a CPO of €0.00
    assert "Direct Traffic" not in set(result.shown("ROAS")["channel_name"])
    assert "Direct Traffic" in set(result.shown("share")["channel_name"])
    assert not set(unpaid) & set(result.biggest_shifts("CPO", 10)["channel_name"])
    assert format_value(0.0321, "share") == "3.2%" and format_value(26.666, "CPO") == "€26.67"
    assert format_value(float("nan"), "ROAS") == "—" and format_value(None, "CPO") == "—"
    assert shift_range(0.032, 0.037, "share") == "3.2%–3.7% across models"
    assert shift_range(4.4, 4.64, "ROAS") == "4.40–4.64 across models"


def test_compare_matches_the_stored_report(small_demo, tmp_path):
    """For the stored model, channel credit/revenue/cost equal the channel report's sums."""
    import shutil

    db = shutil.copy(small_demo, tmp_path / "demo.db")
    run(db, model="ihc")
    con = open_database(db)
    result = compare_models(con, [ModelSpec("ihc"), ModelSpec("linear")])
    mine = result.table[result.table.model == "ihc"].set_index("channel_name")
    report = rv.channel_totals(read_report(con)).set_index("channel_name")
    assert sorted(mine.index) == sorted(report.index)
    for col in ("ihc", "ihc_revenue", "cost"):
        np.testing.assert_allclose(mine.loc[report.index, col], report[col], rtol=1e-9, atol=1e-9)
    # Every model distributes the same conversions.
    sums = result.table.groupby("model")["ihc"].sum()
    assert sums.tolist() == pytest.approx([result.conversions] * 2)


def test_compare_writes_nothing(linear_db):
    before = (
        sqlite3.connect(linear_db).execute("SELECT count(*), total(ihc) FROM attribution_customer_journey").fetchone()
    )
    compare_models(open_database(linear_db), [ModelSpec("last-click"), ModelSpec("linear")])
    after = (
        sqlite3.connect(linear_db).execute("SELECT count(*), total(ihc) FROM attribution_customer_journey").fetchone()
    )
    assert before == after


def test_compare_refuses_bad_requests(tmp_path, linear_db):
    from tests.helpers import tiny_db

    fresh = tiny_db(tmp_path / "fresh.db")
    with pytest.raises(InputError, match="no journeys"):
        compare_models(open_database(fresh), [ModelSpec("linear")])
    con = open_database(linear_db)
    with pytest.raises(InputError, match="unknown model"):
        compare_models(con, [ModelSpec("nope")])
    with pytest.raises(InputError, match="twice"):
        compare_models(con, [ModelSpec("linear"), ModelSpec("linear")])
    with pytest.raises(InputError, match="at least one"):
        compare_models(con, [])


def test_compare_stale_journeys(linear_db):
    with sqlite3.connect(linear_db) as con:
        con.execute("UPDATE conversions SET revenue = 1 WHERE conv_id = 'c1'")  # conversions changed
    with pytest.raises(InputError, match="stale"):
        compare_models(open_database(linear_db), [ModelSpec("linear")])


def test_spec_labels():
    assert ModelSpec("ihc").label == "ihc"
    assert ModelSpec("ihc", {"profile": "default"}).label == "ihc"
    assert ModelSpec("ihc", {"profile": "challenge"}).label == "ihc (profile=challenge)"


# ---- palette and run summary ------------------------------------------------------------------


def test_palette_is_fixed_and_distinct():
    a = channel_colors(["Direct Traffic", "Zeta", "Alpha"])
    b = channel_colors(["Alpha", "Zeta", "Direct Traffic", "Paid Search Brand"])
    assert a["Direct Traffic"] == b["Direct Traffic"] == FIXED["Direct Traffic"]
    assert a["Alpha"] == b["Alpha"] and a["Zeta"] == b["Zeta"]
    many = channel_colors([f"ch{i}" for i in range(20)] + list(FIXED))
    assert len(set(many.values())) == len(many)  # 36 names, 36 colours


def test_run_summary(tiny):
    result = run(tiny, model="linear")
    s = summarise(result, seconds=1.5)
    assert (s.model, s.conversions, s.attributed, s.sessions) == ("linear", 3, 2, 6)
    assert s.not_attributed == {"no session before the conversion": 1} and s.not_attributed_total == 1
    assert s.redone == ["journeys", "attribute", "report"] and s.reused == []
    assert s.headline("Linear") == "Attributed 2 of 3 conversions with Linear in 1.5 s; 1 could not be attributed."
    again = summarise(run(tiny, model="linear"))
    assert again.redone == [] and again.headline().startswith("Everything was up to date")
    window = summarise(run(tiny, model="linear", window=Window("2023-09-03", "2023-09-03")))
    assert window.conversions == 1 and window.attributed == 1 and window.not_attributed == {}


def test_the_report_says_how_many_conversions_it_covers(linear_db):
    # tiny: c1 and c2 are attributed, c3 has no earlier session (tests/test_core_pipeline.py's doc).
    view = rv.report_view(open_database(linear_db))
    assert view.all_conversions == 3 and view.unattributed == {"no session before the conversion": 1}
    assert rv.attributed_text(2, view) == "2 of 3 conversions (1 has no earlier session)"
    assert rv.attributed_text(3, view) == "3 conversions"


def test_report_file_names_say_which_channels():
    from pipeline.report_charts import report_file_name

    assert report_file_name(["ihc"], "2023-09-01", "2023-09-10", "session-date", "csv") == (
        "channel_report_ihc_2023-09-01_to_2023-09-10.csv"
    )
    two = report_file_name(["ihc"], "2023-09-01", "2023-09-10", "conversion-date", "html", ["Display", "FB & IG"])
    assert two == "channel_report_ihc_2023-09-01_to_2023-09-10_Display+FB---IG_by-conversion-date.html"
    many = report_file_name(["linear", "ihc"], None, None, "session-date", "csv", ["a", "b", "c", "d"])
    assert many == "channel_report_linear+ihc_first_to_last_4-channels.csv"


def test_settings_in_words():
    from pipeline.model_settings import model_label, settings_in_words

    assert model_label("ihc") == "IHC — offline model" and model_label("unknown") == "unknown"
    assert settings_in_words({}) == "default settings"
    assert settings_in_words({"profile": "challenge", "round": True, "redistribution": None}) == (
        "IHC profile: challenge — IHC as Haensel AMS trained it on their sample shop data; "
        "Round credit to 4 decimals, as the web API does: yes"
    )
    assert settings_in_words({"profile": {"name": "my-orders", "weights": [1, 2]}}) == "IHC profile: my-orders"
    assert settings_in_words({"half_life_hours": 24}) == "Half-life (hours): 24"


def test_engagement_flags_in_words():
    sessions = pd.DataFrame(
        {
            "holder_engagement": [1, 0, 1, 0, None],
            "closer_engagement": [1, 0, 0, 0, 0],
            "impression_interaction": [0, 0, 1, 1, 0],
        }
    )
    assert explain.signal_words(sessions) == ["holder · closer", "", "holder · impression", "impression", ""]


def test_a_view_from_kept_reads_is_the_view_read_afresh(linear_db):
    # The dashboard keeps view_reads and the credit rows per database state; a filter change then reads
    # only its rows. c1 and c2 are attributed (2 of 3), so the kept draw holds exactly those two.
    from pipeline.intervals import credit_rows

    con = open_database(linear_db)
    reads = rv.view_reads(con)
    assert list(reads.draw.population) == ["c1", "c2"] and reads.draw.counts.shape == (200, 2)
    assert reads.all_conversions == 3 and reads.unattributed == {"no session before the conversion": 1}
    asked = []

    def kept_credit(start, end, by):
        asked.append((start, end, by))
        return credit_rows(con, start, end, by)

    channel = rv.report_view(con).rows["channel_name"].iloc[0]
    for channels, grain in ((None, "day"), ((channel,), "day"), ((channel,), "week")):
        fresh = rv.report_view(con, None, None, channels, grain=grain)
        kept = rv.report_view(con, None, None, channels, grain=grain, reads=reads, read_credit=kept_credit)
        pd.testing.assert_frame_equal(kept.totals, fresh.totals)
        pd.testing.assert_frame_equal(kept.periods, fresh.periods)
        assert kept.kpi_bounds == fresh.kpi_bounds or all(
            a == b or (a != a and b != b) for a, b in zip(kept.kpi_bounds.values(), fresh.kpi_bounds.values())
        )
        assert (kept.coverage, kept.all_conversions, kept.unattributed) == (
            fresh.coverage,
            fresh.all_conversions,
            fresh.unattributed,
        )
    assert len(asked) == 3 and {by for _, _, by in asked} == {"session-date"}


def test_an_empty_view_draws_no_resamples(linear_db, monkeypatch):
    # A filter that leaves no rows has no intervals: without kept reads (CLI, HTML report) the 200
    # resamples are not drawn for it; the view is the one drawn with them.
    con = open_database(linear_db)
    drawn = rv.report_view(con, "2031-01-01", "2031-01-31", reads=rv.view_reads(con))
    monkeypatch.setattr(rv, "resample_draw", lambda *a, **k: pytest.fail("resamples drawn for an empty view"))
    view = rv.report_view(con, "2031-01-01", "2031-01-31")
    assert len(view.rows) == 0 and view.first == "2031-01-01"
    pd.testing.assert_frame_equal(view.totals, drawn.totals)
    pd.testing.assert_frame_equal(view.periods, drawn.periods)
    assert view.kpis == drawn.kpis and str(view.kpi_bounds) == str(drawn.kpi_bounds)
    assert (view.coverage, view.all_conversions, view.unattributed) == (
        drawn.coverage,
        drawn.all_conversions,
        drawn.unattributed,
    )


def test_biggest_shifts_put_the_differences_the_table_colours_first():
    """A card is for a difference the table colours: beyond the noise and not 0 at the table's precision.
    X: +0.04 pts, beyond the noise but '+0.0 pts' in the table (grey); Y: +6 pts within the noise (grey);
    Z: +2 pts beyond the noise (coloured). Z first, then by spread: Y (6 pts), X (0.04 pts)."""
    from pipeline.compare import Comparison

    share = {("a", "X"): 0.1, ("b", "X"): 0.1004, ("a", "Y"): 0.2, ("b", "Y"): 0.26, ("a", "Z"): 0.3, ("b", "Z"): 0.32}
    table = pd.DataFrame(
        [
            dict(model=m, channel_name=c, ihc=v, ihc_revenue=v, cost=1.0, CPO=1 / v, ROAS=v, share=v)
            for (m, c), v in share.items()
        ]
    )
    noise = pd.DataFrame(
        dict(
            model="b",
            channel_name=["X", "Y", "Z"],
            credit_within_noise=[False, True, False],
            revenue_within_noise=False,
        )
    )
    shifts = Comparison(table, ["a", "b"], 10, (None, None), noise).biggest_shifts("share", 3)
    assert shifts["channel_name"].tolist() == ["Z", "Y", "X"]
    assert shifts["beyond_noise"].tolist() == [True, False, False]
    assert shifts["spread"].tolist() == pytest.approx([0.02, 0.06, 0.0004])

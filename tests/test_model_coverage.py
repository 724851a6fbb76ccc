"""A report never blends models silently: status lists the models present, run warns when they mix."""

from __future__ import annotations

import json
import sqlite3

from pipeline.coverage import ModelCoverage, mixed_models_warning, model_coverage
from tests.helpers import cli


def test_status_and_run_name_every_model_in_the_attribution(small_demo, tmp_path):
    db = tmp_path / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    first = cli("run", str(db))
    assert first.returncode == 0 and "mixes models" not in first.stdout + first.stderr
    status = json.loads(cli("status", str(db), "--json").stdout)
    con = sqlite3.connect(db)
    total = con.execute("SELECT count(DISTINCT conv_id) FROM pipeline_attribution").fetchone()[0]
    lo, hi = con.execute(
        "SELECT min(conv_date), max(conv_date) FROM conversions WHERE conv_id IN "
        "(SELECT conv_id FROM pipeline_attribution)"
    ).fetchone()
    assert status["models"] == [{"model": "ihc", "conversions": total, "first_date": lo, "last_date": hi}]
    assert status["journeys"]["state"] == "done"  # the stage entries are unchanged

    second = cli("run", str(db), "--model", "linear", "--start", "2023-09-03", "--end", "2023-09-04")
    assert second.returncode == 0, second.stderr
    linear = con.execute(
        "SELECT count(*) FROM conversions WHERE conv_date BETWEEN '2023-09-03' AND '2023-09-04' "
        "AND conv_id IN (SELECT conv_id FROM pipeline_attribution)"
    ).fetchone()[0]
    assert 0 < linear < total
    models = {m["model"]: m for m in json.loads(cli("status", str(db), "--json").stdout)["models"]}
    assert models["linear"] == {
        "model": "linear",
        "conversions": linear,
        "first_date": "2023-09-03",
        "last_date": "2023-09-04",
    }
    assert models["ihc"]["conversions"] == total - linear
    assert "warning: report: it mixes models — ihc: " in second.stdout
    assert f"linear: {linear:,} conversions (2023-09-03 … 2023-09-04)" in second.stdout
    text = cli("status", str(db)).stdout
    assert "models     ihc: " in text and "linear: " in text

    third = cli("run", str(db), "--model", "linear")  # every conversion with one model again
    assert third.returncode == 0 and "mixes models" not in third.stdout
    assert [m.model for m in model_coverage(con)] == ["linear"]


def test_no_warning_for_one_model_or_none():
    assert mixed_models_warning([]) is None
    assert mixed_models_warning([ModelCoverage("ihc", 5, "2023-09-01", "2023-09-02")]) is None
    two = [ModelCoverage("ihc", 5, "2023-09-01", "2023-09-02"), ModelCoverage("linear", 1, "2023-09-03", "2023-09-03")]
    assert "ihc: 5 conversions (2023-09-01 … 2023-09-02); linear: 1 conversion (2023-09-03)" in mixed_models_warning(
        two
    )


def test_the_pipeline_page_preview_says_a_windowed_run_will_mix_models(small_demo, tmp_path):
    from pipeline.coverage import mixing_preview

    db = tmp_path / "demo.db"
    sqlite3.connect(small_demo).backup(sqlite3.connect(db))
    con = sqlite3.connect(db)
    assert mixing_preview(con, "2023-09-03", None, "linear") is None  # nothing attributed yet
    assert cli("run", str(db)).returncode == 0
    outside = con.execute(
        "SELECT count(*) FROM conversions WHERE conv_date < '2023-09-03' "
        "AND conv_id IN (SELECT conv_id FROM pipeline_attribution)"
    ).fetchone()[0]
    text = mixing_preview(con, "2023-09-03", None, "linear")
    assert text.startswith("This run replaces the credit of the conversions from 2023-09-03 … the last date only")
    assert f"{outside:,} keep their IHC — offline model credit" in text  # the models' names, not their ids
    assert text.endswith("Clear the conversion dates to attribute every conversion with Linear.")
    assert mixing_preview(con, "2023-09-03", None, "ihc") is None  # same model: no mix
    assert mixing_preview(con, None, None, "linear") is None  # every conversion: no mix


def test_warning_counts_name_data_warnings_and_report_notes_apart():
    from pipeline.report_warnings import warning_counts

    assert warning_counts(2, 1) == "2 data warnings · 1 report note"
    assert warning_counts(1, 0) == "1 data warning"
    assert warning_counts(0, 2) == "2 report notes"
    assert warning_counts(1_200, 0) == "1,200 data warnings"
    assert warning_counts(0, 0) == ""


def test_stored_attribution_text_names_models_and_counts():
    from pipeline.coverage import ModelCoverage, stored_attribution_text

    cov = [
        ModelCoverage("linear", 1_186, "2023-09-05", "2023-09-10"),
        ModelCoverage("ihc", 763, "2023-09-01", "2023-09-04"),
    ]
    assert stored_attribution_text(cov) == (
        "In the database: 1,949 conversions attributed — Linear: 1,186 conversions (2023-09-05 … 2023-09-10); "
        "IHC — offline model: 763 conversions (2023-09-01 … 2023-09-04)"
    )
    assert stored_attribution_text([]) == "In the database: no attributed conversion yet."

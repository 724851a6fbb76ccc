"""Pure tests of the text helpers that keep the dashboard's tables and sentences whole at 1280 px:
``text_px``/``column_px``/``fit_widths`` (table column widths) and ``whole_dates`` (dates that neither
wrap nor copy as something else)."""

from __future__ import annotations

import pytest

from pipeline.labels import CELL_PADDING_PX, column_px, fit_widths, text_px, whole_dates

# Widths Chromium's canvas measureText gives for 14 px Source Sans (the font of st.dataframe), measured
# on Streamlit's own font file: the estimate is within 2 px of each.
MEASURED = {
    "Affiliate & Partnerships": 132.39,
    "11.74–38.41": 69.36,
    "2023-09-01": 64.37,
    "Conversions": 71.90,
    "ROAS 90%": 60.45,
    "Based on": 53.91,
    "Sep 2023": 52.82,
    "€1,234.56": 55.68,
}


@pytest.mark.parametrize("text", MEASURED)
def test_text_width_is_close_to_what_chromium_measures(text):
    assert text_px(text) == pytest.approx(MEASURED[text], abs=2)


def test_characters_it_does_not_know_count_as_an_em():
    assert text_px("株式会社") == 4 * 14.0
    assert text_px("") == text_px(None) == 0


def test_a_column_is_as_wide_as_its_header_or_its_longest_value():
    assert column_px("Conversions", ["6.46", None, "97.18"]) == 72 + CELL_PADDING_PX  # the header
    assert column_px("ROAS 90%", ["8.68–37.26", "11.74–38.41"]) == 70 + CELL_PADDING_PX  # "11.74–38.41": 69.5
    assert column_px("Days", []) == text_px("Days") + CELL_PADDING_PX


def test_spare_room_is_shared_and_a_shortfall_comes_from_the_names():
    assert fit_widths({"name": 100, "a": 50, "b": 50}, 203, "name") == {"name": 101, "a": 51, "b": 51}
    assert fit_widths({"name": 150, "a": 60, "b": 60}, 250, "name") == {"name": 130, "a": 60, "b": 60}
    assert fit_widths({"name": 150, "a": 300}, 250, "name", least=60) == {"name": 60, "a": 300}  # scrolls


def test_dates_stay_whole_and_copy_as_typed():
    out = whole_dates("Sessions **2023-09-01** – **2023-09-10** (UTC)")
    span = '<span style="white-space:nowrap">{}</span>'
    assert out == f"Sessions **{span.format('2023-09-01')}** – **{span.format('2023-09-10')}** (UTC)"
    assert "\u2011" not in out and "\u2060" not in out  # characters a copy would carry along
    assert whole_dates("id 12023-09-011 or 2023-9-1") == "id 12023-09-011 or 2023-9-1"  # no date: unchanged


def test_no_tag_of_the_data_comes_through_the_html_it_is_shown_with():
    from pipeline.labels import md

    hostile = "<img src=x onerror=alert(1)> on 2023-09-01"
    assert whole_dates(hostile).startswith("\\<img src=x")  # a character, not a tag
    assert whole_dates(md(hostile)).startswith("\\<img src=x")  # escaped once, not twice
    assert whole_dates("a \\\\<b>") == "a \\\\\\<b>"  # an escaped backslash does not escape the "<"


def test_a_table_leaves_room_for_the_scrollbars_it_will_have():
    from pipeline.labels import MAIN_TABLE_PX, SCROLLBAR_PX, table_height, table_room

    assert SCROLLBAR_PX == 10  # Streamlit's thin scrollbars in Chromium (tests/test_e2e_widths.py)
    # 9 rows: 38 + 9 × 35 + 10 = 363 px, all of them shown: the whole room
    assert table_height(9) == 363 and table_room(9) == 860
    # 10 rows: 38 + 350 + 10 = 398 px still fit; 11 rows (433 px) scroll inside 400 px: less their bar
    assert table_height(10) == 398 and table_room(10) == 860
    assert table_height(11) == 400 and table_room(11) == 850
    assert table_room(140, room=700) == 690 and MAIN_TABLE_PX == 860


def test_a_time_that_rounds_to_nothing_says_under_instead_of_zero():
    """A stage that reused its results read "0.00 s" on its Pipeline card, a no-op run "Time 0.0 s"."""
    from pipeline.labels import duration

    assert [duration(s) for s in (0.0, 0.004, 0.42, 12.345)] == ["under 0.01 s", "under 0.01 s", "0.42 s", "12.35 s"]
    assert [duration(s, 1) for s in (0.04, 0.05, 1.26)] == ["under 0.1 s", "0.1 s", "1.3 s"]
    assert duration(0.0, space="\u00a0") == "under\u00a00.01\u00a0s"

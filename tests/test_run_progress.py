"""The run's progress in words (``pipeline.run_progress``): steps numbered in the order they really
run, only those that do work, the number and the bar never going back; the same on every kind of run."""

from __future__ import annotations

import re

from pipeline.db import open_database
from pipeline.ihc_api.local_server import LocalIhcServer
from pipeline.run_progress import detail_of, run_steps, step_order
from pipeline.runner import RunOptions, run_pipeline

STEP = re.compile(r"^Step (\d) of (\d): ")


def run(path, **options):
    seen: list[tuple[float, str]] = []
    con = open_database(path, write=True)
    try:
        run_pipeline(con, RunOptions(**options), progress=lambda d, t, m: seen.append((d / t, m)))
    finally:
        con.close()
    return seen


def steps_of(seen) -> list[tuple[int, int, str]]:
    out = []
    for _, message in seen:
        match = STEP.match(message)
        if match:
            out.append((int(match[1]), int(match[2]), message[match.end() :]))
    return out


def assert_forward(seen) -> None:
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    numbers = [n for n, _, _ in steps_of(seen)]
    assert numbers == sorted(numbers), numbers


def test_a_fresh_local_run_names_its_four_steps_in_the_order_they_run(small_demo, tmp_path):
    db = tmp_path / "d.db"
    db.write_bytes(small_demo.read_bytes())
    seen = run(db, model="linear")
    assert_forward(seen)
    firsts = {}
    for number, count, text in steps_of(seen):
        assert count == 4
        firsts.setdefault(number, text)
    assert firsts[1].startswith("building the customer journeys")
    assert firsts[2] == "attributing the conversions (Linear)"  # the model by its label
    assert firsts[3].startswith("checking the data before saving anything (")
    assert firsts[4].startswith("building the channel report (")
    assert not any(m.startswith(("validate:", "journeys:", "report:")) for _, m in seen)

    # the same run again with another model: the journeys are reused, three steps
    seen = run(db, model="last-click")
    assert_forward(seen)
    counts = {count for _, count, _ in steps_of(seen)}
    assert counts == {2}, counts  # validation is current: attribute + report
    assert steps_of(seen)[0][2].startswith("attributing the conversions")


def test_an_api_run_checks_the_data_before_it_sends(small_demo, tmp_path):
    db = tmp_path / "d.db"
    db.write_bytes(small_demo.read_bytes())
    with LocalIhcServer("progress-key-123456") as server:
        seen = run(db, model="ihc-api", api_config=server.client_config())
    assert_forward(seen)
    order = []
    for _number, _, text in steps_of(seen):
        words = text.split(" (")[0]
        if not order or order[-1] != words:
            order.append(words)
    assert order == [
        "building the customer journeys",
        "checking the data",
        "attributing the conversions",
        "building the channel report",
    ]
    sending = [f for f, m in seen if "IHC API:" in m]
    assert sending and min(sending) >= 0.25 and max(sending) <= 0.80  # the bar moves while it sends


def test_a_step_that_speaks_again_keeps_the_later_number():
    seen = []
    parts = run_steps(lambda d, t, m: seen.append((d, m)), step_order(True), dict.fromkeys(step_order(True), True))
    parts["attribute"](0, 2, "attribute: model x")
    parts["validate"](1, 4, "validate: session_costs")
    parts["attribute"](1, 2, "attribute: again")
    parts["report"](2, 2, "report: 10 channel-days")
    assert [m for _, m in seen] == [
        "Step 2 of 4: attributing the conversions (model x)",
        "Step 3 of 4: checking the data before saving anything (session_costs)",
        "Step 3 of 4: attributing the conversions again (again)",
        "Step 4 of 4: building the channel report (10 channel-days)",
    ]
    assert [d for d, _ in seen] == [15, 72, 42, 100]  # (the bar itself is kept forward by forward_only)
    assert detail_of("journeys: markov: removal effects") == "removal effects"
    # a model by the label the dashboard gives it, never its registry name
    assert detail_of("attribute: model ihc") == "IHC — offline model"
    assert detail_of("attribute: 1,000 conversions with time-decay") == "1,000 conversions with Time decay"

"""The model interface: canonical order, row-order invariance, registry, parameters."""

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.journey_index import JOURNEY_COLUMNS, JourneyIndex
from pipeline.models import available_models, get_model


def journeys(rows):
    return pd.DataFrame(rows, columns=JOURNEY_COLUMNS)


ROWS = [
    ("b", "s9", "2023-09-01 10:00:00", "X", 1, 0, 0, 0),
    ("a", "s2", "2023-09-01 09:00:00", "Y", 1, 0, 0, 0),
    ("a", "s1", "2023-09-01 08:00:00", "Z", 1, 0, 0, 0),
    ("b", "s8", "2023-09-01 09:00:00", "X", 1, 0, 0, 0),
    ("a", "s4", "2023-09-01 09:00:00", "Y", 1, 0, 0, 0),  # same time as s2: ordered by session_id
]


def test_journey_index_orders_by_time_then_session_id():
    idx = JourneyIndex.from_frame(journeys(ROWS))
    assert idx.frame["session_id"].tolist() == ["s8", "s9", "s1", "s2", "s4"]
    assert idx.start.tolist() == [0, 2] and idx.length.tolist() == [2, 3]
    assert idx.pos.tolist() == [0, 1, 0, 1, 2]
    assert idx.is_last.tolist() == [False, True, False, False, True]


@pytest.mark.parametrize("name", ["linear", "last-click"])
def test_hand_computed_and_row_order_invariant(name):
    expected = {
        "linear": {("a", "s1"): 1 / 3, ("a", "s2"): 1 / 3, ("a", "s4"): 1 / 3, ("b", "s8"): 0.5, ("b", "s9"): 0.5},
        "last-click": {("a", "s1"): 0, ("a", "s2"): 0, ("a", "s4"): 1, ("b", "s8"): 0, ("b", "s9"): 1},
    }[name]
    model = get_model(name)
    rng = np.random.default_rng(0)
    for _ in range(5):
        shuffled = journeys([ROWS[i] for i in rng.permutation(len(ROWS))])
        out = model.attribute(shuffled)
        got = {(c, s): v for c, s, v in out[["conversion_id", "session_id", "ihc"]].itertuples(index=False)}
        assert got == pytest.approx(expected)
        assert out[["initializer", "holder", "closer"]].isna().all().all()


def test_registry_and_parameters():
    assert {"linear", "last-click"} <= set(available_models())
    with pytest.raises(InputError, match="unknown model"):
        get_model("nope")
    with pytest.raises(InputError, match="has no parameter"):
        get_model("linear").resolve_params({"half_life": 3})


def test_empty_journeys():
    out = get_model("linear").attribute(journeys([]))
    assert len(out) == 0 and list(out.columns) == [
        "conversion_id",
        "session_id",
        "initializer",
        "holder",
        "closer",
        "ihc",
    ]


def test_bad_timestamp_is_an_input_error():
    with pytest.raises(InputError, match="not 'YYYY-MM-DD HH:MM:SS'"):
        get_model("linear").attribute(journeys([("a", "s", "yesterday", "X", 0, 0, 0, 0)]))

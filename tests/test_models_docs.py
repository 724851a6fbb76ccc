"""docs/models.md stays true: its Python examples run, and its table of example credits is what the
models give."""

import re
from pathlib import Path

import pytest

from pipeline.models import get_model

DOC = Path(__file__).resolve().parents[1] / "docs" / "models.md"
FRACTIONS = {"½": 1 / 2, "⅓": 1 / 3, "⅔": 2 / 3, "⅙": 1 / 6}


@pytest.fixture(scope="module")
def namespace():
    """Run every ```python block of the doc, in order, in one namespace."""
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) >= 3
    names: dict = {}
    for block in blocks:
        exec(compile(block, str(DOC), "exec"), names)  # noqa: S102 - our own documentation
    return names


def table_rows():
    rows = re.findall(r"^\| `([a-z-]+)` \| [^|]* \| ([^|]+) \|$", DOC.read_text(encoding="utf-8"), re.M)
    assert len(rows) == 7
    return [(name, [FRACTIONS.get(v.strip(), None) or float(v) for v in values.split(",")]) for name, values in rows]


@pytest.mark.parametrize("name, expected", table_rows())
def test_example_table_matches_the_models(namespace, name, expected):
    result = get_model(name).attribute(namespace["conv"], non_converting=namespace["lost"])
    assert result["ihc"].tolist() == pytest.approx(expected, abs=5e-4)


def test_markov_and_shapley_examples(namespace):
    table = namespace["fit_markov"](namespace["paths"], order=1).table(conversions=3)
    assert table["conversions"].tolist() == pytest.approx([0.9, 1.8, 0.3])
    assert namespace["fit_markov"](namespace["paths"], order=2).removal_effect == pytest.approx([2 / 3, 1, 0])
    sets = namespace["fit"].sets_table()
    assert sets["channels"].tolist() == ["B", "A + B", "A + C"]
    assert sets["worth"].tolist() == [0.5, 1.0, 0.0]

"""The evaluation's statistics on sequences whose answers are known by hand."""

import pytest

from bazaar.evaluation.stats import hit_rate, percentile, summarise

ONE_TO_HUNDRED = [float(i) for i in range(1, 101)]


@pytest.mark.parametrize("p, expected", [(0, 1.0), (50, 50.5), (95, 95.05), (99, 99.01), (100, 100.0)])
def test_percentiles_of_1_to_100_interpolate_linearly(p, expected):
    assert percentile(ONE_TO_HUNDRED, p) == pytest.approx(expected)


def test_percentile_ignores_the_input_order():
    shuffled = ONE_TO_HUNDRED[50:] + ONE_TO_HUNDRED[:50]
    assert percentile(shuffled, 50) == pytest.approx(50.5)


@pytest.mark.parametrize("values, p, expected", [
    ([7.0], 99, 7.0),  # one value is every percentile
    ([1.0, 2.0], 50, 1.5),
    ([1.0, 2.0, 3.0, 4.0], 25, 1.75),  # position 0.75 between 1 and 2
    ([10.0, 20.0, 30.0], 50, 20.0),  # an odd count's median is its middle value
])
def test_percentile_small_sequences(values, p, expected):
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_of_nothing_is_none():
    assert percentile([], 50) is None


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_outside_0_to_100_is_refused(p):
    with pytest.raises(ValueError):
        percentile([1.0], p)


def test_summarise_1_to_100():
    s = summarise(ONE_TO_HUNDRED)
    assert s["count"] == 100
    assert s["p50_ms"] == pytest.approx(50.5)
    assert s["p95_ms"] == pytest.approx(95.05)
    assert s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5)
    assert s["max_ms"] == 100.0


def test_summarise_nothing():
    assert summarise([]) == {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None,
                             "mean_ms": None, "max_ms": None}


def test_hit_rate():
    assert hit_rate(9, 1) == pytest.approx(0.9)
    assert hit_rate(0, 4) == 0.0
    assert hit_rate(0, 0) is None

"""The one budget language (nas_prune/budget.py): durations, fractions of a reference, counts."""

from __future__ import annotations

import pytest

from nas_prune.budget import UNITS, LatencyLimit, parse_count, parse_milliseconds, parse_relative
from nas_prune.errors import NasPruneError


@pytest.mark.parametrize("text, limit", [
    ("1.8ms", LatencyLimit(1.8, False)), ("1800us", LatencyLimit(1.8, False)), ("1800µs", LatencyLimit(1.8, False)),
    ("0.0018s", LatencyLimit(1.8, False)), (" 2 ms ", LatencyLimit(2.0, False)), ("1e1ms", LatencyLimit(10.0, False)),
    ("0.5x", LatencyLimit(0.5, True)), ("1x", LatencyLimit(1.0, True)), (2, LatencyLimit(2.0, False)),
])
def test_latency_limits(text, limit):
    parsed = LatencyLimit.parse(text)
    assert parsed.relative == limit.relative and parsed.value == pytest.approx(limit.value)


@pytest.mark.parametrize("bad", ["fast", "-1ms", "0ms", "0x", "1.5x", "nan", "1e400ms", "120M", "1.8MS", "", "2"])
def test_latency_limits_refused_in_one_line(bad):
    with pytest.raises(NasPruneError) as err:
        LatencyLimit.parse(bad)
    assert "\n" not in str(err.value)


def test_a_bare_number_is_refused_unless_asked_and_the_message_names_the_reference():
    with pytest.raises(NasPruneError, match=r"'0.5' has no unit: write 0.5ms .* or 0.5x \(a fraction of the teacher\)"):
        LatencyLimit.parse("0.5", reference="the teacher")
    assert LatencyLimit.parse("0.5", bare=True) == LatencyLimit(0.5, False)


def test_to_ms_and_text():
    assert LatencyLimit.parse("0.5x").to_ms(8.0) == 4.0
    assert LatencyLimit.parse("1.8ms").to_ms(8.0) == 1.8
    assert [str(LatencyLimit.parse(t)) for t in ("0.5x", "1800us")] == ["0.5x", "1.8ms"]
    with pytest.raises(NasPruneError, match="not positive"):
        LatencyLimit.parse("0.5x").to_ms(0.0)


def test_the_search_helpers_read_the_same_language():
    assert parse_milliseconds("1800us") == pytest.approx(1.8)
    assert parse_relative("0.25x") == 0.25 and parse_relative("1.8ms") is None and parse_relative(0.5) is None
    with pytest.raises(NasPruneError, match="is relative, not a duration"):
        parse_milliseconds("0.5x")


def test_counts():
    assert [parse_count(t) for t in ("0.5", "120M", "120m", "3.5k", "2G")] == [0.5, 120e6, 120e6, 3500.0, 2e9]
    for bad in ("0", "-1", "1.8ms", "0.5x", "abc", "nan"):
        with pytest.raises(NasPruneError):
            parse_count(bad)


def test_one_unit_table_for_every_quantity():
    assert {q for q, _ in UNITS.values()} == {"duration", "fraction", "count"}

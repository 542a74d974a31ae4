"""Human units: parsing, and formatting that reads back as exactly the same number."""

from __future__ import annotations

import math
import random

import pytest

import harness.scenario
import harness.units
from harness.units import (
    MAX_RATE,
    format_count,
    format_duration_ms,
    format_percent,
    parse_count,
    parse_duration_ms,
    parse_percent,
    parse_rate,
    parse_size,
)


@pytest.mark.parametrize(
    "value, text",
    [(20_000, "20k"), (1_500_000, "1.5M"), (250, "250"), (2_500, "2.5k"), (1_250_000, "1.25M"),
     (1_234_567, "1234567"), (1_234_000, "1234k"), (12_345, "12345"), (0.25, "0.25"), (1e-7, "0.0000001"),
     (100_000_000, "100M"), (33_333.5, "33333.5")],
)
def test_format_count(value: float, text: str) -> None:
    assert format_count(value) == text
    assert parse_count(text) == value


def test_format_count_is_exact_for_any_rate() -> None:
    rng = random.Random(7)
    values = [rng.randint(1, MAX_RATE) for _ in range(2_000)] + [rng.uniform(0, 1e6) for _ in range(2_000)]
    assert [parse_count(format_count(v)) for v in values] == values


@pytest.mark.parametrize("text, value", [("1.1k", 1_100), ("4.35k", 4_350), ("1.005k", 1_005), ("0.07M", 70_000)])
def test_parse_count_is_decimal_exact(text: str, value: int) -> None:
    assert parse_count(text) == value  # float arithmetic gives 1004.9999999999999 for 1.005 * 1000


@pytest.mark.parametrize("text, millis", [("4.35s", 4_350), ("1.005s", 1_005), ("0.29s", 290), ("1.5m", 90_000)])
def test_parse_duration_is_decimal_exact(text: str, millis: int) -> None:
    assert parse_duration_ms(text) == millis
    assert parse_duration_ms(format_duration_ms(millis)) == millis


def test_parse_size() -> None:
    assert (parse_size("1KiB"), parse_size("2kB"), parse_size("1.5MiB"), parse_size(100)) == (1_024, 2_000, 1_572_864, 100)


@pytest.mark.parametrize(
    "value, message",
    [(math.inf, "must be a finite number of events/s such as 500, 20k or 1.5M (got inf)"),
     (math.nan, "must be a finite number of events/s such as 500, 20k or 1.5M (got nan)"),
     ("100.5M", "must be at most 100M events/s, far beyond what one broker and one generator host carry; check the "
                "number (got 100.5M)"),
     ("fast", "must be a number such as 500, 20k or 1.5M (got 'fast')")],
)
def test_parse_rate_refuses(value: object, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_rate(value)
    assert str(caught.value) == message


def test_parse_rate_accepts_the_limit() -> None:
    assert parse_rate("100M") == MAX_RATE


@pytest.mark.parametrize("text, fraction", [("5%", 0.05), ("2.5%", 0.025), ("7%", 0.07), ("99.9%", 0.999)])
def test_percent(text: str, fraction: float) -> None:
    assert parse_percent(text) == fraction
    assert format_percent(fraction) == text


def test_unit_types_live_in_units_and_stay_importable_from_scenario() -> None:
    # engine settings (harness/engines/flink.py) import Millis from harness.scenario
    for name in ("Millis", "Rate", "Bytes"):
        assert getattr(harness.scenario, name) is getattr(harness.units, name)

"""The one results table: rows of measure, value, target, ratio and verdict, as Markdown."""

from __future__ import annotations

from dataclasses import dataclass

from bazaar import tables

PASS, FAIL, REPORT = "pass", "FAIL", ""


@dataclass(frozen=True)
class Row:
    measure: str
    value: str
    target: str = ""
    ratio: str = ""
    verdict: str = REPORT


def rate(per_second: float | None, unit: str = "/s") -> str:
    return "-" if per_second is None else f"{per_second:,.0f}{unit}"


def duration(seconds: float | None) -> str:
    """Milliseconds below a second, else seconds."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms" if seconds < 0.01 else f"{seconds * 1000:.0f} ms"
    return f"{seconds:.2f} s"


def micros(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.1f} µs"


def mebibytes(count: int | None) -> str:
    return "-" if count is None else f"{count / 2 ** 20:,.0f} MiB"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}×"


# Verdicts judge values as the table shows them (two decimals), so "0.80×" never fails "≥ 0.8×".


def at_least(value: float | None, target: float) -> str:
    return FAIL if value is None or round(value, 2) < target else PASS


def at_most(value: float | None, target: float) -> str:
    return FAIL if value is None or round(value, 2) > target else PASS


def within(value: float | None, low: float, high: float) -> str:
    return FAIL if value is None or not low <= round(value, 2) <= high else PASS


def worst(verdicts: list[str]) -> str:
    """One verdict for several targets of one row: FAIL if any fails, else pass if any passed."""
    return FAIL if FAIL in verdicts else PASS if PASS in verdicts else REPORT


def render(rows: list[Row]) -> list[str]:
    """A Markdown table (bazaar.tables), columns padded to line up in a terminal too."""
    return tables.table(("measure", "value", "target", "ratio", "verdict"),
                        [(r.measure, r.value, r.target, r.ratio, r.verdict) for r in rows], markdown=True)

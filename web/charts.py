"""Geometry for the insights page's charts, drawn as static SVG by the templates.

Plain numbers in, rectangles out: the page needs no script to show a chart, and each chart's
figures are also in a table beneath it (what screen readers and tests read).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STATE_COLOURS = {"completed": "#17613a", "failed": "#b42318", "abandoned": "#b76e00", "open": "#8a94a6"}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    fill: str
    label: str  # what a tooltip (<title>) says


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Columns:
    """A stacked column chart: one column per period (day), stacked by state."""

    width: int
    height: int
    bars: list[Bar]
    ticks: list[Tick]
    top: int  # the value the plot's top line stands for
    baseline: float


def nice_top(value: int) -> int:
    """A round number at or above `value`, for the axis."""
    if value <= 5:
        return 5
    step = 10 ** (len(str(value)) - 1)
    for factor in (1, 2, 2.5, 5, 10):
        top = int(step * factor)
        if top >= value:
            return top
    return value


def stacked_columns(days: Sequence[dict], series: Sequence[str], width: int = 420, height: int = 160) -> Columns:
    """`days`: rows with "key" (YYYY-MM-DD) and a count per name in `series`."""
    plot_top, plot_bottom, left = 8, height - 20, 30
    top = nice_top(max((sum(day[name] for name in series) for day in days), default=0))
    slot = (width - left - 4) / max(1, len(days))
    bar_width = max(2.0, slot * 0.7)
    scale = (plot_bottom - plot_top) / top
    bars, ticks = [], []
    label_every = max(1, -(-len(days) // 7))  # at most 7 or 8 labels: they must not overlap
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar_width) / 2
        y = plot_bottom
        for name in series:
            value = day[name]
            if not value:
                continue
            h = value * scale
            y -= h
            bars.append(Bar(round(x, 2), round(y, 2), round(bar_width, 2), round(h, 2),
                            STATE_COLOURS.get(name, "#1f55d6"), f"{day['key']}: {value} {name}"))
        if i % label_every == 0 or i == len(days) - 1:
            ticks.append(Tick(round(x + bar_width / 2, 2), day["key"][5:]))
    return Columns(width, height, bars, ticks, top, plot_bottom)


@dataclass(frozen=True)
class Meter:
    """One row of a horizontal bar chart: a label and a share of the widest bar."""

    label: str
    value: float
    text: str
    share: float  # 0..1 of the plot width


def meters(rows: Sequence[tuple[str, float, str]], full: float | None = None) -> list[Meter]:
    """(label, value, how the value reads) → bars scaled to `full` (a rate's 1.0), or to
    the largest value."""
    largest = full or max((value for _, value, _ in rows), default=0) or 1
    return [Meter(label, value, text, value / largest) for label, value, text in rows]

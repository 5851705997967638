"""Stacked daily bar charts drawn on the server as inline SVG (no JavaScript, no chart library).

`stacked_bars` turns a `usage.DailySeries` into plain geometry; the template
accounts/staff/_chart.html draws it. Colours come from CSS classes (`series-0`…), so the chart
follows the light and dark schemes like the rest of the page.
"""

import datetime as dt
import math
from dataclasses import dataclass

from django.utils import formats

from studio.accounts.usage import DailySeries

WIDTH = 720
HEIGHT = 260
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 28
MAX_SERIES = 6  # the biggest series by total; the rest are drawn as one "other"
OTHER = "other"


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LegendItem:
    name: str
    css: str
    total: int


@dataclass(frozen=True)
class TableRow:
    day: dt.date
    values: list[int]
    total: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[LegendItem]
    table: list[TableRow]  # the same numbers as text, days with any value only
    total: int

    @property
    def empty(self) -> bool:
        return self.total == 0


def nice_step(value: float) -> int:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten (a whole number) >= `value`."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step >= value and step == int(step):
            return int(step)
    return int(10 * magnitude)


def compact(number: int) -> str:
    """1234 → 1.2k, 3000000 → 3M: axis labels stay short."""
    for size, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(number) >= size:
            text = f"{number / size:.1f}".rstrip("0").rstrip(".")
            return f"{text}{suffix}"
    return str(number)


def _ranked(data: DailySeries) -> list[tuple[str, list[int]]]:
    ranked = sorted(data.series.items(), key=lambda item: (-sum(item[1]), item[0]))
    ranked = [(name, values) for name, values in ranked if sum(values) > 0]
    if len(ranked) <= MAX_SERIES:
        return ranked
    kept, rest = ranked[: MAX_SERIES - 1], ranked[MAX_SERIES - 1 :]
    other = [sum(values[i] for _name, values in rest) for i in range(len(data.days))]
    return [*kept, (OTHER, other)]


def stacked_bars(data: DailySeries, *, unit: str) -> Chart:
    """One bar per day, one stacked segment per series; `unit` names the values in tooltips."""
    series = _ranked(data)
    days = len(data.days)
    per_day = [sum(values[i] for _name, values in series) for i in range(days)]
    highest = max(per_day, default=0)
    step = nice_step(highest / 4)
    steps = 4
    while steps > 1 and step * (steps - 1) >= highest:
        steps -= 1  # small numbers: no empty axis above the highest bar
    top_value = step * steps
    plot_width = WIDTH - LEFT - RIGHT
    plot_height = HEIGHT - TOP - BOTTOM
    slot = plot_width / max(days, 1)
    bar_width = max(1.0, slot * 0.72)

    def y_of(value: float) -> float:
        return TOP + plot_height - plot_height * value / top_value

    bars: list[Bar] = []
    for i, day in enumerate(data.days):
        base = 0
        for number, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            y_top, y_bottom = y_of(base + value), y_of(base)
            when = formats.date_format(day, "SHORT_DATE_FORMAT")
            amount = formats.number_format(value, force_grouping=True)
            bars.append(
                Bar(
                    x=round(LEFT + i * slot + (slot - bar_width) / 2, 2),
                    y=round(y_top, 2),
                    width=round(bar_width, 2),
                    height=round(max(0.5, y_bottom - y_top), 2),
                    css=f"series-{number}",
                    title=f"{when} · {name}: {amount} {unit}",
                )
            )
            base += value
    label_every = 7 if days > 14 else 1
    x_ticks = [
        Tick(round(LEFT + i * slot + slot / 2, 2), formats.date_format(day, "n/j"))
        for i, day in enumerate(data.days)
        if (days - 1 - i) % label_every == 0
    ]
    y_ticks = [Tick(round(y_of(step * n), 2), compact(step * n)) for n in range(steps + 1)]
    legend = [
        LegendItem(name, f"series-{number}", sum(values))
        for number, (name, values) in enumerate(series)
    ]
    table = [
        TableRow(day, [values[i] for _name, values in series], per_day[i])
        for i, day in enumerate(data.days)
        if per_day[i]
    ]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=WIDTH - RIGHT,
        plot_top=TOP,
        plot_bottom=HEIGHT - BOTTOM,
        bars=bars,
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        legend=legend,
        table=table,
        total=sum(per_day),
    )

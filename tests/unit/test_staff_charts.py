"""The server-drawn usage chart: scale, stacking, series ranking, labels (no database)."""

import datetime as dt

import pytest

from studio.accounts.charts import compact, nice_step, stacked_bars
from studio.accounts.usage import DailySeries

DAYS = [dt.date(2026, 11, 1) + dt.timedelta(days=n) for n in range(30)]


def series(**values: dict[int, int]) -> DailySeries:
    data = {}
    for name, by_day in values.items():
        row = [0] * 30
        for day, value in by_day.items():
            row[day] = value
        data[name] = row
    return DailySeries(days=DAYS, series=data)


@pytest.mark.parametrize(
    ("value", "step"), [(0, 1), (0.3, 1), (3, 5), (7, 10), (12, 20), (240, 250), (2600, 5000)]
)
def test_nice_step(value, step):
    assert nice_step(value) == step


def test_compact_numbers():
    assert [compact(n) for n in (0, 999, 1000, 1250, 2_500_000, 3_000_000_000)] == [
        "0",
        "999",
        "1k",
        "1.2k",
        "2.5M",
        "3G",
    ]


def test_bars_stack_per_day_and_scale_to_the_axis():
    chart = stacked_bars(series(a={29: 300, 0: 100}, b={29: 100}), unit="tokens")
    assert chart.total == 500 and not chart.empty
    # The top of the axis is 4 nice steps: 400 / 4 = 100 per step.
    assert [tick.label for tick in chart.y_ticks] == ["0", "100", "200", "300", "400"]
    last_day = [bar for bar in chart.bars if bar.title.startswith("11/30/2026")]
    assert len(last_day) == 2
    below, above = sorted(last_day, key=lambda bar: -bar.y)
    assert below.css == "series-0" and above.css == "series-1"  # a (bigger) at the bottom
    assert below.y + below.height == pytest.approx(chart.plot_bottom)
    assert above.y == pytest.approx(chart.plot_top)  # 400 reaches the top
    assert below.height == pytest.approx(3 * above.height)
    for bar in chart.bars:
        assert chart.plot_left <= bar.x and bar.x + bar.width <= chart.plot_right
    assert [row.day for row in chart.table] == [DAYS[0], DAYS[29]]
    assert chart.table[1].values == [300, 100] and chart.table[1].total == 400
    assert chart.x_ticks[-1].label == "11/30"  # today is always labelled


def test_small_series_are_grouped_as_other():
    chart = stacked_bars(series(**{f"m{n}": {0: 10 * (n + 1)} for n in range(8)}), unit="tokens")
    names = [item.name for item in chart.legend]
    assert names == ["m7", "m6", "m5", "m4", "m3", "other"]
    assert chart.legend[-1].total == 10 + 20 + 30
    assert chart.total == sum(10 * (n + 1) for n in range(8))


def test_the_axis_stops_at_the_first_tick_above_the_highest_day():
    one = stacked_bars(series(a={3: 1}), unit="jobs")
    assert [tick.label for tick in one.y_ticks] == ["0", "1"]
    busy = stacked_bars(series(a={3: 13_000}), unit="tokens")
    assert [tick.label for tick in busy.y_ticks] == ["0", "5k", "10k", "15k"]


def test_an_empty_chart_says_so():
    chart = stacked_bars(series(a={}), unit="tokens")
    assert chart.empty and chart.bars == [] and chart.legend == []

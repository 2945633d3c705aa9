"""Charts drawn on the server as SVG: no script, no library, nothing fetched.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>`` that states every
number, and the page puts the same numbers in a table beside it. Colours come from the
stylesheet (classes ``s1``..``s5``), so both colour schemes keep their contrast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

__all__ = ["Series", "bar_chart", "line_chart", "nice_max"]

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 30


@dataclass(frozen=True)
class Series:
    """One named row of values, one per label."""

    name: str
    values: Sequence[int]


TICKS = 4  # grid lines above the axis


def nice_max(value: int) -> int:
    """A round top for the axis at or above ``value``: ``TICKS`` steps of 1, 1.5, 2, 2.5, 3, 4, 5, 6
    or 8 times a power of ten, so every grid line is a whole, round number."""
    if value <= 0:
        return TICKS
    power = 1
    while True:
        for tenths in (10, 15, 20, 25, 30, 40, 50, 60, 80):
            step, rest = divmod(power * tenths, 10)
            if not rest and step * TICKS >= value:
                return step * TICKS
        power *= 10


def _short(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    if n >= 1000:
        return f"{n / 1000:g}k"
    return str(n)


def _frame(title: str, desc: str, chart_id: str, body: list[str], top: int,
           labels: Sequence[str], x_of: list[float]) -> Markup:
    plot_h = HEIGHT - TOP - BOTTOM
    parts = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title {chart_id}-desc" '
             f'xmlns="http://www.w3.org/2000/svg" data-testid="{chart_id}">',
             f'<title id="{chart_id}-title">{escape(title)}</title>',
             f'<desc id="{chart_id}-desc">{escape(desc)}</desc>']
    for i in range(TICKS + 1):  # grid lines and the y axis' labels
        value = top * i // TICKS
        y = TOP + plot_h - plot_h * i / TICKS
        parts.append(f'<line class="grid-line" x1="{LEFT}" x2="{WIDTH - RIGHT}" '
                     f'y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_short(value)}</text>')
    every = max(1, -(-len(labels) // 8))  # at most eight labels under the axis
    for i, (label, x) in enumerate(zip(labels, x_of, strict=True)):
        if i % every == 0 or i == len(labels) - 1:
            parts.append(f'<text x="{x:.1f}" y="{HEIGHT - 10}" text-anchor="middle">'
                         f'{escape(label)}</text>')
    parts.append(f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{TOP + plot_h}" '
                 f'y2="{TOP + plot_h}"/>')
    parts.extend(body)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped or a number


def _describe(labels: Sequence[str], series: Sequence[Series]) -> str:
    return "; ".join(
        f"{label}: " + ", ".join(f"{s.name} {s.values[i]}" for s in series)
        for i, label in enumerate(labels))


def line_chart(title: str, chart_id: str, labels: Sequence[str],
               series: Sequence[Series]) -> Markup:
    """One line per series over ``labels`` (weeks, say), with a dot at each value."""
    top = nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = plot_w / max(1, len(labels) - 1)
    x_of = [LEFT + step * i if len(labels) > 1 else LEFT + plot_w / 2
            for i in range(len(labels))]
    body = []
    for n, s in enumerate(series, start=1):
        points = [(x_of[i], TOP + plot_h - plot_h * v / top) for i, v in enumerate(s.values)]
        # The first line is wider and every second one dashed, so lines with equal values
        # (sign-ups and confirmations, often) still show both colours.
        style = 'stroke-width="4.5"' if n == 1 else 'stroke-width="2.5"'
        if n % 2 == 0:
            style += ' stroke-dasharray="7 4"'
        body.append(f'<polyline class="s{n}" {style} points="'
                    + " ".join(f"{x:.1f},{y:.1f}" for x, y in points) + '"/>')
        body.extend(f'<circle class="s{n}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>'
                    for x, y in points)
    return _frame(title, _describe(labels, series), chart_id, body, top, labels, x_of)


def bar_chart(title: str, chart_id: str, labels: Sequence[str],
              series: Sequence[Series]) -> Markup:
    """Grouped bars: one group per label, one bar per series."""
    top = nice_max(max((v for s in series for v in s.values), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    group = plot_w / max(1, len(labels))
    bar = group * 0.8 / max(1, len(series))
    x_of = [LEFT + group * i + group / 2 for i in range(len(labels))]
    body = []
    for i in range(len(labels)):
        start = LEFT + group * i + group * 0.1
        for n, s in enumerate(series, start=1):
            value = s.values[i]
            height = plot_h * value / top
            if value and height < 1:
                height = 1.0  # a few bounces in a million stay visible
            body.append(f'<rect class="s{n}" x="{start + bar * (n - 1):.1f}" '
                        f'y="{TOP + plot_h - height:.1f}" width="{max(bar - 1, 1):.1f}" '
                        f'height="{height:.1f}"/>')
    return _frame(title, _describe(labels, series), chart_id, body, top, labels, x_of)

"""Matches per day as an inline SVG bar chart (pure): no script, no external file, sized by
its viewBox so it fits a phone's width; colours come from the page's CSS (`currentColor`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from html import escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 600, 160, 32, 20, 8


def per_day(times: Iterable[datetime], first: date, last: date) -> list[tuple[date, int]]:
    """Each day from `first` to `last` (UTC dates) with the number of `times` on it."""
    counts = Counter(t.date() for t in times)
    days = (last - first).days + 1
    return [
        (first + timedelta(days=i), counts.get(first + timedelta(days=i), 0))
        for i in range(max(days, 1))
    ]


def svg(days: list[tuple[date, int]], label: str = "matches per day") -> str:
    """An accessible `<svg>` (role img, a title, one `<title>` per bar for its day and count)."""
    top = max((n for _, n in days), default=0)
    scale = max(top, 1)
    plot_w, plot_h = WIDTH - PAD_LEFT, HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(days), 1)
    bar = max(step * 0.8, 1.0)
    total = sum(n for _, n in days)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}: {total} in {len(days)} days" '
        'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(label)}</title>",
        f'<line class="axis" x1="{PAD_LEFT}" y1="{HEIGHT - PAD_BOTTOM}" x2="{WIDTH}" '
        f'y2="{HEIGHT - PAD_BOTTOM}" stroke="currentColor" stroke-width="1"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 10}" text-anchor="end" font-size="11" '
        f'fill="currentColor">{top}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{HEIGHT - PAD_BOTTOM}" text-anchor="end" font-size="11" '
        'fill="currentColor">0</text>',
    ]
    for i, (day, n) in enumerate(days):
        h = plot_h * n / scale
        x = PAD_LEFT + i * step + (step - bar) / 2
        y = HEIGHT - PAD_BOTTOM - h
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}">'
            f"<title>{day.isoformat()}: {n}</title></rect>"
        )
    if days:
        for i in sorted({0, len(days) - 1}):
            anchor = "start" if i == 0 else "end"
            x = PAD_LEFT if i == 0 else WIDTH
            parts.append(
                f'<text x="{x}" y="{HEIGHT - 4}" text-anchor="{anchor}" font-size="11" '
                f'fill="currentColor">{days[i][0].isoformat()}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)

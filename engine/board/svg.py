"""The burn-down chart as inline SVG, drawn in Python: no JavaScript, no chart library, no build step.

Only numbers and dates go into the markup (never ledger text), so it is safe to embed unescaped.
"""

from __future__ import annotations

import datetime as dt

from markupsafe import Markup

W, H = 680, 260
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 28, 38


def _nice_step(top: int) -> int:
    for step in (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000):
        if top / step <= 6:
            return step
    return max(1, top // 6)


def _month_ticks(start: dt.date, end: dt.date) -> list[dt.date]:
    ticks, day = [], (start.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    while day <= end:
        ticks.append(day)
        day = (day + dt.timedelta(days=32)).replace(day=1)
    stride = max(1, len(ticks) // 8 + (1 if len(ticks) % 8 else 0))  # at most ~8 labels
    return ticks[::stride]


def burndown_svg(points: list[tuple[dt.date, int, int]], *, start: dt.date | None = None,
                 target: dt.date | None = None, today: dt.date | None = None) -> Markup:
    """Open (未完成) and done (已整改完成) issues over time, with the ideal line to the last deadline.

    ``points`` are (date, open, done) after each change. ``start`` (the feedback date) and
    ``target`` (the latest 整改时限) draw the ideal burn-down from all-open to none-open.
    """
    if not points:
        return Markup('<p class="muted">暂无数据</p>')
    total = max(o + d for _, o, d in points) or 1
    first = min([points[0][0]] + ([start] if start else []))
    last = max([points[-1][0]] + [d for d in (target, today) if d])
    span = max(1, (last - first).days)
    top = total + (_nice_step(total) - total % _nice_step(total)) % _nice_step(total)

    def x(d: dt.date) -> float:
        return LEFT + (W - LEFT - RIGHT) * (d - first).days / span

    def y(n: int) -> float:
        return TOP + (H - TOP - BOTTOM) * (1 - n / top)

    def steps(values: list[int]) -> str:
        """A step line: each value holds until the next change, then drops or rises at once."""
        coords: list[str] = []
        for n, (point, value) in enumerate(zip(points, values, strict=True)):
            if n:
                coords.append(f"{x(point[0]):.1f},{y(values[n - 1]):.1f}")
            coords.append(f"{x(point[0]):.1f},{y(value):.1f}")
        return " ".join(coords)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="burndown" viewBox="0 0 {W} {H}" '
             f'role="img" aria-labelledby="bd-title"><title id="bd-title">整改进度燃尽图：'
             f'未完成 {points[-1][1]} 个，已整改完成 {points[-1][2]} 个</title>',
             f'<rect x="{LEFT}" y="{TOP}" width="{W - LEFT - RIGHT}" height="{H - TOP - BOTTOM}" class="plot"/>']
    step = _nice_step(top)
    for n in range(0, top + 1, step):
        parts.append(f'<line x1="{LEFT}" x2="{W - RIGHT}" y1="{y(n):.1f}" y2="{y(n):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y(n) + 4:.1f}" class="ylabel">{n}</text>')
    for tick in _month_ticks(first, last):
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="grid"/>'
                     f'<text x="{x(tick):.1f}" y="{H - BOTTOM + 16}" class="xlabel">{tick:%Y-%m}</text>')
    if start and target and target > start:
        parts.append(f'<line x1="{x(start):.1f}" y1="{y(total):.1f}" x2="{x(target):.1f}" y2="{y(0):.1f}" '
                     'class="ideal"/>')
    if today and first <= today <= last:
        parts.append(f'<line x1="{x(today):.1f}" x2="{x(today):.1f}" y1="{TOP}" y2="{H - BOTTOM}" class="today"/>'
                     f'<text x="{x(today) - 4:.1f}" y="{TOP - 6}" class="todaylabel">今天</text>')
    parts.append(f'<polyline points="{steps([p[2] for p in points])}" class="done"/>')
    parts.append(f'<polyline points="{steps([p[1] for p in points])}" class="open"/>')
    legend = (("open", "未完成（正在整改）"), ("done", "已整改完成"), ("ideal", "理想进度"))
    for n, (cls, label) in enumerate(legend):
        lx = LEFT + 8 + n * 150
        parts.append(f'<line x1="{lx}" x2="{lx + 22}" y1="{H - 8}" y2="{H - 8}" class="{cls}"/>'
                     f'<text x="{lx + 28}" y="{H - 4}" class="legend">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))

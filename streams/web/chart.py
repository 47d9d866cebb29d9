"""A small demand chart as inline SVG, drawn on the server (no script in the page).

Past daily demand as bars (a day excluded from the forecast, e.g. a stock-out, as a grey
tick), then the forecast as a line over the days to come, on one scale.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape


def demand_chart(
    history: Sequence[float | None],
    forecast: Sequence[float],
    *,
    width: int = 360,
    height: int = 120,
    title: str = "Daily demand and forecast",
) -> Markup:
    days = len(history) + len(forecast)
    if days == 0:
        return Markup("")
    top = max([v for v in history if v is not None] + list(forecast) + [1.0])
    pad, base = 4, height - 14
    step = (width - 2 * pad) / days
    scale = (base - pad) / top
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{pad}" y1="{base}" x2="{width - pad}" y2="{base}"/>',
    ]
    for i, value in enumerate(history):
        x = pad + i * step
        if value is None:
            parts.append(
                f'<rect class="gap" x="{x:.1f}" y="{base - 3}" width="{max(step - 1, 1):.1f}" '
                'height="3"><title>excluded day</title></rect>'
            )
            continue
        h = value * scale
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{base - h:.1f}" width="{max(step - 1, 1):.1f}" '
            f'height="{h:.1f}"><title>{value:g}</title></rect>'
        )
    if forecast:
        start = len(history)
        points = " ".join(
            f"{pad + (start + i + 0.5) * step:.1f},{base - v * scale:.1f}"
            for i, v in enumerate(forecast)
        )
        parts.append(f'<polyline class="forecast" points="{points}"/>')
        x_now = pad + start * step
        parts.append(
            f'<line class="now" x1="{x_now:.1f}" y1="{pad}" x2="{x_now:.1f}" y2="{base}"/>'
        )
    parts.append(f'<text x="{pad}" y="{height - 2}">max {top:g}/day</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value in it is a number or escaped

"""Bar charts as inline SVG, drawn on the server: no script and nothing from a CDN, so the
console works offline and shows its charts to a browser with scripts off."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, MARGIN = 640, 150, 24


def bars(title: str, labels: list[str], values: list[float], unit: str = "") -> Markup:
    """One bar per value, the largest at full height; each bar's label and value in its
    tooltip (``<title>``)."""
    top = max(values, default=0) or 1
    step = (WIDTH - MARGIN) / max(len(values), 1)
    drawn = []
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        height = (HEIGHT - MARGIN) * value / top
        x, y = MARGIN + i * step, HEIGHT - MARGIN / 2 - height
        drawn.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}: {_number(value)}{unit}</title></rect>'
        )
    return Markup(
        f'<figure class="chart"><figcaption>{escape(title)} '
        f'<span class="peak">peak {_number(max(values, default=0))}{unit}</span></figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}">'
        f'<line x1="{MARGIN}" y1="{HEIGHT - MARGIN / 2}" x2="{WIDTH}" '
        f'y2="{HEIGHT - MARGIN / 2}" class="axis"/>{"".join(drawn)}</svg>'
        f'<div class="range"><span>{escape(labels[0] if labels else "")}</span>'
        f"<span>{escape(labels[-1] if labels else '')}</span></div></figure>"
    )


def _number(value: float) -> str:
    if value and abs(value) < 0.01:
        return f"{value:.6f}"
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value % 1 else f"{int(value):,}"

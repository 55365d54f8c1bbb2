"""The report's charts as inline SVG: a grouped bar chart and a line chart,
drawn on one frame (white background, y grid with round ticks, axes, axis
titles, a legend above the plot). Plain strings with every text escaped: no
scripts, no external assets."""
import math
from dataclasses import dataclass
from html import escape
from typing import Callable, List, Optional, Sequence, Tuple

#: (name, one value per category, colour)
BarSeries = Tuple[str, Sequence[float], str]
#: (name, [(x, y)], colour, dash pattern or "")
LineSeries = Tuple[str, Sequence[Tuple[float, float]], str, str]


def round_axis(lo: float, hi: float, n_ticks: int = 5) -> Tuple[float, float, float]:
    """A round (start, end, step) around [lo, hi] with about ``n_ticks`` steps."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / n_ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if raw <= m * power)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def fmt(x: float) -> str:
    """A value on a chart: up to 4 decimals below 1, up to 2 from 1 on."""
    return f"{x:.4f}".rstrip("0").rstrip(".") if abs(x) < 1 else f"{x:.2f}".rstrip("0").rstrip(".")


@dataclass
class Frame:
    """A chart's box, the margins around its plot area, and what the axes
    span: ``x_range`` (start, end) and ``y_axis`` (start, end, tick step)."""

    width: int
    height: int
    margins: Tuple[int, int, int, int]  # left, right, top, bottom
    x_range: Tuple[float, float]
    y_axis: Tuple[float, float, float]

    @property
    def left(self) -> int:
        return self.margins[0]

    @property
    def top(self) -> int:
        return self.margins[2]

    @property
    def plot_w(self) -> int:
        return self.width - self.margins[0] - self.margins[1]

    @property
    def plot_h(self) -> int:
        return self.height - self.margins[2] - self.margins[3]

    @property
    def base(self) -> int:
        """The y of the x axis."""
        return self.top + self.plot_h

    def px(self, x: float) -> float:
        x0, x1 = self.x_range
        return self.left + self.plot_w * (x - x0) / (x1 - x0)

    def py(self, y: float) -> float:
        y0, y1, _ = self.y_axis
        return self.top + self.plot_h - self.plot_h * (y - y0) / (y1 - y0)


def bar_chart_svg(
    categories: Sequence[str],
    series: Sequence[BarSeries],
    *,
    title: str,
    x_label: str,
    y_label: str,
    value_suffix: str = "%",
    width: int = 560,
    height: int = 320,
) -> str:
    """A grouped bar chart, the y axis from 0: a group of bars per category,
    a bar per series."""
    max_value = max([v for _, values, _ in series for v in values] + [0.0])
    y_axis = round_axis(0.0, max_value) if max_value > 0 else (0.0, 1.0, 1.0)
    n_cat = max(len(categories), 1)
    frame = Frame(width, height, (50, 8, 40, 50), (0.0, float(n_cat)), y_axis)
    bar = 0.8 / max(len(series), 1)  # the width of a bar, in categories
    bar_px = frame.plot_w / n_cat * bar
    body = []
    for s, (name, values, color) in enumerate(series):
        for c, value in enumerate(values):
            top_y = frame.py(value)
            body.append(
                f'<rect x="{frame.px(c + 0.1 + s * bar):.1f}" y="{top_y:.1f}" width="{max(bar_px - 1, 1):.1f}" '
                f'height="{frame.base - top_y:.1f}" fill="{color}" stroke="#333333" stroke-width="0.5">'
                f"<title>{escape(name)}, {escape(str(categories[c]))}: {fmt(value)}{escape(value_suffix)}</title></rect>"
            )
    label_every = max(1, math.ceil(n_cat / 21))
    for c, cat in enumerate(categories):
        if c % label_every == 0:
            body.append(f'<text x="{frame.px(c + 0.5):.1f}" y="{frame.base + 16}" text-anchor="middle" fill="#333" '
                        f'font-size="11">{escape(str(cat))}</text>')
    legend = _legend(frame, [(name, _box_swatch(color)) for name, _, color in series], swatch_w=14)
    return _chart(frame, title, x_label, y_label, body, legend)


def line_chart_svg(
    series: Sequence[LineSeries],
    *,
    title: str,
    x_label: str,
    y_label: str,
    mark_x: Optional[float] = None,
    mark_label: str = "best",
    width: int = 560,
    height: int = 300,
) -> str:
    """A line chart with a marker per point; ``mark_x``: a dashed vertical
    line (e.g. the best evaluation)."""
    xs = [x for _, pts, _, _ in series for x, _ in pts]
    ys = [y for _, pts, _, _ in series for _, y in pts]
    x0, x1, x_step = round_axis(min(xs, default=0.0), max(xs, default=1.0))
    y_axis = round_axis(min(ys, default=0.0), max(ys, default=1.0))
    frame = Frame(width, height, (58, 28, 40, 50), (x0, x1), y_axis)
    body = []
    for t in range(int(round((x1 - x0) / x_step)) + 1):
        value = x0 + t * x_step
        body.append(f'<text x="{frame.px(value):.1f}" y="{frame.base + 16}" text-anchor="middle" fill="#333" '
                    f'font-size="11">{fmt(value)}</text>')
    if mark_x is not None:
        mx = frame.px(mark_x)
        body.append(f'<line x1="{mx:.1f}" y1="{frame.top}" x2="{mx:.1f}" y2="{frame.base}" '
                    f'stroke="#555" stroke-dasharray="4 3"><title>{escape(mark_label)}</title></line>')
        near_right = mx > frame.left + 0.8 * frame.plot_w  # put the label on the left of the line
        anchor = f'x="{mx - 4:.1f}" text-anchor="end"' if near_right else f'x="{mx + 4:.1f}"'
        body.append(f'<text {anchor} y="{frame.top + 12}" fill="#555" font-size="11">{escape(mark_label)}</text>')
    for name, pts, color, dash in series:
        if not pts:
            continue
        coords = " ".join(f"{frame.px(x):.1f},{frame.py(y):.1f}" for x, y in pts)
        body.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{_dash(dash)}/>')
        for x, y in pts:
            body.append(f'<circle cx="{frame.px(x):.1f}" cy="{frame.py(y):.1f}" r="3" fill="{color}">'
                        f"<title>{escape(name)}, step {fmt(x)}: {fmt(y)}</title></circle>")
    legend = _legend(frame, [(name, _line_swatch(color, dash)) for name, _, color, dash in series], swatch_w=22)
    return _chart(frame, title, x_label, y_label, body, legend)


def _chart(frame: Frame, title: str, x_label: str, y_label: str, body: List[str], legend: List[str]) -> str:
    """The SVG element: background, y grid and ticks, ``body``, axes, axis
    titles, ``legend``."""
    y0, y1, step = frame.y_axis
    right = frame.left + frame.plot_w
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {frame.width} {frame.height}" role="img" '
        f'aria-label="{escape(title)}" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{frame.width}" height="{frame.height}" fill="#ffffff"/>',
    ]
    for t in range(int(round((y1 - y0) / step)) + 1):
        y = frame.py(y0 + t * step)
        out.append(f'<line x1="{frame.left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}" stroke="#e1e4e8"/>')
        out.append(f'<text x="{frame.left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#333" font-size="12">'
                   f"{fmt(y0 + t * step)}</text>")
    out.extend(body)
    out.append(f'<line x1="{frame.left}" y1="{frame.base}" x2="{right}" y2="{frame.base}" stroke="#333"/>')
    out.append(f'<line x1="{frame.left}" y1="{frame.top}" x2="{frame.left}" y2="{frame.base}" stroke="#333"/>')
    out.append(f'<text x="{frame.left + frame.plot_w / 2:.1f}" y="{frame.height - 10}" text-anchor="middle" '
               f'fill="#1a1a1a">{escape(x_label)}</text>')
    out.append(f'<text transform="translate(14 {frame.top + frame.plot_h / 2:.1f}) rotate(-90)" '
               f'text-anchor="middle" fill="#1a1a1a">{escape(y_label)}</text>')
    out.extend(legend)
    out.append("</svg>")
    return "".join(out)


def _legend(frame: Frame, items: Sequence[Tuple[str, Callable[[float], str]]], swatch_w: int) -> List[str]:
    """A row of (swatch, name) above the plot, from its left edge."""
    out = []
    x = frame.left
    for name, swatch in items:
        out.append(swatch(x))
        out.append(f'<text x="{x + swatch_w + 6}" y="24" fill="#1a1a1a">{escape(name)}</text>')
        x += swatch_w + 6 + 7.5 * len(name) + 20
    return out


def _box_swatch(color: str) -> Callable[[float], str]:
    return lambda x: f'<rect x="{x}" y="12" width="14" height="14" fill="{color}" stroke="#333333" stroke-width="0.5"/>'


def _line_swatch(color: str, dash: str) -> Callable[[float], str]:
    return lambda x: f'<line x1="{x}" y1="19" x2="{x + 22}" y2="19" stroke="{color}" stroke-width="2"{_dash(dash)}/>'


def _dash(pattern: str) -> str:
    return f' stroke-dasharray="{pattern}"' if pattern else ""

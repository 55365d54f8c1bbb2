"""The training curve of the evaluation report: loss and dev ROUGE per
evaluation step, read from the log that the training run wrote.

Two logs are read, one JSON object a line:

- ``spacy train`` with spaCy's ``spacy.ConsoleLogger.v3`` and its
  ``output_file`` set (the configs in ``configs/`` use that logger, so
  ``--training.logger.output_file training/train_log.jsonl`` turns it on; it also
  works inside ``spacy.ChainLogger.v1`` next to the MLflow or W&B logger). A line
  per evaluation: ``step``, ``losses`` (per component, summed over the steps
  since the previous evaluation), ``scores`` (the score keys that have a weight
  in ``[training.score_weights]``, times 100) and ``score`` (0-1).
- ``python -m spacy_bertsum train-head`` and ``finetune``: ``OUTPUT/log.jsonl``,
  a line per evaluation with ``step``, ``kind``, ``loss`` (mean per step since
  the previous evaluation), ``score`` and ``all`` (``rouge1``, ``rouge2``,
  ``rougeLsum``). Rows of another kind than ``"step"`` (weight averages) are
  left out.

The curve shows the mean loss per training step (spaCy's sums divided by the
steps they cover) and the three dev ROUGE F1 scores, and marks the best
evaluation (the one ``model-best`` is saved from).
"""
import json
import math
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import Errors

ROUGE_LINES = (("rouge1", "ROUGE-1", "#2166ac", ""), ("rouge2", "ROUGE-2", "#e08214", "6 3"),
               ("rougeLsum", "ROUGE-Lsum", "#1b7837", "2 3"))
LOSS_COLOR = "#1a1a1a"
SPACY_LOG, HEAD_LOG = "spacy train", "train-head"


@dataclass
class CurvePoint:
    step: int
    loss: Optional[float]  # mean per training step
    rouge: Dict[str, float]  # ROUGE_LINES key -> F1 (0-100)
    score: float  # what model-best is chosen by (0-100)


@dataclass
class TrainingCurve:
    path: str
    source: str  # SPACY_LOG or HEAD_LOG
    points: List[CurvePoint] = field(default_factory=list)

    @property
    def best(self) -> Optional[CurvePoint]:
        """The first evaluation with the highest score (spaCy keeps the earliest)."""
        return max(self.points, key=lambda p: p.score) if self.points else None


def _rouge_from_scores(scores: Dict[str, float]) -> Dict[str, float]:
    """spaCy score keys (``bertsum_rouge1_f``, any spans-key prefix) -> ROUGE_LINES keys."""
    out = {}
    for name, _, _, _ in ROUGE_LINES:
        for key, value in scores.items():
            if re.fullmatch(rf"(.*_)?{name}_f", key) and isinstance(value, (int, float)):
                out[name] = float(value)
                break
    return out


def read_training_log(path: Union[str, Path]) -> TrainingCurve:
    """The evaluations in a training log (see the module docstring for the two
    formats), in file order."""
    path = Path(path)
    curve = TrainingCurve(str(path), SPACY_LOG)
    previous_step = -1
    with path.open(encoding="utf8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(Errors.E071.format(path=path, line=line_no, err=err)) from None
            if not isinstance(row, dict) or not isinstance(row.get("step"), int):
                continue
            step = row["step"]
            if isinstance(row.get("losses"), dict) and isinstance(row.get("scores"), dict):
                losses = [float(v) for v in row["losses"].values() if isinstance(v, (int, float))]
                n_steps = max(step - previous_step, 1)
                loss = sum(losses) / n_steps if losses else None
                rouge = _rouge_from_scores(row["scores"])
                curve.points.append(CurvePoint(step, loss, rouge, 100 * float(row.get("score") or 0.0)))
                previous_step = step
            elif isinstance(row.get("all"), dict) and row.get("kind", "step") == "step":
                curve.source = HEAD_LOG
                rouge = {n: float(row["all"][n]) for n, _, _, _ in ROUGE_LINES if n in row["all"]}
                loss = row.get("loss")
                curve.points.append(CurvePoint(step, None if loss is None else float(loss), rouge,
                                               float(row.get("score") or 0.0)))
    if not curve.points:
        raise ValueError(Errors.E070.format(path=path))
    return curve


# -- drawing -----------------------------------------------------------------


def _axis(lo: float, hi: float, n_ticks: int = 5) -> Tuple[float, float, float]:
    """A round (start, end, step) around [lo, hi] with about ``n_ticks`` steps."""
    if hi <= lo:
        lo, hi = lo - 1, hi + 1
    raw = (hi - lo) / n_ticks
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if raw <= m * power)
    return math.floor(lo / step) * step, math.ceil(hi / step) * step, step


def _fmt(x: float) -> str:
    return f"{x:.4f}".rstrip("0").rstrip(".") if abs(x) < 1 else f"{x:.2f}".rstrip("0").rstrip(".")


def line_chart_svg(
    series: Sequence[Tuple[str, Sequence[Tuple[float, float]], str, str]],
    *,
    title: str,
    x_label: str,
    y_label: str,
    mark_x: Optional[float] = None,
    mark_label: str = "best",
    width: int = 560,
    height: int = 300,
) -> str:
    """A line chart as inline SVG. ``series``: (name, [(x, y)], colour, dash
    pattern or ""); ``mark_x``: a dashed vertical line (the best evaluation)."""
    left, right, top, bottom = 58, 28, 40, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for _, pts, _, _ in series for x, _ in pts]
    ys = [y for _, pts, _, _ in series for _, y in pts]
    x0, x1, x_step = _axis(min(xs, default=0.0), max(xs, default=1.0))
    y0, y1, y_step = _axis(min(ys, default=0.0), max(ys, default=1.0))

    def px(x: float) -> float:
        return left + plot_w * (x - x0) / (x1 - x0)

    def py(y: float) -> float:
        return top + plot_h - plot_h * (y - y0) / (y1 - y0)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" font-size="13">',
        f"<title>{escape(title)}</title>",
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for t in range(int(round((y1 - y0) / y_step)) + 1):
        value = y0 + t * y_step
        out.append(f'<line x1="{left}" y1="{py(value):.1f}" x2="{left + plot_w}" y2="{py(value):.1f}" stroke="#e1e4e8"/>')
        out.append(f'<text x="{left - 6}" y="{py(value) + 4:.1f}" text-anchor="end" fill="#333" font-size="12">'
                   f"{_fmt(value)}</text>")
    for t in range(int(round((x1 - x0) / x_step)) + 1):
        value = x0 + t * x_step
        out.append(f'<text x="{px(value):.1f}" y="{top + plot_h + 16}" text-anchor="middle" fill="#333" '
                   f'font-size="11">{_fmt(value)}</text>')
    if mark_x is not None:
        out.append(f'<line x1="{px(mark_x):.1f}" y1="{top}" x2="{px(mark_x):.1f}" y2="{top + plot_h}" '
                   f'stroke="#555" stroke-dasharray="4 3"><title>{escape(mark_label)}</title></line>')
        near_right = px(mark_x) > left + 0.8 * plot_w  # put the label on the left of the line
        anchor = f'x="{px(mark_x) - 4:.1f}" text-anchor="end"' if near_right else f'x="{px(mark_x) + 4:.1f}"'
        out.append(f'<text {anchor} y="{top + 12}" fill="#555" font-size="11">{escape(mark_label)}</text>')
    for name, pts, color, dash in series:
        if not pts:
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" stroke-width="2"{dash_attr}/>')
        for x, y in pts:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}">'
                       f"<title>{escape(name)}, step {_fmt(x)}: {_fmt(y)}</title></circle>")
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#333"/>')
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#333"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 10}" text-anchor="middle" fill="#1a1a1a">'
               f"{escape(x_label)}</text>")
    out.append(f'<text transform="translate(14 {top + plot_h / 2:.1f}) rotate(-90)" text-anchor="middle" '
               f'fill="#1a1a1a">{escape(y_label)}</text>')
    lx = left
    for name, _, color, dash in series:
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{lx}" y1="19" x2="{lx + 22}" y2="19" stroke="{color}" stroke-width="2"{dash_attr}/>')
        out.append(f'<text x="{lx + 28}" y="24" fill="#1a1a1a">{escape(name)}</text>')
        lx += 28 + 7.5 * len(name) + 20
    out.append("</svg>")
    return "".join(out)


def curve_html(curve: TrainingCurve) -> str:
    """Two charts (mean loss per step, dev ROUGE) and the numbers of one log."""
    best = curve.best
    mark = best.step if best is not None else None
    loss_pts = [(p.step, p.loss) for p in curve.points if p.loss is not None]
    parts = [f'<h3>{escape(Path(curve.path).name)} <span class="meta">({escape(curve.source)}: '
             f"{escape(curve.path)})</span></h3>"]
    if loss_pts:
        svg = line_chart_svg([("training loss", loss_pts, LOSS_COLOR, "")], title="Training loss",
                             x_label="training step", y_label="mean loss per step", mark_x=mark)
        parts.append(f'<div class="chart">{svg}</div>')
    rouge_series = [(label, [(p.step, p.rouge[name]) for p in curve.points if name in p.rouge], color, dash)
                    for name, label, color, dash in ROUGE_LINES]
    rouge_series = [s for s in rouge_series if s[1]]
    if rouge_series:
        svg = line_chart_svg(rouge_series, title="Dev ROUGE", x_label="training step",
                             y_label="dev ROUGE F1 (0-100)", mark_x=mark)
        parts.append(f'<div class="chart">{svg}</div>')
    head = "".join(f"<th>{label}</th>" for _, label, _, _ in ROUGE_LINES)
    rows = []
    for p in curve.points:
        cells = "".join(f"<td>{p.rouge[n]:.2f}</td>" if n in p.rouge else "<td></td>" for n, _, _, _ in ROUGE_LINES)
        loss = "" if p.loss is None else f"{p.loss:.4g}"
        is_best = ' data-best="true"' if p is best else ""
        step = f"{p.step} (best)" if p is best else str(p.step)
        rows.append(f"<tr{is_best}><td>{step}</td><td>{loss}</td>{cells}<td>{p.score:.2f}</td></tr>")
    parts.append(
        '<details><summary>Data</summary><div class="scroll"><table class="curve"><thead><tr><th>step</th>'
        f"<th>mean loss per step</th>{head}<th>score</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
        "</div></details>"
    )
    return "\n".join(parts)


def curve_section(curves: Sequence[TrainingCurve]) -> str:
    """The report's training section (empty without logs)."""
    if not curves:
        return ""
    hint = ('<p class="hint">From the training log: the mean training loss per step since the previous '
            "evaluation and the dev ROUGE F1 at each evaluation; the dashed line marks the best evaluation "
            "(the one model-best is saved from).</p>")
    body = "\n".join(curve_html(c) for c in curves)
    return f'<section id="training"><h2>Training curve</h2>\n{hint}\n{body}\n</section>'

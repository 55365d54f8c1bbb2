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
import re
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from ..errors import Errors
from ._svg import line_chart_svg

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

"""An evaluation report as one self-contained HTML file.

``python -m spacy_bertsum report MODEL DATA.spacy --output report.html`` runs the
model on the gold docs (``evaluate.evaluate``) and writes: the ROUGE
table (model, Lead-3, TextRank, oracle), counts, a bar chart of where the selected sentences
are in the documents (model next to oracle: BertSum's lead-bias analysis), a
histogram of summary lengths, the sentence view (``render``) of the first
documents with the gold sentences marked and, with ``--training-log``, the
training curve (loss and dev ROUGE per evaluation step, ``_report_curve``).
Charts are inline SVG (``_svg``): no scripts, no external assets.
"""
import datetime
import math
from html import escape
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import typer
from spacy.language import Language
from spacy.tokens import Doc
from wasabi import msg

from ..render import ID_KEY, page_head, render_docs
from ..scorer import ROUGE_TYPES
from ..util import REFERENCE_KEY, SPANS_KEY
from ._report_curve import TrainingCurve, curve_section, read_training_log
from ._svg import BarSeries, bar_chart_svg, fmt
from ._util import app
from .evaluate import POSITION_BINS, evaluate, load_model_and_gold, print_table, save_text

#: Span group the report copies the gold sentences to, on the predicted docs.
GOLD_KEY = "bertsum_gold"

SYSTEM_NAMES = {"model": "model (bertsum)", "lead3": "Lead-3", "textrank": "TextRank", "oracle": "oracle", "reference": "reference"}
#: Colour-blind safe, and distinct in grayscale print (dark, mid, light).
SERIES_COLORS = {"model": "#2166ac", "oracle": "#e08214", "lead3": "#7fbf7b", "reference": "#d0d0d0"}
ROUGE_NAMES = {"rouge1": "ROUGE-1", "rouge2": "ROUGE-2", "rougeLsum": "ROUGE-Lsum"}

REPORT_CSS = """
body { margin: 0; background: #ffffff; color: #1a1a1a;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; line-height: 1.5; }
.report { max-width: 60rem; margin: 0 auto; padding: 0.75rem; overflow-wrap: anywhere; }
.report h1 { font-size: 1.5rem; margin: 0.5rem 0; }
.report h2 { font-size: 1.2rem; margin: 1.5rem 0 0.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
.report .meta, .report .hint { color: #555; font-size: 0.9rem; }
.report .scroll { overflow-x: auto; }
.report table { border-collapse: collapse; margin: 0.5rem 0; font-variant-numeric: tabular-nums; overflow-wrap: normal; }
.report th, .report td { border: 1px solid #d0d7de; padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }
.report th:first-child, .report td:first-child { text-align: left; white-space: normal; }
.report thead th { background: #f6f8fa; }
.report .chart { overflow-x: auto; }
.report svg { display: block; width: 100%; max-width: 46rem; height: auto; }
.report svg text { font-family: inherit; }
.report .bertsum-render { padding: 0; }
.report details { margin: 0.3rem 0 1rem; font-size: 0.9rem; }
@media (max-width: 30rem) { .report table { font-size: 0.9rem; } .report th, .report td { padding: 0.25rem 0.4rem; } }
"""


def _data_table(categories: Sequence[str], series: Sequence[BarSeries], first: str) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name, _, _ in series)
    rows = []
    for c, cat in enumerate(categories):
        cells = "".join(f"<td>{fmt(values[c])}</td>" for _, values, _ in series)
        rows.append(f"<tr><td>{escape(str(cat))}</td>{cells}</tr>")
    return (
        f'<details><summary>Data</summary><div class="scroll"><table><thead><tr><th>{escape(first)}</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div></details>"
    )


def _shares(counts: Sequence[int]) -> List[float]:
    total = sum(counts)
    return [100.0 * c / total if total else 0.0 for c in counts]


def position_chart(result: Dict) -> str:
    positions = result.get("positions", {})
    systems = [s for s in ("model", "oracle") if s in positions]
    series = [
        (SYSTEM_NAMES[s], _shares([positions[s].get(b, 0) for b in POSITION_BINS]), SERIES_COLORS[s]) for s in systems
    ]
    svg = bar_chart_svg(
        POSITION_BINS,
        series,
        title="Position of the selected sentences in the document",
        x_label="sentence position in the document (0 = first)",
        y_label="share of selected sentences (%)",
    )
    return f'<div class="chart">{svg}</div>' + _data_table(POSITION_BINS, series, "position")


def length_bins(values: Sequence[int], max_bins: int = 12) -> Tuple[List[str], int, int, int]:
    """Bins for summary lengths: (labels, bin width, first bin, number of regular
    bins). Bin ``first + i`` holds lengths ``[(first + i) * width, (first + i + 1) * width)``;
    lengths above the 98th percentile go to a last "N+" bin."""
    if not values:
        return ["0"], 10, 0, 1
    ordered = sorted(values)
    cap = ordered[int(0.98 * (len(ordered) - 1))]
    width = 5
    for w in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000):
        width = w
        if math.ceil((cap + 1) / w) - ordered[0] // w <= max_bins:
            break
    first = ordered[0] // width
    n_regular = max(math.ceil((cap + 1) / width) - first, 1)
    labels = [str((first + i) * width) for i in range(n_regular)]
    if ordered[-1] >= (first + n_regular) * width:
        labels.append(f"{(first + n_regular) * width}+")
    return labels, width, first, n_regular


def length_chart(result: Dict) -> str:
    words = result.get("summary_words", {})
    systems = [s for s in ("model", "oracle", "reference") if s in words]
    labels, width, first, _ = length_bins([v for s in systems for v in words[s]])
    series = []
    for s in systems:
        counts = [0] * len(labels)
        for v in words[s]:
            counts[min(v // width - first, len(labels) - 1)] += 1
        series.append((SYSTEM_NAMES[s], _shares(counts), SERIES_COLORS[s]))
    svg = bar_chart_svg(
        labels,
        series,
        title="Summary length",
        x_label=f"summary length in words (bins of {width}; label = first value)",
        y_label="share of documents (%)",
    )
    means = "".join(
        f"<tr><td>{escape(SYSTEM_NAMES[s])}</td><td>{sum(words[s]) / len(words[s]):.1f}</td>"
        f"<td>{sorted(words[s])[len(words[s]) // 2]}</td></tr>"
        for s in [s for s in ("model", "lead3", "textrank", "oracle", "reference") if s in words]
    )
    table = (
        '<div class="scroll"><table><thead><tr><th>summary</th><th>mean words</th><th>median words</th></tr></thead>'
        f"<tbody>{means}</tbody></table></div>"
    )
    return f'<div class="chart">{svg}</div>' + _data_table(labels, series, "words") + table


def rouge_table(result: Dict) -> str:
    head = "".join(f"<th>{ROUGE_NAMES.get(n, n)}</th>" for n in ROUGE_TYPES)
    rows = []
    for system, scores in result["rouge"].items():
        cells = "".join(f"<td>{scores[n]:.2f}</td>" for n in ROUGE_TYPES)
        rows.append(f'<tr data-system="{escape(system)}"><td>{escape(SYSTEM_NAMES.get(system, system))}</td>{cells}</tr>')
    return (
        f'<div class="scroll"><table class="rouge"><thead><tr><th>system</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def counts_table(result: Dict) -> str:
    rows = [
        ("documents evaluated", result["n_docs"]),
        ("skipped (no reference summary)", result["n_skipped_no_reference"]),
        (f"longer than the encoder's {result['window_wordpieces']}-wordpiece window (scored in full)", result["n_longer_than_window"]),
        ("selected sentences (model)", sum(result.get("positions", {}).get("model", {}).values())),
        ("seconds", result["seconds"]),
        ("documents per second", result["docs_per_second"]),
    ]
    body = "".join(f"<tr><td>{escape(name)}</td><td>{escape(str(value))}</td></tr>" for name, value in rows)
    return f'<div class="scroll"><table class="counts"><tbody>{body}</tbody></table></div>'


def prepare_for_display(gold: Doc, doc: Doc, spans_key: str = SPANS_KEY) -> Doc:
    """Copy the gold sentences (to ``doc.spans[GOLD_KEY]``), the reference summary
    and the id from a gold doc onto the predicted doc with the same text."""
    if spans_key in gold.spans:
        spans = [doc.char_span(s.start_char, s.end_char, alignment_mode="expand") for s in gold.spans[spans_key]]
        doc.spans[GOLD_KEY] = [s for s in spans if s is not None]
    for key in (REFERENCE_KEY, ID_KEY):
        if key in gold.user_data:
            doc.user_data[key] = gold.user_data[key]
    return doc


def build_report(
    nlp: Language,
    gold_docs,
    *,
    html_docs: int = 5,
    pipe_name: str = "bertsum",
    batch_size: int = 32,
    show_progress: bool = True,
    total: Optional[int] = None,
    model_name: str = "",
    data_name: str = "",
    title: str = "spacy-bertsum evaluation report",
    training_curves: Sequence[TrainingCurve] = (),
) -> Tuple[str, Dict]:
    """Evaluate ``nlp`` on ``gold_docs`` and return (report HTML, metrics).
    ``training_curves`` (from ``read_training_log``) add a training section."""
    spans_key = nlp.get_pipe(pipe_name).cfg.get("spans_key", SPANS_KEY)
    kept: List[Tuple[Doc, Doc]] = []

    def keep(gold: Doc, doc: Doc) -> None:
        if len(kept) < html_docs:
            kept.append((gold, doc))

    result = evaluate(
        nlp,
        gold_docs,
        pipe_name=pipe_name,
        batch_size=batch_size,
        show_progress=show_progress,
        total=total,
        on_doc=keep,
    )
    shown = [prepare_for_display(gold, doc, spans_key) for gold, doc in kept]
    n_total = result["n_docs"] + result["n_skipped_no_reference"]
    when = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    meta = [f"generated {when}"]
    if model_name:
        meta.insert(0, f"model: {model_name}")
    if data_name:
        meta.insert(1 if model_name else 0, f"data: {data_name}")
    lead = ""
    if "lead3" in result.get("positions", {}):
        lead = " Lead-3 always takes positions 0, 1 and 2."
    parts = page_head(title, REPORT_CSS) + [
        "<body>",
        '<main class="report">',
        f"<h1>{escape(title)}</h1>",
        f'<p class="meta">{escape(" · ".join(meta))}</p>',
        '<section id="rouge"><h2>ROUGE</h2>',
        rouge_table(result),
        '<p class="hint">F1 (0-100) with rouge-score and stemming; ROUGE-Lsum over sentences. '
        "All rows use the pipeline's sentence splitting and the same documents.</p>",
        "</section>",
        '<section id="counts"><h2>Counts</h2>',
        counts_table(result),
        "</section>",
        '<section id="positions"><h2>Where the selected sentences are</h2>',
        '<p class="hint">Share of each system\'s selected sentences at each sentence position '
        f"(positions from 20 on are lumped together). News summaries lean on the first sentences (lead bias).{lead}</p>",
        position_chart(result),
        "</section>",
        '<section id="lengths"><h2>Summary length</h2>',
        length_chart(result),
        "</section>",
        curve_section(training_curves),
        '<section id="documents"><h2>Documents</h2>',
        '<p class="hint">Sentences shaded by the model\'s score, '
        "the model's selection underlined, the oracle (gold) sentences with a dashed line above.</p>",
        render_docs(shown, n_total, gold_key=GOLD_KEY, spans_key=spans_key) if shown else "",
        "</section>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts), result


def report_path(
    model: Union[str, Path, Language],
    data_path: Union[str, Path],
    output: Union[str, Path],
    *,
    limit: int = 0,
    html_docs: int = 5,
    batch_size: int = 32,
    show_progress: bool = True,
    training_logs: Sequence[Union[str, Path]] = (),
) -> Dict:
    """Load a pipeline and a gold .spacy file, write the report to ``output``;
    with the training curve of each of ``training_logs`` (read first, so that
    a log the report cannot read fails before the evaluation)."""
    curves = [read_training_log(path) for path in training_logs]
    nlp, docs, total = load_model_and_gold(model, data_path, limit)
    html, result = build_report(
        nlp,
        docs,
        html_docs=html_docs,
        batch_size=batch_size,
        show_progress=show_progress,
        total=total,
        model_name=str(model) if not isinstance(model, Language) else "<in-memory>",
        data_name=str(data_path),
        training_curves=curves,
    )
    print_table(result)
    save_text(output, html, "the report")
    return result


# -- command line ------------------------------------------------------------


@app.command("report")
def report_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="Write the HTML report here"),
    limit: int = typer.Option(0, "--limit", min=0, help="Evaluate on the first N docs only (0: all)"),
    html_docs: int = typer.Option(5, "--html-docs", min=0, help="Show the sentence view of the first N docs"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Docs per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
    training_logs: List[Path] = typer.Option(
        [], "--training-log", exists=True, dir_okay=False,
        help="Add the training curve from this log: the JSONL that `spacy train "
        "--training.logger.output_file PATH` writes, or train-head's log.jsonl (repeatable)",
    ),
):
    """One HTML file: ROUGE table, sentence-position and summary-length charts, sentence
    view and, with --training-log, the training curve."""
    from spacy.cli._util import setup_gpu

    setup_gpu(gpu_id)
    try:
        report_path(
            model, data_path, output, limit=limit, html_docs=html_docs, batch_size=batch_size, training_logs=training_logs
        )
    except ValueError as e:
        msg.fail(str(e), exits=1)

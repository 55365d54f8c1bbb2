"""The report's training curve: the two logs it reads (spaCy's ConsoleLogger
output_file, train-head's log.jsonl), the chart, the report section, and
`report --training-log`."""
import io
import json
import re
import xml.etree.ElementTree as ET

import pytest
from spacy.tokens import DocBin
from spacy.util import registry
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli._report_curve import HEAD_LOG, SPACY_LOG, read_training_log
from spacy_bertsum.cli._svg import line_chart_svg
from spacy_bertsum.cli.report import build_report

from .util import make_examples

SVG = "{http://www.w3.org/2000/svg}"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    return path


def spacy_log(nlp, path, evaluations):
    """A log written by spaCy's own ConsoleLogger.v3 (the one configs/*.cfg use)
    from the info dicts `spacy train` passes it: (step, summed loss, R1, R2, RLsum)."""
    setup = registry.loggers.get("spacy.ConsoleLogger.v3")(progress_bar=None, console_output=False, output_file=path)
    log_step, finalize = setup(nlp, io.StringIO(), io.StringIO())
    for step, loss, r1, r2, rl in evaluations:
        log_step(None)  # steps without an evaluation are not written
        scores = {"bertsum_rouge1_f": r1, "bertsum_rouge2_f": r2, "bertsum_rougeLsum_f": rl, "sents_f": 1.0}
        log_step({"epoch": 0, "step": step, "score": (r1 + r2 + rl) / 3, "other_scores": scores,
                  "losses": {"bertsum": loss}, "checkpoints": [], "seconds": 1, "words": 100})
    finalize()
    return path


HEAD_ROWS = [
    {"step": 10, "kind": "step", "loss": 0.7, "score": 30.0, "all": {"rouge1": 35.0, "rouge2": 20.0, "rougeLsum": 35.0}},
    {"step": 20, "kind": "step", "loss": 0.6, "score": 32.0, "all": {"rouge1": 37.0, "rouge2": 22.0, "rougeLsum": 37.0}},
    {"step": 20, "kind": "average", "loss": 0.6, "score": 40.0, "all": {"rouge1": 45.0, "rouge2": 30.0, "rougeLsum": 45.0}},
    {"step": 30, "kind": "step", "loss": 0.5, "score": 32.0, "all": {"rouge1": 36.0, "rouge2": 24.0, "rougeLsum": 36.0}},
]


def test_reads_spacy_console_logger_file(make_nlp, tmp_path):
    path = spacy_log(make_nlp(), tmp_path / "train_log.jsonl",
                     [(0, 3.0, 0.30, 0.10, 0.28), (250, 500.0, 0.36, 0.15, 0.33), (500, 250.0, 0.35, 0.14, 0.32)])
    curve = read_training_log(path)
    assert curve.source == SPACY_LOG
    assert [p.step for p in curve.points] == [0, 250, 500]
    # mean loss per step: spaCy sums it over the steps since the previous evaluation
    assert [p.loss for p in curve.points] == pytest.approx([3.0, 2.0, 1.0])
    assert [p.rouge["rouge1"] for p in curve.points] == pytest.approx([30.0, 36.0, 35.0])
    assert [p.rouge["rougeLsum"] for p in curve.points] == pytest.approx([28.0, 33.0, 32.0])
    assert curve.best.step == 250


def test_reads_prefixed_score_keys_and_train_head_log(tmp_path):
    row = {"epoch": 0, "step": 4, "losses": {"summ": 8.0}, "score": 0.5,
           "scores": {"summ_rouge1_f": 40.0, "summ_rouge2_f": 20.0, "summ_rougeLsum_f": 38.0, "summ_sents_f": 50.0}}
    curve = read_training_log(write_jsonl(tmp_path / "a.jsonl", [row]))
    assert curve.points[0].rouge == {"rouge1": 40.0, "rouge2": 20.0, "rougeLsum": 38.0}
    assert curve.points[0].loss == pytest.approx(8.0 / 5) and curve.points[0].score == pytest.approx(50.0)

    curve = read_training_log(write_jsonl(tmp_path / "log.jsonl", HEAD_ROWS))
    assert curve.source == HEAD_LOG
    assert [p.step for p in curve.points] == [10, 20, 30]  # the weight average left out
    assert [p.loss for p in curve.points] == [0.7, 0.6, 0.5]  # already a mean per step
    assert curve.points[2].rouge["rouge2"] == 24.0
    assert curve.best.step == 20  # the first of equal scores, as training keeps it


def test_unreadable_logs(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"\[E070\]"):
        read_training_log(empty)
    with pytest.raises(ValueError, match=r"\[E070\]"):
        read_training_log(write_jsonl(tmp_path / "other.jsonl", [{"id": 1, "text": "no evaluation"}]))
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(HEAD_ROWS[0]) + "\n{not json\n", encoding="utf8")
    with pytest.raises(ValueError, match=r"\[E071\] Line 2 of"):
        read_training_log(bad)


def test_line_chart():
    svg = line_chart_svg([("a & b", [(0, 1.0), (10, 3.0), (20, 2.0)], "#2166ac", ""),
                          ("c", [(0, 2.0), (20, 2.5)], "#e08214", "6 3")],
                         title="T<", x_label="step", y_label="Y", mark_x=10)
    root = ET.fromstring(svg)
    lines = root.findall(f"{SVG}polyline")
    assert [len(p.get("points").split()) for p in lines] == [3, 2]
    assert lines[1].get("stroke-dasharray") == "6 3"
    xs = [float(pt.split(",")[0]) for pt in lines[0].get("points").split()]
    ys = [float(pt.split(",")[1]) for pt in lines[0].get("points").split()]
    assert xs == sorted(xs) and ys[1] < ys[2] < ys[0]  # higher values are drawn higher
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "a & b" in texts and "best" in texts and "step" in texts
    assert "T&lt;" in svg
    assert ET.fromstring(line_chart_svg([("flat", [(5, 1.0)], "#000", "")], title="t", x_label="x", y_label="y"))


def test_report_section(nlp, tmp_path):
    docs = [eg.reference for eg in make_examples(nlp)]
    curves = [read_training_log(write_jsonl(tmp_path / "log.jsonl", HEAD_ROWS))]
    html, _ = build_report(nlp, docs, html_docs=1, show_progress=False, training_curves=curves)
    section = re.search(r'<section id="training">.*?</section>', html, re.S).group(0)
    assert html.index('id="lengths"') < html.index('id="training"') < html.index('id="documents"')
    assert section.count("<svg") == 2 and html.count("<svg") == 4
    assert "Training loss" in section and "Dev ROUGE" in section
    assert re.search(r'<tr data-best="true"><td>20 \(best\)</td><td>0\.6</td><td>37\.00</td>', section)
    assert section.count("<tr") == 1 + 3  # header + the three evaluations
    html, _ = build_report(nlp, docs, html_docs=1, show_progress=False)
    assert 'id="training"' not in html


def test_report_command_with_training_log(nlp, tmp_path):
    model = tmp_path / "model"
    nlp.to_disk(model)
    gold = tmp_path / "gold.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(nlp)], store_user_data=True).to_disk(gold)
    log = write_jsonl(tmp_path / "log.jsonl", HEAD_ROWS)
    output = tmp_path / "report.html"
    args = ["report", str(model), str(gold), "--output", str(output), "--html-docs", "1"]
    result = CliRunner().invoke(app, args + ["--training-log", str(log), "--training-log", str(log)])
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf8")
    assert html.count("<h3>log.jsonl") == 2 and html.count("<svg") == 6
    # a log the report cannot read fails before the evaluation, with the coded message
    output.unlink()
    other = write_jsonl(tmp_path / "rows.jsonl", [{"id": "1", "article": "text"}])
    result = CliRunner().invoke(app, args + ["--training-log", str(other)])
    assert result.exit_code == 1 and "E070" in result.output
    assert not output.exists()

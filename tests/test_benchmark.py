"""`spacy-bertsum benchmark`: helpers, the stage child, the printed tables,
the orchestration (with the child processes faked) and one tiny end-to-end
run (no assertions on timings)."""
import json

import pytest
import spacy
import srsly
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli import _benchmark_report as report
from spacy_bertsum.cli import benchmark
from spacy_bertsum.cli._benchmark_stages import run_stage_file
from spacy_bertsum.cli.benchmark import long_text, parse_sizes, read_texts, run_benchmark, with_long_doc

from .util import TEXTS, tiny_config


def test_long_text_has_exactly_n_words():
    assert len(long_text(TEXTS, 7).split()) == 7
    assert len(long_text(TEXTS[:1], 200).split()) == 200  # cycles
    assert parse_sizes("1000, 10_000") == [1000, 10000]
    assert parse_sizes("") == []


@pytest.mark.parametrize("value", ["1000,abc", "0", "1000,-5"])
def test_parse_sizes_refuses_bad_counts(value):
    with pytest.raises(ValueError, match=r"\[E043\]"):
        parse_sizes(value)


def test_with_long_doc_puts_it_in_the_middle():
    docs = with_long_doc(TEXTS, 500)
    assert len(docs) == len(TEXTS) + 1
    mid = len(TEXTS) // 2
    assert len(docs[mid].split()) == 500
    assert docs[:mid] == TEXTS[:mid] and docs[mid + 1:] == TEXTS[mid:]


def test_read_texts_cycles_and_refuses_empty_data(tmp_path):
    path = tmp_path / "data.jsonl"
    srsly.write_jsonl(path, [{"article": "One."}, {"article": " "}, {"article": "Two."}])
    assert read_texts(path, 5) == ["One.", "Two.", "One.", "Two.", "One."]
    with pytest.raises(ValueError, match=r"\[E040\]"):
        read_texts(path, 3, field="text")


@pytest.mark.parametrize("args,code", [
    (["--n", "0"], "--n"),
    (["--batch-size", "0"], "--batch-size"),
    (["--threads", "-1"], "--threads"),
    (["--long-in-batch", "-1"], "--long-in-batch"),
])
def test_cli_validates_ranges(args, code):
    result = CliRunner().invoke(app, ["benchmark", "--model", "unused", *args])
    assert result.exit_code == 2
    assert code in result.output


@pytest.mark.parametrize("args,code", [
    (["--model", "x", "--untrained"], "[E041]"),
    (["--model", "x", "--long", "10,ten"], "[E043]"),
])
def test_cli_reports_coded_errors(args, code):
    result = CliRunner().invoke(app, ["benchmark", *args])
    assert result.exit_code == 2
    assert code in result.output


def test_stage_command_is_hidden():
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert " benchmark " in result.output and "benchmark-stage" not in result.output


def test_stage_file_runs_a_stage_and_reports_errors(tmp_path):
    import torch

    threads = torch.get_num_threads()  # the stage sets them for its process: restore
    texts = tmp_path / "texts.jsonl"
    srsly.write_jsonl(texts, [{"id": i, "text": t} for i, t in enumerate(TEXTS)])
    spec = tmp_path / "spec.json"
    result = tmp_path / "result.json"
    srsly.write_json(spec, {"stage": "lead3", "result": str(result), "threads": 1,
                            "options": {"texts": str(texts), "batch_size": 2}})
    try:
        run_stage_file(spec)
    finally:
        torch.set_num_threads(threads)
    figures = srsly.read_json(result)
    assert figures["docs"] == len(TEXTS) and figures["torch_threads"] == 1
    assert figures["seconds"] > 0 and figures["peak_rss_mb"] > 0

    srsly.write_json(spec, {"stage": "nope", "result": str(result), "threads": 1, "options": {}})
    run_stage_file(spec)
    assert "[E046]" in srsly.read_json(result)["error"]


def _fake_children(monkeypatch, calls):
    """Replace the child processes of run_benchmark by recorders with fixed figures."""
    def run_stage(stage, workdir, threads, **options):
        calls.append(("stage", stage, options))
        if stage == "pipeline" and options.get("capture"):
            options["capture"].write_bytes(b"")
        row = {"seconds": 2.0, "docs": 4, "peak_rss_mb": 500.0, "run_peak_rss_mb": 400.0}
        if stage in ("pipeline", "encoder"):
            row.update(wordpieces=1000, padded_wordpieces=1250, encoder_calls=2)
        if stage == "encoder":
            row["seconds"] = 1.0
        if stage == "long":
            row = {"seconds": 1.5, "words": 300, "sentences": 12, "peak_rss_mb": 600.0, "run_peak_rss_mb": None}
        return row

    def run_cli(model, texts_path, workdir, threads, batch_size, n_docs):
        docs = [row["text"] for row in srsly.read_jsonl(texts_path)]
        calls.append(("cli", docs, batch_size))
        assert len(docs) == n_docs
        return {"seconds": 3.0, "docs": n_docs, "rows": n_docs, "peak_rss_mb": 2100.0, "rss_measured_by": "fake"}

    monkeypatch.setattr(benchmark, "_run_stage", run_stage)
    monkeypatch.setattr(benchmark, "_run_cli", run_cli)
    monkeypatch.setattr(benchmark, "_textrank_unavailable", lambda model: "not here")


def test_run_benchmark_rows_tables_and_long_in_batch(monkeypatch, tmp_path):
    data = tmp_path / "data.jsonl"
    srsly.write_jsonl(data, [{"article": t} for t in TEXTS])
    calls = []
    _fake_children(monkeypatch, calls)
    lines = []
    out = tmp_path / "bench.json"
    results = run_benchmark(data=data, n=4, model="m", batch_size=3, threads=1, long_sizes=[300],
                            long_in_batch=100000, output=out, print_fn=lines.append)
    assert json.loads(out.read_text(encoding="utf8")) == results
    assert [c[1] for c in calls if c[0] == "stage"] == ["pipeline", "encoder", "lead3", "long"]
    (normal, in_batch) = [c for c in calls if c[0] == "cli"]
    assert normal[1] == TEXTS and normal[2] == 3
    assert len(in_batch[1]) == 5 and len(in_batch[1][2].split()) == 100000 and in_batch[2] == 3

    rows = results["rows"]
    assert rows["pipeline"]["docs_per_s"] == 2.0 and rows["encoder"]["docs_per_s"] == 4.0
    assert rows["cli"]["wordpieces_per_s"] == pytest.approx(1000 / 3.0)
    assert results["pipeline_over_encoder"] == {"ratio": 0.5, "target": 0.8, "meets_target": False}
    assert results["long_scaling"]["rss_target_mb"] is None  # 300 words: no target
    batch = results["long_in_batch"]
    assert batch["words"] == 100000 and batch["docs"] == 5 and batch["position"] == 2
    assert batch["batch_size"] == 3 and batch["rss_target_mb"] == 2048 and batch["meets_target"] is False

    text = "\n".join(lines)
    # wasabi table: header, divider, then one line per row with its figures in order
    header = next(line for line in text.splitlines() if line.startswith("stage "))
    assert header.split("  ")[0] == "stage" and "wordpieces/s" in header
    (pipeline_line,) = [line for line in text.splitlines() if line.startswith("(b) nlp.pipe, full pipeline")]
    assert pipeline_line.split()[-5:] == ["2.00", "500", "500", "400", "2.00"]  # 1,000 wordpieces / 2 s
    assert "note: (d) PyTextRank: not here" in text
    assert "BELOW" in text
    assert "2,100 MB (target < 2048 MB: OVER)" in text


def test_no_long_skips_both_long_runs(monkeypatch, tmp_path):
    data = tmp_path / "data.jsonl"
    srsly.write_jsonl(data, [{"article": t} for t in TEXTS])
    calls = []
    _fake_children(monkeypatch, calls)
    result = CliRunner().invoke(app, ["benchmark", "--data", str(data), "--n", "2", "--model", "m",
                                      "--no-long", "--output", str(tmp_path / "b.json")])
    assert result.exit_code == 0, result.output
    figures = json.loads((tmp_path / "b.json").read_text(encoding="utf8"))
    assert "long" not in figures and "long_in_batch" not in figures
    assert [c[0] for c in calls].count("cli") == 1
    assert all(c[1] != "long" for c in calls if c[0] == "stage")


def test_print_long_in_batch_reports_errors_and_small_docs():
    lines = []
    report.print_long_in_batch({"words": 500, "position": 1, "docs": 3, "batch_size": 32, "seconds": 1.0,
                                "peak_rss_mb": 700.0, "rss_target_mb": None}, lines.append)
    assert "700 MB" in lines[-1] and "OVER" not in lines[-1] and "within" not in lines[-1]
    report.print_long_in_batch({"words": 100000, "position": 1, "docs": 3, "batch_size": 32,
                                "error": "summarize exited with code 137"}, lines.append)
    assert "code 137" in lines[-1]


@pytest.mark.slow
def test_benchmark_command_runs(tiny_encoder, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("bertsum", config=tiny_config(tiny_encoder))
    nlp.initialize()
    model = tmp_path / "model"
    nlp.to_disk(model)
    out = tmp_path / "bench.json"

    result = CliRunner().invoke(app, [
        "benchmark", "--model", str(model), "--n", "3", "--long", "200", "--long-in-batch", "300",
        "--threads", "1", "--batch-size", "2", "--output", str(out),
    ])
    assert result.exit_code == 0, result.output
    assert "pipeline / encoder docs/s" in result.output
    figures = json.loads(out.read_text(encoding="utf8"))

    assert figures["header"]["docs"] == 3 and figures["header"]["torch_threads"] == 1
    rows = figures["rows"]
    assert set(rows) == {"encoder", "pipeline", "cli", "lead3", "textrank"}
    for name in ("encoder", "pipeline", "cli", "lead3"):
        row = rows[name]
        assert "error" not in row, (name, row)
        assert row["docs"] == 3
        assert row["seconds"] > 0 and row["docs_per_s"] > 0 and row["peak_rss_mb"] > 0, (name, row)
    for name in ("encoder", "pipeline", "lead3"):  # stage children report their torch threads
        assert rows[name]["torch_threads"] == 1
    for name in ("encoder", "pipeline", "cli"):
        assert rows[name]["wordpieces"] > 0 and rows[name]["wordpieces_per_s"] > 0
    assert rows["encoder"]["wordpieces"] == rows["pipeline"]["wordpieces"]
    assert rows["encoder"]["encoder_calls"] >= 2  # batch size 2: two pipeline batches
    textrank = rows["textrank"]
    assert "unavailable" in textrank or textrank.get("docs_per_s", 0) > 0, textrank
    assert figures["pipeline_over_encoder"]["ratio"] > 0
    assert figures["pipeline_over_encoder"]["target"] == 0.8

    (row,) = figures["long"]
    assert "error" not in row, row
    assert row["words"] == 200 and row["sentences"] > 0
    assert row["seconds"] > 0 and row["words_per_s"] > 0 and row["peak_rss_mb"] > 0

    batch = figures["long_in_batch"]
    assert "error" not in batch, batch
    assert batch["words"] == 300 and batch["docs"] == 4 and batch["rows"] == 4 and batch["position"] == 1
    assert batch["peak_rss_mb"] > 0 and batch["rss_target_mb"] is None and batch["meets_target"] is None

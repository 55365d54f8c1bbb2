"""`spacy-bertsum benchmark`: one tiny end-to-end run (no assertions on timings)."""
import pytest
import json

import spacy
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.benchmark import long_text, parse_sizes

from .util import TEXTS, tiny_config


def test_long_text_has_exactly_n_words():
    assert len(long_text(TEXTS, 7).split()) == 7
    assert len(long_text(TEXTS[:1], 200).split()) == 200  # cycles
    assert parse_sizes("1000, 10_000") == [1000, 10000]


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
        "benchmark", "--model", str(model), "--n", "3", "--long", "200", "--threads", "1",
        "--batch-size", "2", "--output", str(out),
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

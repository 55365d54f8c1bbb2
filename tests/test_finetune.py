"""`finetune`: from JSONL files to a fine-tuned, evaluated pipeline."""
import json

import pytest
import spacy
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.finetune import finetune
from spacy_bertsum.util import get_sent_scores

from .util import TEXTS


def _write(path, n, offset=0):
    rows = []
    for i in range(offset, offset + n):
        text = TEXTS[i % len(TEXTS)]
        sents = text.split(". ")
        # The summary is the second sentence: a position the head can learn.
        rows.append(json.dumps({"id": f"r{i}", "article": text, "highlights": [sents[1] + "."]}))
    path.write_text("\n".join(rows) + "\n", encoding="utf8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("top_layers", [0, 1])
def test_finetune_raises_dev_rouge_and_saves(nlp, tmp_path, top_layers, capsys):
    nlp.to_disk(tmp_path / "base")
    train, dev, test = _write(tmp_path / "train.jsonl", 48), _write(tmp_path / "dev.jsonl", 12, 48), _write(tmp_path / "test.jsonl", 8, 60)
    result = finetune(train, dev, tmp_path / "out", base=str(tmp_path / "base"), test_path=test, max_minutes=5,
                      top_layers=top_layers, batch_size=4, learn_rate=0.01, layer_learn_rate=0.001, max_epochs=8)
    assert result["dev"]["all"]["rouge1"] > result["start_dev"]["all"]["rouge1"]
    assert result["sizes"] == {"train": 48, "dev": 12, "test": 8}
    assert "cannot tell a gain" in capsys.readouterr().out  # 12 dev docs: warned
    assert set(result["test"]["rouge"]) >= {"model", "lead3", "oracle"}
    saved = spacy.load(tmp_path / "out" / "model-best")
    assert len(get_sent_scores(saved(TEXTS[0]))) == 5
    # The head gained lexical features, and the saved config says so; the
    # trigram blocking chosen on dev is what the saved pipeline uses.
    pipe = saved.get_pipe("bertsum")
    assert pipe.model.attrs["lexical_features"] is True
    assert saved.config["components"]["bertsum"]["model"]["lexical_features"] is True
    assert pipe.selection.trigram_blocking is result["dev"]["selection"]["trigram_blocking"]
    assert saved.config["components"]["bertsum"]["trigram_blocking"] is pipe.selection.trigram_blocking
    assert (tmp_path / "out" / "finetune.json").exists() and (tmp_path / "out" / "test.json").exists()
    # A second run reuses the cache (the shards are kept).
    shard = next((tmp_path / "out" / "cache" / "train").glob("shard-*.npz"))
    mtime = shard.stat().st_mtime_ns
    finetune(train, dev, tmp_path / "out", base=str(tmp_path / "base"), max_minutes=5, top_layers=top_layers,
             batch_size=4, max_epochs=1)
    assert shard.stat().st_mtime_ns == mtime


def test_finetune_command_errors(nlp, tmp_path):
    nlp.to_disk(tmp_path / "base")
    train, dev = _write(tmp_path / "train.jsonl", 8), _write(tmp_path / "dev.jsonl", 4)
    args = ["finetune", str(train), str(dev), "-o", str(tmp_path / "out"), "--base", str(tmp_path / "base")]
    result = CliRunner().invoke(app, args + ["--text-field", "body"])
    assert result.exit_code == 1 and "E048" in result.output
    result = CliRunner().invoke(app, args + ["--mix-ratio", "0.5"])
    assert result.exit_code == 1 and "E047" in result.output

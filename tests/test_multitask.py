"""Multi-task: ``textcat`` and ``bertsum`` on one shared ``transformer``
(configs/bertsum_textcat.cfg), with the tiny random BERT."""
import json
from pathlib import Path

import pytest
import spacy
import torch
from spacy.cli.project.run import load_project_config
from spacy.tokens import DocBin
from spacy.util import fix_random_seed, load_config, load_model_from_config

from spacy_bertsum.architectures import get_listener
from spacy_bertsum.cli.convert import convert
from spacy_bertsum.util import SPANS_KEY

from .test_listener import LISTENER, listener_nlp, transformer_config
from .util import TEXTS, make_examples, tiny_config

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "bertsum_textcat.cfg"
LABELS = ["weather", "sport", "science", "politics"]  # one per text of TEXTS

TEXTCAT = {
    "model": {
        "@architectures": "spacy.TextCatReduce.v1",
        "exclusive_classes": True,
        "use_reduce_first": False,
        "use_reduce_last": False,
        "use_reduce_max": False,
        "use_reduce_mean": True,
        "nO": None,
        "tok2vec": dict(LISTENER),
    }
}


def multitask_examples(nlp):
    examples = make_examples(nlp)
    for eg, label in zip(examples, LABELS):
        eg.reference.cats = {value: float(value == label) for value in LABELS}
    return examples


def test_shared_transformer_trains_both(tiny_encoder):
    fix_random_seed(0)
    nlp = listener_nlp(tiny_encoder)
    nlp.add_pipe("textcat", config=TEXTCAT)
    examples = multitask_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    assert nlp.get_pipe("textcat").labels == tuple(LABELS)
    hf_model = nlp.get_pipe("transformer").model.transformer
    before = {name: p.detach().clone() for name, p in hf_model.named_parameters()}
    history = []
    for _ in range(20):
        history.append(nlp.update(examples, sgd=optimizer, drop=0.0))
    # bertsum is the first listener: its gradient is accumulated (the
    # transformer's "loss" is the squared norm of what it received) and
    # textcat, the last one, runs the transformer's backprop.
    assert all(losses["transformer"] > 0 for losses in history)
    assert history[-1]["bertsum"] < 0.5 * history[0]["bertsum"]
    assert history[-1]["textcat"] < history[0]["textcat"]
    assert any(not torch.equal(p, before[name]) for name, p in hf_model.named_parameters())
    doc = nlp(TEXTS[0])
    assert set(doc.cats) == set(LABELS) and sum(doc.cats.values()) == pytest.approx(1.0, abs=1e-4)
    assert len(doc._.sent_scores) == 5


def test_both_tasks_get_gradients_into_the_transformer(tiny_encoder):
    """Each task alone changes the shared weights, differently.
    (Each alone in its own pipeline: a listening component that is disabled
    during nlp.update still counts as a listener of the transformer.)"""
    changes = {}
    for task in ("bertsum", "textcat"):
        fix_random_seed(0)
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("transformer", config=transformer_config(tiny_encoder))
        if task == "bertsum":
            config = tiny_config(tiny_encoder)
            config["model"]["encoder"] = dict(LISTENER)
            nlp.add_pipe("bertsum", config=config)
        else:
            nlp.add_pipe("textcat", config=TEXTCAT)
        examples = multitask_examples(nlp)
        optimizer = nlp.initialize(lambda: examples)
        hf_model = nlp.get_pipe("transformer").model.transformer
        before = hf_model.embeddings.word_embeddings.weight.detach().clone()
        # nlp.update applies the transformer's gradients at its own
        # finish_update, which runs before the listeners' backprop: they land
        # one update later.
        for _ in range(2):
            nlp.update(examples, sgd=optimizer)
        changes[task] = hf_model.embeddings.word_embeddings.weight.detach() - before
        assert changes[task].abs().sum() > 0, task
    assert not torch.allclose(changes["bertsum"], changes["textcat"])


def test_round_trip_keeps_both(tiny_encoder, tmp_path):
    fix_random_seed(0)
    nlp = listener_nlp(tiny_encoder)
    nlp.add_pipe("textcat", config=TEXTCAT)
    examples = multitask_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    doc = nlp(TEXTS[3])
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    again = loaded(TEXTS[3])
    assert again._.sent_scores == pytest.approx(doc._.sent_scores, abs=1e-5)
    assert again.cats == pytest.approx(doc.cats, abs=1e-5)
    scores = loaded.evaluate(multitask_examples(loaded))
    assert {"bertsum_rouge1_f", "cats_score", "cats_macro_f"} <= set(scores)


def test_convert_cats_field(tmp_path):
    rows = [
        ("a", "Stocks rose. Banks gained. Oil fell.", "business"),
        ("b", "The team won. Fans cheered. The coach smiled.", "sport"),
        ("c", "No class here. None at all.", None),
        ("d", "A new phone came out. It is fast.", "tech"),
    ]
    rows = [
        {"id": i, "article": text, "highlights": [text.split(". ")[0] + "."], "category": cat} for i, text, cat in rows
    ]
    del rows[2]["category"]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf8")
    stats = convert(path, tmp_path / "out.spacy", cats_field="category", show_progress=False, limit=2)
    assert stats.written == 2
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    # One-hot over every value in the file, also those past the limit.
    assert docs[0].cats == {"business": 1.0, "sport": 0.0, "tech": 0.0}
    assert docs[1].cats == {"business": 0.0, "sport": 1.0, "tech": 0.0}
    assert len(docs[0].spans[SPANS_KEY]) == 1
    stats = convert(path, tmp_path / "all.spacy", cats_field="category", show_progress=False)
    assert stats.written == 3 and stats.skipped == 1 and "missing field 'category'" in stats.errors[0]
    with pytest.raises(ValueError, match="line 3: missing field 'category'"):
        convert(path, tmp_path / "x.spacy", cats_field="category", show_progress=False, on_error="fail")
    # Without cats_field, no cats.
    convert(path, tmp_path / "plain.spacy", show_progress=False)
    assert all(not doc.cats for doc in DocBin().from_disk(tmp_path / "plain.spacy").get_docs(nlp.vocab))


def test_config_builds_the_shared_pipeline():
    config = load_config(CONFIG)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == ["sentencizer", "transformer", "bertsum", "textcat"]
    assert get_listener(nlp.get_pipe("bertsum").model) is not None
    assert nlp.get_pipe("textcat").model.get_ref("tok2vec").get_ref("listener") is not None
    transformer = nlp.get_pipe("transformer")
    assert set(transformer.listening_components) == {"bertsum", "textcat"}
    # The classifier's gradient into the shared encoder is scaled down (at 1.0
    # it cost the summaries 12 ROUGE-1 on BBC News; docs/benchmarks.md).
    assert config["components"]["textcat"]["model"]["tok2vec"]["grad_factor"] < 1.0
    assert config["components"]["bertsum"]["model"]["encoder"]["grad_factor"] == 1.0
    for alone in (["sentencizer", "transformer", "textcat"], ["sentencizer", "transformer", "bertsum"]):
        config = load_config(CONFIG, overrides={"nlp.pipeline": alone})
        nlp = load_model_from_config(config, auto_fill=True, validate=True)
        assert nlp.pipe_names == alone
        assert nlp.get_pipe("transformer").listening_components == [alone[-1]]


def test_project_multitask_workflow():
    project = load_project_config(ROOT)
    steps = project["workflows"]["multitask"]
    commands = {cmd["name"]: cmd for cmd in project["commands"]}
    assert set(steps) <= set(commands)
    scripts = [line for step in steps for line in commands[step]["script"]]
    assert any("configs/bertsum_textcat.cfg" in line and "spacy train" in line for line in scripts)
    assert any("--cats-field category" in line for line in scripts)
    assert any("nlp.pipeline" in line and "textcat" in line for line in scripts)


def test_spacy_train_with_the_committed_config(tiny_encoder, tmp_path):
    """`spacy train configs/bertsum_textcat.cfg` trains the shared pipeline
    (tiny encoder, a few steps) and the saved pipeline predicts both tasks."""
    from spacy.cli.train import train

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc_bin = DocBin(store_user_data=True)
    for eg in multitask_examples(nlp):
        doc_bin.add(eg.reference)
    doc_bin.to_disk(tmp_path / "train.spacy")
    overrides = {
        "paths.train": str(tmp_path / "train.spacy"),
        "paths.dev": str(tmp_path / "train.spacy"),
        "paths.encoder": tiny_encoder,
        "training.max_steps": 6,
        "training.eval_frequency": 3,
        "training.optimizer.learn_rate.total_steps": 6,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "components.transformer.model.get_spans.window": 16,
        "components.transformer.model.get_spans.stride": 12,
        "components.bertsum.model.heads": 2,
        "components.bertsum.model.ff_size": 32,
    }
    train(CONFIG, tmp_path / "out", overrides=overrides)
    loaded = spacy.load(tmp_path / "out" / "model-last")
    assert loaded.pipe_names == ["sentencizer", "transformer", "bertsum", "textcat"]
    doc = loaded(TEXTS[1])
    assert set(doc.cats) == set(LABELS) and len(doc._.sent_scores) == 5
    meta = json.loads((tmp_path / "out" / "model-last" / "meta.json").read_text())
    assert "cats_score" in meta["performance"] and "bertsum_rouge1_f" in meta["performance"]

"""Evaluation table (model / Lead-3 / oracle) and a demo-sized `spacy train` run."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertsum.cli.convert import convert
from spacy_bertsum.cli.evaluate import evaluate, evaluate_path
from spacy_bertsum.scorer import rouge_f

from .util import CPU_CONFIG, TEXTS, make_examples, tiny_training_overrides


@pytest.fixture
def gold_path(nlp, tmp_path):
    doc_bin = DocBin(store_user_data=True)
    for eg in make_examples(nlp, gold_ids=(1, 3)):
        doc_bin.add(eg.reference)
    path = tmp_path / "gold.spacy"
    doc_bin.to_disk(path)
    return path


def _mean(values):
    return 100 * sum(values) / len(values)


def test_baselines_computed_on_the_same_docs(nlp, gold_path, tmp_path):
    out = tmp_path / "metrics.json"
    result = evaluate_path(nlp, gold_path, out, show_progress=False)
    gold_docs = list(DocBin().from_disk(gold_path).get_docs(nlp.vocab))
    references = [[s.text for s in doc.spans["bertsum"]] for doc in gold_docs]
    lead = [rouge_f([s.text.strip() for s in list(doc.sents)[:3]], ref) for doc, ref in zip(gold_docs, references)]
    # The oracle (gold spans) equals the reference here, so it scores 100.
    assert result["rouge"]["oracle"]["rouge1"] == pytest.approx(100.0)
    for name in ("rouge1", "rouge2", "rougeLsum"):
        assert result["rouge"]["lead3"][name] == pytest.approx(_mean([r[name] for r in lead]))
    model = []
    for doc, ref in zip(nlp.pipe(d.text for d in gold_docs), references):
        model.append(rouge_f([s.text.strip() for s in doc._.summary_sents], ref))
    assert result["rouge"]["model"]["rouge1"] == pytest.approx(_mean([r["rouge1"] for r in model]))
    assert result["n_docs"] == len(TEXTS)
    assert result["positions"]["lead3"]["0"] == len(TEXTS)
    saved = json.loads(out.read_text())
    for system, scores in result["rouge"].items():
        assert saved["rouge"][system] == pytest.approx(scores)


def test_docs_longer_than_window_are_counted(nlp, gold_path):
    gold_docs = list(DocBin().from_disk(gold_path).get_docs(nlp.vocab))
    result = evaluate(nlp, gold_docs, window=20, show_progress=False)
    assert result["n_longer_than_window"] == len(gold_docs)
    result = evaluate(nlp, gold_docs, window=10_000, show_progress=False)
    assert result["n_longer_than_window"] == 0


def test_demo_sized_training_improves_rouge(tiny_encoder, tmp_path):
    """`spacy train` with the shipped CPU config (tiny encoder swapped in) on a
    few docs: the trained pipeline beats the untrained one on ROUGE."""
    from spacy.cli.train import train
    from thinc.api import fix_random_seed

    jsonl = tmp_path / "data.jsonl"
    with jsonl.open("w", encoding="utf8") as f:
        for i, text in enumerate(TEXTS):
            sents = [s.strip() + "." for s in text.split(".") if s.strip()]
            f.write(json.dumps({"id": str(i), "article": text, "highlights": [sents[1], sents[3]]}) + "\n")
    corpus = tmp_path / "train.spacy"
    stats = convert(jsonl, corpus, show_progress=False)
    assert stats.written == len(TEXTS)
    overrides = {
        **tiny_training_overrides(tiny_encoder, corpus),
        "components.bertsum.model.dropout": 0.0,
        "training.max_steps": 40,
        "training.eval_frequency": 20,
        "training.dropout": 0.0,
        "training.batcher.size": 4,
        "training.optimizer.learn_rate.warmup_steps": 2,
        "training.optimizer.learn_rate.initial_rate": 0.001,
    }
    fix_random_seed(0)
    train(CPU_CONFIG, tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-best")
    gold_docs = list(DocBin().from_disk(corpus).get_docs(trained.vocab))
    after = evaluate(trained, gold_docs, show_progress=False)["rouge"]["model"]["rouge1"]

    untrained = spacy.util.load_model_from_config(
        spacy.util.load_config(CPU_CONFIG, overrides=overrides, interpolate=True),
        auto_fill=True,
    )
    untrained.initialize()
    before = evaluate(untrained, gold_docs, show_progress=False)["rouge"]["model"]["rouge1"]
    assert after > before + 5
    assert after > 80


def test_paired_differences_late_picks_and_groups(nlp, tmp_path):
    """vs_lead3 is the paired mean difference (with a CI around it), late_share
    counts picks at position 10+, and --by repeats both per field value."""
    from spacy_bertsum.cli.evaluate import LATE_POSITION
    from spacy_bertsum.util import FIELDS_KEY

    long_text = " ".join(f"Sentence number {i} talks about topic {i}." for i in range(14))
    rows = [
        {"id": str(i), "article": text, "highlights": [text.split(". ")[-1]],
         "text_form": "RAW x" if i % 2 else "LOWERCASED y"}
        for i, text in enumerate(TEXTS + [long_text, long_text])
    ]
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf8")
    gold = tmp_path / "gold.spacy"
    convert(src, gold, keep_fields=["text_form"], show_progress=False)
    docs = list(DocBin().from_disk(gold).get_docs(nlp.vocab))
    assert docs[1].user_data[FIELDS_KEY] == {"text_form": "RAW x"}
    result = evaluate(nlp, docs, show_progress=False, by="text_form")
    rouge = result["rouge"]
    for name in ("rouge1", "rouge2", "rougeLsum"):
        diff, low, high = result["vs_lead3"]["model"][name]
        assert diff == pytest.approx(rouge["model"][name] - rouge["lead3"][name], abs=1e-3)
        assert low <= diff <= high
    assert "lead3" not in result["vs_lead3"]
    # The oracle picks the last sentence: on the two 14-sentence docs that is late.
    assert result["late_share"]["lead3"] == 0.0
    assert result["late_share"]["oracle"] == pytest.approx(2 / len(rows), abs=1e-3)
    assert LATE_POSITION == 10
    groups = result["groups"]
    assert set(groups) == {"RAW x", "LOWERCASED y"}
    assert sum(g["n_docs"] for g in groups.values()) == len(rows)
    raw = groups["RAW x"]
    lead_r1 = [rouge_f([s.text.strip() for s in list(d.sents)[:3]], [r["highlights"][0]])["rouge1"]
               for d, r in zip(docs, rows) if r["text_form"] == "RAW x"]
    assert raw["rouge"]["lead3"]["rouge1"] == pytest.approx(_mean(lead_r1))
    # Mean summary lengths in words, overall and per group, references included.
    lead_words = [sum(len(s.text.split()) for s in list(d.sents)[:3]) for d in docs]
    assert result["mean_words"]["lead3"] == pytest.approx(_mean(lead_words) / 100, abs=0.05)
    assert result["mean_words"]["reference"] == pytest.approx(_mean([len(r["highlights"][0].split()) for r in rows]) / 100, abs=0.05)
    raw_idx = [i for i, r in enumerate(rows) if r["text_form"] == "RAW x"]
    assert raw["mean_words"]["lead3"] == pytest.approx(_mean([lead_words[i] for i in raw_idx]) / 100, abs=0.05)
    assert raw["mean_words"]["lead3"] != result["mean_words"]["lead3"]
    # a paired comparison with another run is made per group too
    from spacy_bertsum.cli.evaluate import vs_baseline

    assert set(vs_baseline(result, result)) == {"all", "RAW x", "LOWERCASED y"}


def test_show_strips_terminal_escapes(nlp, tmp_path):
    from typer.testing import CliRunner

    from spacy_bertsum.cli import app

    src = tmp_path / "rows.jsonl"
    text = "The storm \x1b[2J\x1b[31mhit the coast on Monday. Thousands of homes lost power. Schools reopen."
    src.write_text(json.dumps({"id": "1", "article": text, "highlights": ["Homes lost power."]}) + "\n", encoding="utf8")
    gold = tmp_path / "gold.spacy"
    convert(src, gold, show_progress=False)
    nlp.to_disk(tmp_path / "model")
    result = CliRunner().invoke(app, ["show", str(tmp_path / "model"), str(gold)])
    assert result.exit_code == 0, result.output
    assert "\x1b[2J" not in result.stdout and "\x1b[31m" not in result.stdout
    assert "The storm hit the coast" in result.stdout
    result = CliRunner().invoke(app, ["show", str(tmp_path / "model"), str(gold), "--index", "5"])
    assert result.exit_code == 1 and "[E039]" in result.stdout


def test_gold_docs_without_oracle_spans(nlp, gold_path):
    """Docs without oracle spans: the oracle's mean covers the others, and no
    difference is paired across misaligned docs."""
    docs = list(DocBin().from_disk(gold_path).get_docs(nlp.vocab))
    del docs[0].spans["bertsum"]
    for doc in docs:
        doc.user_data["bertsum_fields"] = {"kind": "x"}
    result = evaluate(nlp, docs, show_progress=False, by="kind")
    assert result["n_docs"] == len(docs)
    assert "oracle" in result["rouge"] and "oracle" not in result["vs_lead3"]
    assert "model" in result["vs_lead3"]
    assert "oracle" not in result["groups"]["x"]["rouge"]


def test_spacy_evaluate_and_our_evaluate_agree(nlp, gold_path):
    """`spacy_bertsum evaluate`'s model row is the registered scorer's
    (`spacy evaluate`) per-doc ROUGE: the means agree by construction."""
    from spacy.training import Example

    gold_docs = list(DocBin().from_disk(gold_path).get_docs(nlp.vocab))
    ours = evaluate(nlp, gold_docs, show_progress=False)["rouge"]["model"]
    examples = [Example(nlp.make_doc(doc.text), doc) for doc in gold_docs]
    theirs = nlp.evaluate(examples)
    for name in ("rouge1", "rouge2", "rougeLsum"):
        assert ours[name] == pytest.approx(100 * theirs[f"bertsum_{name}_f"], abs=1e-9)


def test_baseline_gives_the_paired_difference_of_two_pipelines(nlp, gold_path, tmp_path):
    """--baseline: the model's per-doc scores are kept, and a second pipeline
    on the same docs gets its paired difference to the first one's model."""
    from typer.testing import CliRunner

    from spacy_bertsum.cli import app

    first = evaluate_path(nlp, gold_path, tmp_path / "first.json", show_progress=False)
    assert len(first["per_doc"]["model"]["rouge1"]) == first["n_docs"]
    assert _mean(first["per_doc"]["lead3"]["rouge1"]) == pytest.approx(first["rouge"]["lead3"]["rouge1"], abs=1e-3)
    same = evaluate_path(nlp, gold_path, show_progress=False, baseline=tmp_path / "first.json")
    assert same["vs_baseline"]["all"]["rouge1"] == [0.0, 0.0, 0.0]
    pipe = nlp.get_pipe("bertsum")
    pipe.selection = pipe.selection.updated(top_k=1)
    second = evaluate_path(nlp, gold_path, show_progress=False, baseline=tmp_path / "first.json")
    for name in ("rouge1", "rouge2", "rougeLsum"):
        diff, low, high = second["vs_baseline"]["all"][name]
        assert diff == pytest.approx(second["rouge"]["model"][name] - first["rouge"]["model"][name], abs=1e-3)
        assert low <= diff <= high
    assert second["vs_baseline"]["all"]["rouge1"][0] != 0.0
    # other docs, or a JSON without per-doc scores: a clear error, no numbers
    with pytest.raises(ValueError, match="E079"):
        evaluate_path(nlp, gold_path, show_progress=False, limit=2, baseline=tmp_path / "first.json")
    old = json.loads((tmp_path / "first.json").read_text())
    del old["per_doc"]
    (tmp_path / "old.json").write_text(json.dumps(old))
    nlp.to_disk(tmp_path / "model")
    result = CliRunner().invoke(app, ["evaluate", str(tmp_path / "model"), str(gold_path), "--baseline", str(tmp_path / "old.json")])
    assert result.exit_code == 1 and "[E078]" in result.stdout

"""Lexical sentence features (spacy_bertsum.features) and the model option
``lexical_features`` that feeds them to the head."""
import copy
import json
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin

from spacy_bertsum.architectures import get_head_module, make_head_module
from spacy_bertsum.cli.cache_vectors import cache_sentence_vectors, load_cache, read_docs, source_features
from spacy_bertsum.cli.train_head import (
    DevSet,
    TopLayerScorer,
    head_config,
    init_head_from,
    predict,
    save_scorer,
    scorer_vectors,
    top_encoder_layers,
    train_scorer,
)
from spacy_bertsum.features import N_LEXICAL_FEATURES, lexical_features, terms_features, textrank
from spacy_bertsum.inter_sentence import InterSentenceEncoder

from spacy_bertsum.util import get_sent_scores

from .test_head_training import _gold_file as gold_file, _rows as gold_rows
from .util import TEXTS, make_examples


def test_textrank_prefers_the_sentence_that_shares_words_with_the_others():
    terms = [
        ["storm", "coast", "power", "homes"],
        ["storm", "power", "repairs"],
        ["bakery", "bread"],
        ["storm", "coast", "homes", "repairs", "power"],
        ["schools", "thursday"],
    ]
    r = textrank(terms)
    assert r.sum() == pytest.approx(1.0)
    assert int(numpy.argmax(r)) == 3
    # Sentences that share no word with any other get only the teleport share.
    assert r[2] == pytest.approx(r[4]) and r[2] < r[1]


def test_features_of_a_doc():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp(TEXTS[0])
    feats = lexical_features(doc)
    assert feats.shape == (len(list(doc.sents)), N_LEXICAL_FEATURES)
    assert feats.dtype == numpy.float32
    assert numpy.isfinite(feats).all()
    assert feats[:, 0].mean() == pytest.approx(1.0, abs=1e-5)  # n * r averages 1
    assert sorted(feats[:, 2]) == pytest.approx(numpy.linspace(0, 1, len(feats)))  # rank shares
    assert lexical_features(nlp("")).shape == (0, N_LEXICAL_FEATURES)


def test_long_docs_are_ranked_in_blocks():
    terms = [["w%d" % (i % 7), "w%d" % ((i + 1) % 7), "x"] for i in range(10)]
    whole = terms_features(terms, block_size=128)
    blocks = terms_features(terms, block_size=4)
    assert blocks.shape == whole.shape
    # Each block's n * r averages 1 on its own.
    assert blocks[:4, 0].mean() == pytest.approx(1.0, abs=1e-5)
    assert blocks[8:, 0].mean() == pytest.approx(1.0, abs=1e-5)
    # Length features do not depend on the blocks.
    assert numpy.allclose(blocks[:, 3:], whole[:, 3:])


def test_a_head_with_features_starts_from_the_scores_it_gave_without_them():
    torch.manual_seed(0)
    plain = InterSentenceEncoder(8, n_layers=0)
    with_features = InterSentenceEncoder(8, n_layers=0, n_features=N_LEXICAL_FEATURES)
    with_features.load_state_dict(plain.state_dict(), strict=False)
    plain.eval(), with_features.eval()
    X = torch.randn(2, 5, 8)
    F = torch.randn(2, 5, N_LEXICAL_FEATURES)
    M = torch.ones(2, 5, dtype=torch.bool)
    assert torch.allclose(plain(X, M), with_features(torch.cat([X, F], -1), M))


def test_pipeline_with_lexical_features_trains_saves_and_loads(make_nlp, tmp_path):
    nlp = make_nlp(**{"model.lexical_features": True})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    head = get_head_module(nlp.get_pipe("bertsum").model)
    assert head.n_features == N_LEXICAL_FEATURES
    before = head.feature_scorer[2].weight.detach().clone()
    for _ in range(3):
        nlp.update(examples, sgd=optimizer, annotates=["sentencizer"])
    assert not torch.equal(before, head.feature_scorer[2].weight)
    doc = nlp(TEXTS[1])
    scores = doc._.sent_scores
    assert len(scores) == len(list(doc.sents)) and all(numpy.isfinite(scores))
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.get_pipe("bertsum").model.attrs["lexical_features"] is True
    assert loaded(TEXTS[1])._.sent_scores == pytest.approx(scores, abs=1e-5)


def test_cached_features_give_the_pipeline_scores(nlp, tmp_path):
    """A head with lexical features trained on cached layer inputs (as
    `finetune` trains it) scores as the saved pipeline does: the features the
    cache gets from the .spacy docs are those the model computes itself."""
    gold = gold_file(tmp_path, gold_rows(8))
    cache_sentence_vectors(nlp, gold, tmp_path / "cache", layer_inputs=1)
    cache = load_cache(tmp_path / "cache", layer_inputs=True)
    cache = cache.with_features(source_features(read_docs(gold, nlp.vocab), cache.index))
    assert cache.vecs[0].shape[1] == cache.layers[0].vecs.shape[1] + N_LEXICAL_FEATURES
    dev = DevSet(tmp_path / "cache", gold, lexical_features=True, vocab=nlp.vocab)
    cfg = dict(head_config(nlp), lexical_features=True)
    base = get_head_module(nlp.get_pipe("bertsum").model)
    head = make_head_module(cfg, base.width)
    init_head_from(head, base)
    torch.manual_seed(0)
    scorer = TopLayerScorer([copy.deepcopy(x) for x in top_encoder_layers(nlp, 1)], head)
    labels = [x.astype("float32") for x in cache.labels]
    scorer, log = train_scorer(scorer, cache.layers * 4, labels * 4, dev, cache.layers, learn_rate=0.01,
                               layer_learn_rate=0.01, warmup_steps=2, max_steps=20, batch_size=4, eval_frequency=10)
    assert scorer.head.feature_scorer[2].weight.abs().sum() > 0
    save_scorer(nlp, scorer, cfg, tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    assert reloaded.get_pipe("bertsum").model.attrs["lexical_features"] is True
    docs = list(DocBin().from_disk(gold).get_docs(reloaded.vocab))
    for doc, lg in zip(docs, predict(scorer.head, scorer_vectors(scorer, cache.layers))):
        assert numpy.allclose(1 / (1 + numpy.exp(-lg)), get_sent_scores(reloaded(doc.text)), atol=5e-3)


def test_train_head_command_with_lexical_features(nlp, tmp_path):
    from typer.testing import CliRunner

    from spacy_bertsum.cli import app

    gold = gold_file(tmp_path, gold_rows(8))
    dev = tmp_path / "dev.spacy"
    dev.write_bytes(gold.read_bytes())
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "cache")
    args = [
        "train-head", str(Path(__file__).parent.parent / "configs" / "head" / "cnndm.cfg"),
        "--output", str(tmp_path / "out"), "--paths.base", str(tmp_path / "base"),
        "--paths.train_cache", str(tmp_path / "cache"), "--paths.dev_cache", str(tmp_path / "cache"),
        "--paths.dev", str(dev), "--head.lexical_features", "true",
        "--training.max_steps", "10", "--training.eval_frequency", "10", "--training.batch_size", "4",
    ]
    for key, value in head_config(nlp).items():  # the base's head settings, so it can start from them
        if key != "lexical_features":
            args += [f"--head.{key}", json.dumps(value)]
    result = CliRunner().invoke(app, args + ["--training.init_from_base", "true"])
    assert result.exit_code == 0, result.output
    assert spacy.load(tmp_path / "out" / "model-best").get_pipe("bertsum").model.attrs["lexical_features"] is True
    # The features come from the docs the cache was made from (its cache.json names them).
    gold.unlink()
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "E085" in result.output


def test_evaluate_textrank_row_selects_central_sentences(nlp):
    """evaluate's TextRank row: the sentences that share the most words with
    the others, selected by the component's settings (top 1 here)."""
    from spacy_bertsum.cli.evaluate import textrank_spans

    text = ("The storm hit the coast and cut power to homes. A bakery gave away bread. "
            "Power to homes on the coast came back after the storm. Schools reopen on Thursday.")
    doc = nlp(text)
    pipe = nlp.get_pipe("bertsum")
    pipe.selection = pipe.selection.updated(top_k=1)
    spans = textrank_spans(doc, pipe)
    assert len(spans) == 1 and spans[0].text.startswith(("The storm", "Power to homes"))
    # The two central sentences share "power to homes": trigram blocking keeps one.
    pipe.selection = pipe.selection.updated(top_k=2, trigram_blocking=False)
    assert {s.text.split()[0] for s in textrank_spans(doc, pipe)} == {"The", "Power"}
    pipe.selection = pipe.selection.updated(trigram_blocking=True)
    assert len({s.text.split()[0] for s in textrank_spans(doc, pipe)} & {"The", "Power"}) == 1

"""Cached sentence vectors, the head trained on them, the dev split and the
paired bootstrap."""
import copy
import json
from pathlib import Path

import numpy
import pytest
import spacy
import torch
from spacy.tokens import DocBin

from spacy_bertsum.cli.convert import convert
from spacy_bertsum.cli.split_dev import split_dev
from spacy_bertsum.cli.train_head import (
    DevSet,
    TopLayerScorer,
    average_states,
    build_scorer,
    evaluate_head,
    head_config,
    install_head,
    install_layers,
    predict,
    scorer_vectors,
    top_encoder_layers,
    train_head,
    train_scorer,
)
from spacy_bertsum.architectures import get_head_module, get_hf_model, make_head_module
from spacy_bertsum.oracle import soft_labels
from spacy_bertsum.cli.cache_vectors import cache_sentence_vectors, doc_sentence_vectors, load_cache
from spacy_bertsum.cli.compact import save_compact_pipeline
from spacy_bertsum.significance import paired_bootstrap
from spacy_bertsum.util import get_sent_scores

from .util import TEXTS


def test_paired_bootstrap_interval():
    rng = numpy.random.default_rng(1)
    b = rng.normal(40, 10, size=2000)
    a = b + 1.0 + rng.normal(0, 3, size=2000)
    diff, low, high = paired_bootstrap(a, b)
    assert diff == pytest.approx(numpy.mean(a - b))
    assert low < diff < high
    assert low > 0.7 and high < 1.3  # SE = 3 / sqrt(2000) ~ 0.07
    # Pairing matters: the unpaired spread of b alone would be ~0.45.
    assert high - low < 0.5
    same = paired_bootstrap(b, b)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap(numpy.zeros((2, 2)), numpy.zeros((2, 2)))


def test_soft_labels_favour_the_oracle_sentences():
    sents = [
        "The storm hit the coast on Monday.",
        "A bakery gave away bread.",
        "Thousands of homes lost power after the storm.",
        "Schools reopen Thursday.",
    ]
    reference = ["The storm hit the coast and thousands of homes lost power."]
    labels = numpy.asarray(soft_labels(sents, reference))
    assert labels.shape == (4,)
    assert labels[0] > labels[1] and labels[2] > labels[3]
    assert 0.0 <= labels.min() and labels.max() <= 1.0 + 1e-6
    assert not any(soft_labels(sents, []))


def test_soft_labels_of_three_sentence_summaries_rank_the_third():
    sents = [
        "The storm hit the coast and thousands of homes lost power.",
        "A bakery in the next town held its annual festival with music, games and a long parade through the streets.",
        "Power was back on Friday.",
        "Officials met.",
    ]
    reference = ["The storm hit the coast and thousands of homes lost power until Friday."]
    free = numpy.asarray(soft_labels(sents, reference))
    top3 = numpy.asarray(soft_labels(sents, reference, min_sents=3))
    # every labelled summary has three sentences: the labels sum to 3
    assert top3.sum() == pytest.approx(3.0) and free.sum() < 3.0
    assert top3.argmax() == 0
    # the third sentence that costs least (short, on topic) ranks above the long one
    assert top3[2] > top3[1]
    # fewer sentences than min_sents: the whole doc is the one summary
    assert soft_labels(sents[:2], reference, min_sents=3) == pytest.approx([1.0, 1.0])


def _gold_file(tmp_path, rows):
    src = tmp_path / "rows.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf8")
    out = tmp_path / "gold.spacy"
    convert(src, out, keep_fields=["text_form"], show_progress=False)
    return out


def _rows(n):
    rows = []
    for i in range(n):
        text = TEXTS[i % len(TEXTS)]
        sents = text.split(". ")
        rows.append({"id": f"{i:03d}", "article": text, "highlights": [sents[1 + i % 2]],
                     "text_form": "RAW text" if i % 2 else "LOWERCASED text"})
    return rows


def test_split_dev_holds_back_by_id_after_keep_first(tmp_path):
    gold = _gold_file(tmp_path, _rows(20))
    select, hold = tmp_path / "select.spacy", tmp_path / "hold.spacy"
    n_select, n_hold = split_dev(gold, select, hold, n_holdout=3, n_other=4, keep_first=4)
    vocab = spacy.blank("en").vocab
    ids = lambda p: [d.user_data["bertsum_id"] for d in DocBin().from_disk(p).get_docs(vocab)]
    # RAW rows are the odd ids; the last 3 by id (after the first 4 rows) are held back.
    assert ids(hold) == ["015", "017", "019"]
    assert set(ids(select)) == {"001", "003", "005", "007", "009", "011", "013", "000", "002", "004", "006"}
    assert (n_select, n_hold) == (11, 3)
    with pytest.raises(ValueError, match="keep-first"):
        split_dev(gold, select, hold, n_holdout=9, keep_first=4)
    plain = tmp_path / "plain.spacy"
    src = tmp_path / "plain.jsonl"
    src.write_text(json.dumps(_rows(1)[0]) + "\n", encoding="utf8")
    convert(src, plain, show_progress=False)
    with pytest.raises(ValueError, match="--keep-fields text_form"):
        split_dev(plain, select, hold)


def test_cached_vectors_give_the_pipeline_scores(nlp, tmp_path):
    """The head on cached vectors scores exactly as the pipeline does."""
    gold = _gold_file(tmp_path, _rows(6))
    cache = tmp_path / "cache"
    assert cache_sentence_vectors(nlp, gold, cache, shard_size=4) == 6
    loaded = load_cache(cache)
    vecs, labels, index = loaded.vecs, loaded.labels, loaded.index
    assert index == list(range(6)) and len(list(cache.glob("shard-*.npz"))) == 2
    docs = list(DocBin().from_disk(gold).get_docs(nlp.vocab))
    for doc, lab in zip(docs, labels):
        assert lab.tolist() == [1 if s.start in {x.start for x in doc.spans["bertsum"]} else 0 for s in doc.sents]
    # Soft labels: the oracle's sentences get the most weight.
    for lab, soft in zip(labels, loaded.soft):
        assert soft.shape == lab.shape and soft[lab == 1].min() >= soft[lab == 0].max(initial=0.0) - 1e-6
    head = get_head_module(nlp.get_pipe("bertsum").model)
    logits = predict(head, vecs)
    for doc, text, lg in zip(docs, (d.text for d in docs), logits):
        scores = get_sent_scores(nlp(text))
        assert numpy.allclose(1 / (1 + numpy.exp(-lg)), scores, atol=1e-3)
    # A stopped run continues: existing shards are kept, not recomputed.
    first = (cache / "shard-00000.npz").stat().st_mtime_ns
    cache_sentence_vectors(nlp, gold, cache, shard_size=4)
    assert (cache / "shard-00000.npz").stat().st_mtime_ns == first
    # ... but not with another shard size, source or encoder (E033).
    with pytest.raises(ValueError, match=r"\[E033\].*shard_size"):
        cache_sentence_vectors(nlp, gold, cache, shard_size=3)
    assert numpy.allclose(doc_sentence_vectors(nlp, docs[:1])[0], vecs[0], atol=1e-2)
    with torch.no_grad():
        next(get_hf_model(nlp.get_pipe("bertsum").model).parameters()).add_(1.0)
    with pytest.raises(ValueError, match=r"\[E033\].*encoder"):
        cache_sentence_vectors(nlp, gold, cache, shard_size=4)


def test_trained_head_learns_and_saves(nlp, tmp_path):
    """On vectors where the label is a direction in vector space, training
    raises dev ROUGE above the untrained head's, and the saved pipeline with
    the new head (other head settings) loads and scores like it."""
    gold = _gold_file(tmp_path, _rows(8))
    cache = tmp_path / "cache"
    cache_sentence_vectors(nlp, gold, cache)
    dev = DevSet(cache, gold, group_by="text_form")
    assert {d.group for d in dev.docs} == {"RAW", "LOWERCASED"}
    loaded = load_cache(cache)
    vecs, labels = loaded.vecs, loaded.labels
    cfg = dict(head_config(nlp), inter_sentence_layers=0, max_position=4)
    torch.manual_seed(0)
    head = make_head_module(cfg, vecs[0].shape[1])
    before = evaluate_head(head, dev)
    head, log = train_head(head, vecs * 20, [l.astype("float32") for l in labels] * 20, dev,
                           learn_rate=0.01, warmup_steps=5, max_steps=150, batch_size=8,
                           eval_frequency=50, average_last=2)
    after = evaluate_head(head, dev)
    assert after["all"]["rouge1"] > before["all"]["rouge1"]
    assert {e["kind"] for e in log} == {"step", "average"}
    assert set(after) == {"all", "RAW", "LOWERCASED"}
    install_head(nlp, head, cfg)
    save_compact_pipeline(nlp, tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    model = loaded.get_pipe("bertsum").model
    assert model.attrs["inter_sentence_layers"] == 0 and model.attrs["max_position"] == 4
    assert loaded.config["paths"]["train"] is None
    docs = list(DocBin().from_disk(gold).get_docs(nlp.vocab))
    expected = predict(head, vecs)
    for doc, lg in zip(docs, expected):
        scores = get_sent_scores(loaded(doc.text))
        assert numpy.allclose(1 / (1 + numpy.exp(-lg)), scores, atol=2e-3)


def _train_head_cli(tmp_path: Path, *args: str, base: str = "base", out: str = "out"):
    """`python -m spacy_bertsum train-head configs/head/cnndm.cfg` with the
    pipeline tmp_path/base, the output tmp_path/out and ``args``."""
    from typer.testing import CliRunner

    from spacy_bertsum.cli import app

    config = Path(__file__).parent.parent / "configs" / "head" / "cnndm.cfg"
    return CliRunner().invoke(
        app, ["train-head", str(config), "--paths.base", str(tmp_path / base), "--output", str(tmp_path / out), *args])


def test_train_head_command(nlp, tmp_path):
    """`train-head` with the shipped config file and overrides, end to end on
    tiny caches; a head whose settings differ from the base's cannot start
    from the base head (E032)."""
    gold = _gold_file(tmp_path, _rows(8))
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "cache")
    common = [
        "--paths.train_cache", str(tmp_path / "cache"), "--paths.dev_cache", str(tmp_path / "cache"),
        "--paths.dev", str(gold), "--training.max_steps", "20", "--training.eval_frequency", "10",
        "--training.batch_size", "4",
    ]
    result = _train_head_cli(tmp_path, *common)
    assert result.exit_code == 0, result.output
    best = json.loads((tmp_path / "out" / "dev.json").read_text())
    assert best["step"] in (10, 20) and set(best) >= {"all", "RAW", "LOWERCASED", "score"}
    loaded = spacy.load(tmp_path / "out" / "model-best")
    assert loaded.get_pipe("bertsum").model.attrs["inter_sentence_layers"] == 0
    assert get_sent_scores(loaded(TEXTS[0]))
    result = _train_head_cli(tmp_path, *common, "--training.init_from_base", "true")
    assert result.exit_code == 1 and "E032" in result.output
    result = _train_head_cli(tmp_path, *common, "--training.labels", "gold")
    assert result.exit_code == 1 and "E029" in result.output


def test_layer_inputs_rebuild_the_pipeline_vectors(make_nlp, tmp_path):
    """A cache with layer inputs holds the same sentence vectors as a plain
    one, and the top layers run on those inputs give them again."""
    nlp = make_nlp(**{"model.encoder.get_spans.max_tokens": 16})
    nlp.initialize()
    gold = _gold_file(tmp_path, _rows(6))
    cache_sentence_vectors(nlp, gold, tmp_path / "plain", shard_size=4)
    cache_sentence_vectors(nlp, gold, tmp_path / "layers", shard_size=4, layer_inputs=1)
    plain, layers = load_cache(tmp_path / "plain"), load_cache(tmp_path / "layers", layer_inputs=True)
    assert plain.index == layers.index and len(layers.layers) == 6
    # The test texts are cut into several 16-token windows per doc.
    assert max(len(x.wp_lengths) for x in layers.layers) > 1
    for a, b in zip(plain.vecs, layers.vecs):
        assert numpy.allclose(a, b, atol=2e-3)
    for k in (1, 2):
        cache_sentence_vectors(nlp, gold, tmp_path / f"l{k}", layer_inputs=k)
        inputs = load_cache(tmp_path / f"l{k}", layer_inputs=True).layers
        scorer = TopLayerScorer([copy.deepcopy(x) for x in top_encoder_layers(nlp, k)], get_head_module(nlp.get_pipe("bertsum").model))
        for a, b in zip(plain.vecs, scorer_vectors(scorer, inputs)):
            assert numpy.allclose(a, b, atol=2e-3)
    with pytest.raises(ValueError, match=r"\[E034\]"):
        load_cache(tmp_path / "plain", layer_inputs=True)
    with pytest.raises(ValueError, match=r"\[E033\].*layer_inputs"):
        cache_sentence_vectors(nlp, gold, tmp_path / "layers", shard_size=4, layer_inputs=2)


def test_trained_top_layers_are_saved_with_the_pipeline(nlp, tmp_path):
    """Training the top layer with the head changes the layer, and the saved
    pipeline gives the trained scorer's vectors and scores."""
    gold = _gold_file(tmp_path, _rows(8))
    cache_sentence_vectors(nlp, gold, tmp_path / "cache", layer_inputs=1)
    dev = DevSet(tmp_path / "cache", gold)
    loaded = load_cache(tmp_path / "cache", layer_inputs=True)
    cfg = dict(head_config(nlp), inter_sentence_layers=0)
    torch.manual_seed(0)
    before = [copy.deepcopy(x) for x in top_encoder_layers(nlp, 1)]
    scorer = TopLayerScorer([copy.deepcopy(x) for x in before], make_head_module(cfg, loaded.vecs[0].shape[1]))
    labels = [x.astype("float32") for x in loaded.labels]
    scorer, log = train_scorer(scorer, loaded.layers * 4, labels * 4, dev, loaded.layers, learn_rate=0.01,
                               layer_learn_rate=0.01, warmup_steps=2, max_steps=20, batch_size=4, eval_frequency=10)
    assert [e["step"] for e in log] == [10, 20]
    old, new = before[0].state_dict(), scorer.layers[0].state_dict()
    assert any(not torch.equal(old[k], new[k]) for k in old)
    install_layers(nlp, scorer.layers)
    install_head(nlp, scorer.head, cfg)
    save_compact_pipeline(nlp, tmp_path / "model")
    reloaded = spacy.load(tmp_path / "model")
    docs = list(DocBin().from_disk(gold).get_docs(reloaded.vocab))
    expected_vecs = scorer_vectors(scorer, loaded.layers)
    for got, want in zip(doc_sentence_vectors(reloaded, docs), expected_vecs):
        assert numpy.allclose(got, want, atol=1e-2)  # float16 weights in the compact save
    for doc, lg in zip(docs, predict(scorer.head, expected_vecs)):
        assert numpy.allclose(1 / (1 + numpy.exp(-lg)), get_sent_scores(reloaded(doc.text)), atol=5e-3)


def test_train_head_command_checks_caches_and_layers(make_nlp, tmp_path):
    """`train-head` refuses a cache made by another encoder (E035), top layers
    from a cache without layer inputs (E034) or with the inputs of another
    number of layers (E076), more top layers than the base's compact save
    stores (E036) and an attention dropout outside [0, 1) (E077); with a
    layer cache it trains them, and a run continues from its own model-best
    on the same cache."""
    nlp = make_nlp(**{"model.encoder.trainable_layers": 1})
    nlp.initialize()
    gold = _gold_file(tmp_path, _rows(8))
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "plain")
    cache_sentence_vectors(nlp, gold, tmp_path / "layers2", layer_inputs=2)
    cache_sentence_vectors(nlp, gold, tmp_path / "layers", layer_inputs=1)
    common = ["--paths.dev", str(gold), "--training.max_steps", "4", "--training.eval_frequency", "2",
              "--training.batch_size", "4"]
    caches = lambda name: ["--paths.train_cache", str(tmp_path / name), "--paths.dev_cache", str(tmp_path / name)]
    run = lambda *args, base="base", out="out": _train_head_cli(tmp_path, *common, *args, base=base, out=out)
    result = run(*caches("plain"), "--training.top_layers", "1")
    assert result.exit_code == 1 and "E034" in result.output
    result = run(*caches("layers2"), "--training.top_layers", "1")
    assert result.exit_code == 1 and "E076" in result.output
    result = run(*caches("layers2"), "--training.top_layers", "2")
    assert result.exit_code == 1 and "E036" in result.output
    result = run(*caches("layers"), "--training.top_layers", "1", "--training.attention_dropout", "1.5")
    assert result.exit_code == 1 and "E077" in result.output
    result = run(*caches("layers"), "--training.top_layers", "1", "--training.attention_dropout", "0.0")
    assert result.exit_code == 0, result.output
    trained = spacy.load(tmp_path / "out" / "model-best")
    assert get_sent_scores(trained(TEXTS[0]))
    # A cache of the trained pipeline does not belong to the base.
    cache_sentence_vectors(trained, gold, tmp_path / "other")
    result = run(*caches("other"))
    assert result.exit_code == 1 and "E035" in result.output
    # The trained top layer's sentence vectors are not the cache's any more, but
    # its inputs are: a second stage continues from model-best on the same cache.
    result = run(*caches("layers"), base="out/model-best")
    assert result.exit_code == 1 and "E035" in result.output
    result = run(*caches("layers"), "--training.top_layers", "1", "--training.init_from_base", "true",
                 base="out/model-best", out="stage2")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "stage2" / "model-best").exists()


def test_attention_dropout_is_set_on_the_trained_layers(nlp):
    """build_scorer sets the attention dropout of the copied top layers (and
    of no other dropout), leaving the pipeline's own layers as they were."""
    head = get_head_module(nlp.get_pipe("bertsum").model)
    scorer = build_scorer(nlp, head, 2, attention_dropout=0.0)
    attention = [m for layer in scorer.layers for m in layer.modules() if hasattr(m, "dropout_prob")]
    assert len(attention) == 2 and all(m.dropout_prob == 0.0 and m.dropout.p == 0.0 for m in attention)
    others = [m for layer in scorer.layers for m in layer.modules()
              if isinstance(m, torch.nn.Dropout) and all(m is not a.dropout for a in attention)]
    assert others and all(m.p > 0 for m in others)
    own = [m for layer in top_encoder_layers(nlp, 2) for m in layer.modules() if hasattr(m, "dropout_prob")]
    assert all(m.dropout_prob > 0 for m in own)
    unchanged = build_scorer(nlp, head, 2)
    assert all(m.dropout_prob == own[0].dropout_prob for layer in unchanged.layers for m in layer.modules() if hasattr(m, "dropout_prob"))


@pytest.mark.parametrize("kind", ["bce", "softmax"])
def test_a_batch_split_by_windows_gives_the_same_gradient(make_nlp, tmp_path, kind):
    """train_scorer runs a batch of long docs through the top layers in parts
    of at most max_windows windows: the summed part losses over the batch's
    count are the batch's mean loss, so the gradient does not change."""
    from spacy_bertsum.cli.train_head import _loss_count, _loss_sum, _pad, _split_by_windows

    nlp = make_nlp(**{"model.encoder.get_spans.max_tokens": 16})
    nlp.initialize()
    gold = _gold_file(tmp_path, _rows(6))
    cache_sentence_vectors(nlp, gold, tmp_path / "cache", layer_inputs=1)
    loaded = load_cache(tmp_path / "cache", layer_inputs=True)
    scorer = TopLayerScorer([copy.deepcopy(x) for x in top_encoder_layers(nlp, 1)], get_head_module(nlp.get_pipe("bertsum").model))
    scorer.eval()  # no dropout: the two passes must see the same function
    idx = list(range(6))
    labels = [x.astype("float32") for x in loaded.labels]
    parts = _split_by_windows(idx, loaded.layers, max_windows=3)
    assert len(parts) > 1 and sorted(i for p in parts for i in p) == idx

    def gradient(groups):
        scorer.zero_grad()
        count = _loss_count([labels[i] for i in idx], 128, kind)
        for part in groups:
            X, M = _pad(scorer.doc_vectors([loaded.layers[i] for i in part]), 128)
            Y = torch.zeros(M.shape)
            for b, i in enumerate(part):
                Y[b, : len(labels[i])] = torch.from_numpy(labels[i])
            (_loss_sum(scorer.head(X, M), Y, M, kind) / count).backward()
        return [p.grad.clone() for p in scorer.parameters() if p.grad is not None]

    whole, split = gradient([idx]), gradient(parts)
    assert len(whole) == len(split) > 0
    for a, b in zip(whole, split):
        assert torch.allclose(a, b, atol=1e-6)


def test_a_spent_time_budget_stops_training_before_the_next_evaluation(nlp, tmp_path):
    """The step that spends the time budget is evaluated and is the last one,
    however far away the next regular evaluation is (a slow first epoch must
    not overrun the budget)."""
    gold = _gold_file(tmp_path, _rows(8))
    cache_sentence_vectors(nlp, gold, tmp_path / "cache")
    dev = DevSet(tmp_path / "cache", gold)
    loaded = load_cache(tmp_path / "cache")
    head = make_head_module(head_config(nlp), loaded.vecs[0].shape[1])
    labels = [x.astype("float32") for x in loaded.labels]
    _, log = train_head(head, loaded.vecs, labels, dev, max_steps=1000, eval_frequency=500, batch_size=4,
                        warmup_steps=1, max_minutes=1e-6)
    assert [entry["step"] for entry in log] == [1]


def _spy_on_train_scorer(monkeypatch):
    """What `train-head` passes to train_scorer: a dict filled when it runs
    (inputs, labels, dev, dev_inputs)."""
    from spacy_bertsum.cli import train_head as train_head_module

    seen = {}
    real = train_head_module.train_scorer

    def spy(scorer, inputs, labels, dev, dev_inputs=None, *args, **kwargs):
        seen.update(inputs=inputs, labels=labels, dev=dev, dev_inputs=dev_inputs)
        return real(scorer, inputs, labels, dev, dev_inputs, *args, **kwargs)

    monkeypatch.setattr(train_head_module, "train_scorer", spy)
    return seen


def test_train_head_with_an_extra_cache_of_one_group(nlp, tmp_path, monkeypatch):
    """[paths] extra_train_cache: its docs of [training] extra_group, each
    extra_repeat times, join the training docs; those of the dev file are
    left out of the dev evaluation (no checkpoint is chosen on them)."""
    from spacy_bertsum.cli import train_head as train_head_module

    gold = _gold_file(tmp_path, _rows(8))  # RAW and LOWERCASED rows in turn
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "cache")
    seen = _spy_on_train_scorer(monkeypatch)
    cache = str(tmp_path / "cache")
    overrides = {
        "paths.base": str(tmp_path / "base"), "paths.train_cache": cache, "paths.dev_cache": cache,
        "paths.dev": str(gold), "paths.extra_train_cache": cache, "training.extra_group": "RAW",
        "training.extra_repeat": 3, "training.max_steps": 10, "training.eval_frequency": 10, "training.batch_size": 4,
    }
    config = Path(__file__).parent.parent / "configs" / "head" / "cnndm.cfg"
    train_head_module.train_head_from_config(config, tmp_path / "out", overrides)
    loaded = load_cache(tmp_path / "cache")
    assert len(seen["inputs"]) == len(seen["labels"]) == 8 + 4 * 3
    for k in range(3):  # the raw docs (odd rows), in order, three times
        for j, i in enumerate((1, 3, 5, 7)):
            assert numpy.array_equal(seen["inputs"][8 + 4 * k + j], loaded.vecs[i])
            assert numpy.allclose(seen["labels"][8 + 4 * k + j], loaded.soft[i])
    assert seen["dev"].index == [0, 2, 4, 6] and {d.group for d in seen["dev"].docs} == {"LOWERCASED"}
    with pytest.raises(ValueError, match="E090"):
        train_head_module.train_head_from_config(config, tmp_path / "out", {**overrides, "training.extra_group": "CASED"})
    with pytest.raises(ValueError, match="E091"):
        train_head_module.train_head_from_config(config, tmp_path / "out", {**overrides, "training.extra_repeat": 0})


def test_train_head_with_an_extra_cache_and_top_layers(make_nlp, tmp_path, monkeypatch):
    """With top layers, the extra docs bring their layer inputs, and the dev
    layer inputs leave out the dev docs trained on, as the dev set does; the
    extra cache, being the dev cache, is not loaded a second time."""
    from spacy_bertsum.cli import train_head as train_head_module

    nlp = make_nlp(**{"model.encoder.trainable_layers": 1})
    nlp.initialize()
    gold = _gold_file(tmp_path, _rows(8))
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "layers", layer_inputs=1)
    seen = _spy_on_train_scorer(monkeypatch)
    from spacy_bertsum.cli import _dev_set

    loads = []
    for module in (train_head_module, _dev_set):
        monkeypatch.setattr(module, "load_cache", lambda path, real=module.load_cache, **kw: loads.append(path) or real(path, **kw))
    cache = str(tmp_path / "layers")
    overrides = {
        "paths.base": str(tmp_path / "base"), "paths.train_cache": cache, "paths.dev_cache": cache,
        "paths.dev": str(gold), "paths.extra_train_cache": cache, "training.extra_group": "RAW",
        "training.extra_repeat": 2, "training.top_layers": 1, "training.max_steps": 4,
        "training.eval_frequency": 4, "training.batch_size": 4,
    }
    config = Path(__file__).parent.parent / "configs" / "head" / "cnndm.cfg"
    train_head_module.train_head_from_config(config, tmp_path / "out", overrides)
    # once as the train cache, once as the dev set (whose raw docs are the extra ones)
    assert len(loads) == 2
    loaded = load_cache(tmp_path / "layers", layer_inputs=True)
    assert len(seen["inputs"]) == len(seen["labels"]) == 8 + 4 * 2
    for k in range(2):
        for j, i in enumerate((1, 3, 5, 7)):
            assert numpy.array_equal(seen["inputs"][8 + 4 * k + j].wp, loaded.layers[i].wp)
    assert seen["dev"].index == [0, 2, 4, 6]
    assert [x.wp.shape for x in seen["dev_inputs"]] == [loaded.layers[i].wp.shape for i in (0, 2, 4, 6)]
    assert all(numpy.array_equal(x.wp, loaded.layers[i].wp) for x, i in zip(seen["dev_inputs"], (0, 2, 4, 6)))
    assert (tmp_path / "out" / "model-best").exists()


def test_train_head_trains_all_layers_through_adapters(make_nlp, tmp_path):
    """With lora_rank, train-head trains more layers than the base's compact
    save stores in full (E036 without it): the layer below them changes by
    a low-rank update, which the saved pipeline keeps as factors and gives
    back; lora_rank without top layers, or below 0, is E094."""
    nlp = make_nlp(**{"model.encoder.trainable_layers": 1})
    nlp.initialize()
    gold = _gold_file(tmp_path, _rows(8))
    nlp.to_disk(tmp_path / "base")
    cache_sentence_vectors(nlp, gold, tmp_path / "layers2", layer_inputs=2)
    cache = str(tmp_path / "layers2")
    run = lambda *args: _train_head_cli(  # noqa: E731
        tmp_path, "--paths.train_cache", cache, "--paths.dev_cache", cache, "--paths.dev", str(gold),
        "--training.max_steps", "6", "--training.eval_frequency", "3", "--training.batch_size", "4",
        "--training.layer_learn_rate", "0.01", "--training.average_last", "0", *args)
    for bad in (["--training.lora_rank", "2"], ["--training.top_layers", "2", "--training.lora_rank", "-1"]):
        result = run(*bad)
        assert result.exit_code == 1 and "E094" in result.output
    # averaging checkpoints would average the adapters' factors, not their updates
    result = run("--training.top_layers", "2", "--training.lora_rank", "2", "--training.average_last", "3")
    assert result.exit_code == 1 and "E089" in result.output
    result = run("--training.top_layers", "2", "--training.lora_rank", "2")
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "out" / "model-best" / "bertsum" / "model"
    assert (model_dir / "lowrank.safetensors").exists()
    trained = spacy.load(tmp_path / "out" / "model-best")
    before, after = (top_encoder_layers(x, 2)[0].state_dict() for x in (nlp, trained))
    changed = [k for k in before if not torch.allclose(before[k], after[k])]
    # the first layer's Linear weights, and nothing else of it
    assert changed and all(k.endswith("weight") and "LayerNorm" not in k for k in changed)
    for k in changed:
        assert torch.linalg.matrix_rank(after[k] - before[k], atol=1e-3) <= 2
    docs = list(DocBin().from_disk(gold).get_docs(trained.vocab))
    scorer = TopLayerScorer([copy.deepcopy(x) for x in top_encoder_layers(trained, 2)],
                            get_head_module(trained.get_pipe("bertsum").model))
    inputs = load_cache(tmp_path / "layers2", layer_inputs=True).layers
    for got, want in zip(doc_sentence_vectors(trained, docs), scorer_vectors(scorer, inputs)):
        assert numpy.allclose(got, want, atol=1e-2)


def test_average_states_weighs_and_checks():
    """average_states: the mean of state dicts, or their weighted average
    (the weights normalized), e.g. an interpolation of two models; weights
    that do not fit are an error."""
    a = {"w": torch.tensor([0.0, 2.0]), "b": torch.tensor(1.0)}
    b = {"w": torch.tensor([4.0, 6.0]), "b": torch.tensor(3.0)}
    assert torch.equal(average_states([a, b])["w"], torch.tensor([2.0, 4.0]))
    mixed = average_states([a, b], [3, 1])
    assert torch.allclose(mixed["w"], torch.tensor([1.0, 3.0])) and torch.isclose(mixed["b"], torch.tensor(1.5))
    assert torch.equal(average_states([a, b], [1.0, 0.0])["w"], a["w"])
    for bad in ([1.0], [-1.0, 2.0], [0.0, 0.0]):
        with pytest.raises(ValueError):
            average_states([a, b], bad)

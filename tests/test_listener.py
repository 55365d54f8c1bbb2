"""Listener mode: ``bertsum`` reads token vectors from an upstream
``transformer`` component (TransformerListener), with the tiny random BERT."""
import numpy as np
import pytest
import spacy
import torch
from spacy.util import fix_random_seed
from thinc.api import Adam

from spacy_bertsum.long_docs import encode_sentences
from spacy_bertsum.architectures import (
    get_encoder_layers,
    get_head_module,
    get_hf_model,
    get_listener,
    get_tokenizer,
)
from spacy_bertsum.compact import save_compact
from spacy_bertsum.quantize import quantize_encoder

from .util import TEXTS, make_examples, tiny_config

LONG = " ".join(TEXTS * 6)  # ~1000 tokens, 120 sentences

LISTENER = {
    "@architectures": "spacy-transformers.TransformerListener.v1",
    "grad_factor": 1.0,
    "pooling": {"@layers": "reduce_mean.v1"},
    "upstream": "*",
}


def transformer_config(encoder_path, get_spans=None):
    get_spans = get_spans or {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 16, "stride": 12}
    return {
        "model": {
            "@architectures": "spacy-transformers.TransformerModel.v3",
            "name": encoder_path,
            "tokenizer_config": {"use_fast": True},
            "get_spans": get_spans,
        }
    }


def listener_nlp(encoder_path, *, get_spans=None, transformer=True, listener=LISTENER, **overrides):
    """sentencizer -> transformer -> bertsum (listener), not initialized."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    if transformer:
        nlp.add_pipe("transformer", config=transformer_config(encoder_path, get_spans))
    config = tiny_config(encoder_path, **overrides)
    config["model"]["encoder"] = dict(listener)
    nlp.add_pipe("bertsum", config=config)
    return nlp


@pytest.fixture(scope="module")
def trained_nlp(tiny_encoder):
    """A listener pipeline after 5 updates (used for prediction only)."""
    fix_random_seed(0)
    nlp = listener_nlp(tiny_encoder)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer)
    return nlp


def test_initialize_takes_the_width_from_the_transformer(tiny_encoder):
    """The issue: `Cannot get dimension 'nO' for model 'transformer-listener>>trfs2arrays'`."""
    nlp = listener_nlp(tiny_encoder)
    nlp.initialize()
    bertsum = nlp.get_pipe("bertsum")
    assert get_listener(bertsum.model) is not None
    assert bertsum.cfg["width"] == 32
    assert bertsum.model.get_ref("encoder").get_dim("nO") == 32
    doc = nlp(TEXTS[0])
    assert len(doc._.sent_scores) == len(list(doc.sents)) == 5
    assert len(doc.spans["bertsum"]) == 3


def test_listener_without_a_transformer_raises_e080(tiny_encoder):
    nlp = listener_nlp(tiny_encoder, transformer=False)
    with pytest.raises(ValueError, match=r"\[E080\].*'transformer'"):
        nlp.initialize()


def test_same_scores_as_the_embedded_encoder(tiny_encoder):
    """With the same span getter, encoder weights and head, listener mode
    scores exactly as the embedded mode does: the sentence pooling over the
    upstream token vectors is the same."""
    fix_random_seed(0)
    windows = {"@span_getters": "spacy-bertsum.sentence_windows.v1", "max_tokens": 40}
    listening = listener_nlp(tiny_encoder, get_spans=windows)
    listening.initialize()
    embedded = spacy.blank("en")
    embedded.add_pipe("sentencizer")
    embedded.add_pipe("bertsum", config=tiny_config(tiny_encoder))
    embedded.initialize()
    head = get_head_module(listening.get_pipe("bertsum").model).state_dict()
    get_head_module(embedded.get_pipe("bertsum").model).load_state_dict(head)
    for text in (TEXTS[1], LONG):
        a, b = listening(text)._.sent_scores, embedded(text)._.sent_scores
        assert len(a) == len(b)
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_long_doc_every_sentence_scored_through_strided_spans(trained_nlp):
    """The transformer's span getter (16-token windows here) covers the long
    doc; bertsum scores all of its sentences, each from its own tokens."""
    doc = trained_nlp(LONG)
    n_sents = len(list(doc.sents))
    assert n_sents == 120 and len(doc) > 16 * 10
    scores = doc._.sent_scores
    assert len(scores) == n_sents and all(np.isfinite(scores))
    # Repeated text, but each window sees other context: scores differ.
    assert len(set(round(s, 6) for s in scores)) > 5
    # Token vectors exist beyond the first window.
    tokvecs = trained_nlp.get_pipe("bertsum").model.get_ref("encoder").predict([doc])[0]
    assert np.abs(tokvecs[-20:]).sum() > 0


def test_pipe_matches_single_calls_and_empty_docs(trained_nlp):
    texts = [TEXTS[0], "", LONG, "One sentence only."]
    piped = list(trained_nlp.pipe(texts, batch_size=4))
    for text, doc in zip(texts, piped):
        single = trained_nlp(text)
        assert doc._.sent_scores == pytest.approx(single._.sent_scores, abs=1e-5)
    assert piped[1]._.sent_scores == [] and len(piped[1].spans["bertsum"]) == 0
    assert len(piped[3]._.sent_scores) == 1


def test_training_updates_the_shared_transformer(tiny_encoder):
    fix_random_seed(0)
    nlp = listener_nlp(tiny_encoder)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    hf_model = nlp.get_pipe("transformer").model.transformer
    before = {name: p.detach().clone() for name, p in hf_model.named_parameters()}
    first = last = None
    for i in range(15):
        losses = nlp.update(examples, sgd=optimizer)
        first = losses["bertsum"] if first is None else first
        last = losses["bertsum"]
    assert last < 0.5 * first
    changed = [name for name, p in hf_model.named_parameters() if not torch.equal(p, before[name])]
    assert any(name.startswith("encoder.layer.0.") for name in changed)
    assert any(name.startswith("embeddings.") for name in changed)
    # The gold sentences (1 and 2) of a training doc are now picked.
    doc = nlp(TEXTS[0])
    assert [s.start for s in doc.spans["bertsum"]][:2] == [s.start for s in list(doc.sents)[1:3]]


def test_grad_factor_0_leaves_the_transformer_unchanged(tiny_encoder):
    """How to freeze the shared encoder for bertsum in listener mode."""
    nlp = listener_nlp(tiny_encoder, listener={**LISTENER, "grad_factor": 0.0})
    examples = make_examples(nlp)
    nlp.initialize(lambda: examples)
    optimizer = Adam(0.001, L2=0.0)  # no weight decay: zero gradients change nothing
    hf_model = nlp.get_pipe("transformer").model.transformer
    before = {name: p.detach().clone() for name, p in hf_model.named_parameters()}
    head_before = {k: v.clone() for k, v in get_head_module(nlp.get_pipe("bertsum").model).state_dict().items()}
    for _ in range(3):
        nlp.update(examples, sgd=optimizer)
    assert all(torch.equal(p, before[name]) for name, p in hf_model.named_parameters())
    head_after = get_head_module(nlp.get_pipe("bertsum").model).state_dict()
    assert any(not torch.equal(head_after[k], v) for k, v in head_before.items())


def test_frozen_annotating_transformer(tiny_encoder):
    """The other way to freeze it: the transformer annotates but is not
    updated; bertsum reads doc._.trf_data and trains its head."""
    nlp = listener_nlp(tiny_encoder)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    hf_model = nlp.get_pipe("transformer").model.transformer
    before = {name: p.detach().clone() for name, p in hf_model.named_parameters()}
    losses = {}
    for _ in range(3):
        nlp.update(
            examples, sgd=optimizer, losses=losses, exclude=["transformer"], annotates=["sentencizer", "transformer"]
        )
    assert losses["bertsum"] > 0
    assert all(torch.equal(p, before[name]) for name, p in hf_model.named_parameters())


def test_to_disk_and_bytes_round_trip(trained_nlp, tmp_path):
    expected = trained_nlp(LONG)._.sent_scores
    trained_nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.pipe_names == ["sentencizer", "transformer", "bertsum"]
    assert get_listener(loaded.get_pipe("bertsum").model) is not None
    assert loaded(LONG)._.sent_scores == pytest.approx(expected, abs=1e-5)
    # The component's own bytes hold the head (not the encoder).
    bertsum = loaded.get_pipe("bertsum")
    size = len(bertsum.to_bytes())
    assert size < 200_000
    bertsum.from_bytes(trained_nlp.get_pipe("bertsum").to_bytes())
    assert loaded(LONG)._.sent_scores == pytest.approx(expected, abs=1e-5)


def test_doc_without_transformer_output_raises_e081(trained_nlp):
    doc = trained_nlp.get_pipe("sentencizer")(trained_nlp.make_doc(TEXTS[0]))
    with pytest.raises(ValueError, match=r"\[E081\].*1 doc\(s\)"):
        trained_nlp.get_pipe("bertsum")(doc)
    with pytest.raises(ValueError, match=r"\[E081\]"):
        trained_nlp.get_pipe("bertsum").summarize(doc)
    with trained_nlp.select_pipes(disable=["transformer"]):
        with pytest.raises(ValueError, match=r"\[E081\]"):
            trained_nlp(TEXTS[0])


@pytest.mark.parametrize(
    "overrides,code",
    [({"save_mode": "compact"}, "E082"), ({"train_max_tokens": 100}, "E083")],
)
def test_embedded_only_settings_raise(tiny_encoder, overrides, code):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("transformer", config=transformer_config(tiny_encoder))
    config = {**tiny_config(tiny_encoder), **overrides}
    config["model"]["encoder"] = dict(LISTENER)
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        nlp.add_pipe("bertsum", config=config)


def test_embedded_only_features_raise_e084(trained_nlp, tmp_path):
    model = trained_nlp.get_pipe("bertsum").model
    for func in (get_hf_model, get_tokenizer, get_encoder_layers):
        with pytest.raises(ValueError, match=r"\[E084\].*'transformer'"):
            func(model)
    with pytest.raises(ValueError, match=r"\[E084\]"):
        save_compact(model, tmp_path / "compact")
    with pytest.raises(ValueError, match=r"\[E084\]"):
        quantize_encoder(trained_nlp)
    with pytest.raises(ValueError, match=r"\[E084\]"):
        encode_sentences(model.get_ref("encoder"), [trained_nlp(TEXTS[0])], 100, False)


def test_compact_checkpoint_cannot_initialize_a_listener(make_nlp, tiny_encoder, tmp_path):
    embedded = make_nlp(save_mode="compact", **{"model.encoder.trainable_layers": 1})
    embedded.initialize()
    embedded.to_disk(tmp_path / "compact")
    nlp = listener_nlp(tiny_encoder)
    nlp.initialize()
    with pytest.raises(ValueError, match=r"\[E084\]"):
        nlp.get_pipe("bertsum")._load_weights_from(tmp_path / "compact")


def test_tok2vec_listener(tiny_encoder):
    """spaCy's own tok2vec component works upstream too."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("tok2vec")
    config = tiny_config(tiny_encoder)
    config["model"]["encoder"] = {"@architectures": "spacy.Tok2VecListener.v1", "width": 96, "upstream": "*"}
    nlp.add_pipe("bertsum", config=config)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    losses = [nlp.update(examples, sgd=optimizer)["bertsum"] for _ in range(10)]
    assert losses[-1] < losses[0]
    assert nlp.get_pipe("bertsum").cfg["width"] == 96
    assert len(nlp(TEXTS[2])._.sent_scores) == 5

"""The ``bertsum`` component end to end, with the tiny random BERT of the test fixtures."""
import importlib
import json
import math
import os
import pickle
import signal
import subprocess
import sys
import uuid

import numpy as np
import pytest
import spacy
import srsly
import torch
from spacy.tokens import Doc, DocBin, Span, SpanGroup
from spacy.training import Example
from spacy.util import fix_random_seed, raise_error

from spacy_bertsum.architectures import (
    get_encoder_layers,
    get_head_module,
    get_hf_model,
    get_tokenizer,
    get_window_size,
    has_head,
    head_calls,
    make_head_module,
    set_head_module,
    set_hf_model,
)
from spacy_bertsum.inter_sentence import InterSentenceEncoder
from spacy_bertsum.long_docs import SentenceWindows, encode_sentences, window_bounds
from spacy_bertsum.util import SENT_OFFSET_KEY, SPANS_KEY

from .util import TEXTS, make_examples, tiny_config

# A very long sentence (longer than max_tokens_per_call=200 and than the
# 40-token encoder window) in the middle of a long doc of ~3000 tokens and
# several hundred sentences (more than the inter-sentence block of 128).
LONG_SENTENCE = " ".join(["the storm hit the coast and the team won the cup"] * 25) + "."
HUGE = " ".join(TEXTS * 9) + " " + LONG_SENTENCE + " " + " ".join(TEXTS * 10)


def build_nlp(encoder_path, **overrides):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("bertsum", config=tiny_config(encoder_path, **overrides))
    return nlp


@pytest.fixture(scope="module")
def small_nlp(tiny_encoder):
    """An initialized pipeline that encodes at most 200 tokens per call. Only
    used for prediction, so tests can share it."""
    fix_random_seed(0)
    nlp = build_nlp(tiny_encoder, **{"model.max_tokens_per_call": 200})
    nlp.initialize()
    return nlp


@pytest.fixture(scope="module")
def huge_doc(small_nlp):
    return small_nlp(HUGE)


def n_sents(doc):
    return len(list(doc.sents)) if len(doc) else 0


def sent_index(doc):
    return {sent.start: i for i, sent in enumerate(doc.sents)}


def summary_ids(doc):
    starts = sent_index(doc)
    return [starts[span.start] for span in doc._.summary_sents]


def assert_valid_annotations(doc):
    scores = doc._.sent_scores
    assert isinstance(scores, list)
    assert len(scores) == n_sents(doc)
    assert all(isinstance(s, float) and math.isfinite(s) and 0.0 <= s <= 1.0 for s in scores)
    sents = doc._.summary_sents
    assert all(isinstance(s, Span) for s in sents)
    assert [s.start for s in sents] == sorted(s.start for s in sents)
    assert doc._.summary == " ".join(s.text.strip() for s in sents)


@pytest.fixture
def unique_name():
    """A fresh extension name; any Doc/Span extension of that name is removed after the test."""
    name = "t_" + uuid.uuid4().hex[:10]
    yield name
    for cls in (Doc, Span):
        for suffix in ("", "_scores", "_sents", "_summary", "_span"):
            if cls.has_extension(name + suffix):
                cls.remove_extension(name + suffix)


# -- creation -----------------------------------------------------------------


@pytest.mark.slow
def test_factory_from_entry_point_without_importing_the_package():
    """`add_pipe("bertsum")` and `add_pipe("quote_boundaries")` work in a fresh
    interpreter where user code never imports spacy_bertsum (spaCy finds the
    factories through the entry points), and the default config builds
    without loading any weights."""
    code = (
        "import sys, spacy\n"
        "nlp = spacy.blank('en')\n"
        "nlp.add_pipe('sentencizer')\n"
        "nlp.add_pipe('quote_boundaries')\n"
        "print([s.text for s in nlp('It rains. \"Be\" it.').sents])\n"
        "pipe = nlp.add_pipe('bertsum')\n"
        "print(type(pipe).__module__, type(pipe).__name__)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "spacy_bertsum.pipeline BertSum" in result.stdout
    assert "['It rains.', '\"Be\" it.']" in result.stdout


def test_default_config_validates_without_loading_weights():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    pipe = nlp.add_pipe("bertsum")
    cfg = nlp.config["components"]["bertsum"]
    assert cfg["top_k"] == 3 and cfg["trigram_blocking"] is True
    encoder_cfg = cfg["model"]["encoder"]
    assert encoder_cfg["name"] == "sentence-transformers/all-MiniLM-L6-v2"
    # The config round-trips and validates.
    nlp2 = spacy.util.load_model_from_config(nlp.config, auto_fill=True, validate=True)
    assert nlp2.pipe_names == ["sentencizer", "bertsum"]
    # Nothing was loaded: no head, no Hugging Face model.
    assert not has_head(pipe.model)
    transformer = pipe.model.get_ref("encoder").get_ref("transformer")
    assert transformer.attrs["has_transformer"] is False
    assert get_hf_model(pipe.model) is None
    assert pipe.cfg["width"] is None


def test_uninitialized_component_raises_e005(make_nlp):
    nlp = make_nlp()
    with pytest.raises(ValueError, match=r"\[E005\]"):
        nlp(TEXTS[0])
    with pytest.raises(ValueError, match=r"\[E005\]"):
        list(nlp.pipe(TEXTS[:2]))
    doc = nlp.get_pipe("sentencizer")(nlp.make_doc(TEXTS[0]))
    with pytest.raises(ValueError, match=r"\[E005\]"):
        nlp.get_pipe("bertsum").summarize(doc)


def test_doc_without_sentence_boundaries_raises(small_nlp):
    bertsum = small_nlp.get_pipe("bertsum")
    with pytest.raises(ValueError, match="sentencizer"):
        bertsum(small_nlp.make_doc(TEXTS[0]))
    with pytest.raises(ValueError, match="sentencizer"):
        list(bertsum.pipe([small_nlp.make_doc(t) for t in TEXTS]))
    with small_nlp.select_pipes(disable=["sentencizer"]):
        with pytest.raises(ValueError, match=r"\[E001\].*sentencizer"):
            small_nlp(TEXTS[1])


def test_error_handler_gets_each_failing_doc(small_nlp):
    """nlp.set_error_handler reaches bertsum: a failing batch is retried doc
    by doc, the handler gets each failing doc, the other docs are annotated
    as alone, and with as_tuples their contexts stay paired."""
    sentencizer = small_nlp.get_pipe("sentencizer")
    docs = [sentencizer(small_nlp.make_doc(t)) for t in TEXTS]
    docs[1] = small_nlp.make_doc(TEXTS[1])  # no sentence boundaries: E001
    failed = []

    def handler(name, component, batch, error):
        failed.append((name, [d.text for d in batch], str(error)))

    small_nlp.set_error_handler(handler)
    try:
        with small_nlp.select_pipes(disable=["sentencizer"]):
            out = list(small_nlp.pipe([(d, i) for i, d in enumerate(docs)], as_tuples=True, batch_size=4))
        # A direct call goes to the handler too (and returns None, as TrainablePipe).
        assert small_nlp.get_pipe("bertsum")(small_nlp.make_doc(TEXTS[1])) is None
        assert len(failed) == 2
    finally:
        small_nlp.set_error_handler(raise_error)
    assert [i for _, i in out] == [0, 2, 3]
    assert failed[0][0] == "bertsum" and failed[0][1] == [TEXTS[1]] and "E001" in failed[0][2]
    for doc, i in out:
        alone = small_nlp(TEXTS[i])
        assert doc._.summary == alone._.summary
        assert np.allclose(doc._.sent_scores, alone._.sent_scores, atol=1e-5)
    # The default handler raises the failing doc's own error.
    with pytest.raises(ValueError, match=r"\[E001\]"):
        list(small_nlp.get_pipe("bertsum").pipe(docs, batch_size=4))


# -- degenerate docs ----------------------------------------------------------


def test_empty_doc(small_nlp):
    doc = small_nlp("")
    assert doc._.sent_scores == []
    assert doc._.summary_sents == []
    assert doc._.summary == ""
    assert list(doc.spans[SPANS_KEY]) == []
    # Empty docs don't even need a sentence segmenter.
    doc = small_nlp.get_pipe("bertsum")(small_nlp.make_doc(""))
    assert doc._.sent_scores == []


@pytest.mark.parametrize("text", [" ", "   ", "\n\n", " \t\n "])
def test_whitespace_only_doc(small_nlp, text):
    doc = small_nlp(text)
    assert doc._.summary == ""
    assert doc._.summary_sents == []
    # Scored like any other doc: a list, one score per (whitespace) sentence.
    assert_valid_annotations(doc)


@pytest.mark.parametrize(
    "text,n",
    [
        ("Hello", 1),
        ("The storm hit the coast on Monday.", 1),
        ("The storm hit the coast on Monday", 1),
        ("The storm hit the coast on Monday. Thousands of homes lost power.", 2),
        ("  The storm hit the coast on Monday.\n\nThousands of homes lost power.  ", 2),
        ("The storm hit the coast on Monday.   ", 1),
    ],
)
def test_short_docs_return_all_sentences(small_nlp, text, n):
    doc = small_nlp(text, component_cfg={"bertsum": {"top_k": 3}})
    assert_valid_annotations(doc)  # every sentence scored, whitespace ones too
    # Trailing whitespace after the last period is a sentence of its own for the
    # sentencizer; it is never part of a summary.
    content = [s for s in doc.sents if s.text.strip()]
    assert len(content) == n
    assert [s.start for s in doc._.summary_sents] == [s.start for s in content]
    assert doc._.summary == " ".join(s.text.strip() for s in content)
    # Even when asked for fewer sentences, the whitespace one takes no slot.
    doc = small_nlp(text, component_cfg={"bertsum": {"top_k": n}})
    assert [s.start for s in doc._.summary_sents] == [s.start for s in content]


# -- batches and long docs ----------------------------------------------------


def test_pipe_mixed_batch_matches_single_calls(small_nlp, huge_doc):
    texts = ["", "   ", HUGE, TEXTS[0], "", "One short sentence.", "\n", TEXTS[1], TEXTS[2]]
    singles = [small_nlp(t) for t in texts if t != HUGE]
    singles.insert(2, huge_doc)
    assert len(huge_doc) > 3000 and len(huge_doc) > 10 * 200
    for batch_size in (3, 64):
        docs = list(small_nlp.pipe(texts, batch_size=batch_size))
        assert [d.text for d in docs] == texts
        for doc, single in zip(docs, singles):
            assert_valid_annotations(doc)
            assert len(doc._.sent_scores) == len(single._.sent_scores)
            assert np.allclose(doc._.sent_scores, single._.sent_scores, atol=1e-5)
            assert doc._.summary == single._.summary


def test_long_doc_scores_every_sentence(small_nlp, huge_doc, tiny_encoder):
    window = small_nlp.get_pipe("bertsum").model.get_ref("encoder").get_ref("transformer").attrs["get_spans"]
    assert isinstance(window, SentenceWindows) and window.max_tokens == 40
    assert len(window([huge_doc])[0]) > 50
    n = n_sents(huge_doc)
    assert n > 128  # more than one attention block
    assert any(len(sent) > 200 for sent in huge_doc.sents)  # a sentence longer than one call
    assert_valid_annotations(huge_doc)
    assert len(huge_doc._.sent_scores) == n
    assert len(huge_doc._.summary_sents) == 3
    # With everything in one encoder call: still one finite score per sentence.
    fix_random_seed(0)
    big = build_nlp(tiny_encoder, **{"model.max_tokens_per_call": 100000})
    big.initialize()
    doc = big(HUGE)
    assert_valid_annotations(doc)
    assert len(doc._.sent_scores) == n


def _table_encoder(docs, width=4):
    """A stand-in encoder: each token's vector is the row ``ids[token.lower_]``
    of a random table; backprop adds the gradients into ``grads``. ``calls``
    gets, per call, the token count of each doc it got and (last) how many
    arrays it returned before are still alive."""
    import weakref

    from thinc.api import Model

    ids = {}
    for doc in docs:
        for token in doc:
            ids.setdefault(token.lower_, len(ids))
    table = np.random.RandomState(0).rand(len(ids), width).astype("f")
    grads = np.zeros_like(table)
    outputs = []
    calls = []

    def forward(model, piece_docs, is_train):
        calls.append([len(d) for d in piece_docs])
        # Each call's token vectors are pooled before the next call.
        calls[-1].append(sum(ref() is not None for ref in outputs))
        rows = [np.asarray([ids[t.lower_] for t in doc], dtype="i") for doc in piece_docs]
        vecs = [table[r] for r in rows]
        outputs.extend(weakref.ref(v) for v in vecs)

        def backprop(d_vecs):
            for r, d in zip(rows, d_vecs):
                np.add.at(grads, r, d)
            return []

        return vecs, backprop

    return Model("table", forward, dims={"nO": width}), ids, table, grads, calls


@pytest.mark.parametrize("max_tokens", [7, 50, 100000])
def test_encode_sentences_pools_each_call(small_nlp, huge_doc, max_tokens):
    """Sentence vectors pooled call by call are the means of their tokens'
    vectors, also for a sentence cut across pieces and calls; the gradient
    reaches each token as d(sentence) / sentence length; no call's token
    vectors are alive during the next call."""
    docs = [small_nlp(TEXTS[0]), huge_doc, small_nlp("One short sentence.")]
    encoder, ids, table, grads, calls = _table_encoder(docs)
    sentvecs, backprop = encode_sentences(encoder, docs, max_tokens, True)
    rng = np.random.RandomState(1)
    d_sentvecs = [rng.rand(*v.shape).astype("f") for v in sentvecs]
    backprop(d_sentvecs)
    expected_grads = np.zeros_like(grads)
    for doc, vecs, d_vecs in zip(docs, sentvecs, d_sentvecs):
        sents = list(doc.sents)
        assert vecs.shape == (len(sents), table.shape[1])
        for sent, vec, d in zip(sents, vecs, d_vecs):
            rows = [ids[t.lower_] for t in sent]
            assert np.allclose(vec, table[rows].mean(axis=0), atol=1e-6)
            np.add.at(expected_grads, rows, d / len(sent))
    assert np.allclose(grads, expected_grads, atol=1e-6)
    for *lengths, alive in calls:
        assert len(lengths) * max(lengths) <= max_tokens or len(lengths) == 1
        assert alive == 0
    if max_tokens < 100:
        assert len(calls) > 10


def test_sentence_vectors_match_the_encoder_on_whole_pieces(small_nlp, huge_doc):
    """With the real encoder: the sentence vectors pooled call by call are the
    means of the token vectors the encoder gives for the doc (up to
    max_tokens_per_call tokens) or for its pieces of whole sentences of at
    most max_tokens_per_call tokens (longer docs)."""
    encoder = small_nlp.get_pipe("bertsum").model.get_ref("encoder")
    ops = encoder.ops
    docs = [small_nlp(TEXTS[0]), huge_doc]
    for max_tokens in (200, 100000):
        sentvecs, _ = encode_sentences(encoder, docs, max_tokens, False)
        for doc, vecs in zip(docs, sentvecs):
            bounds = window_bounds([len(s) for s in doc.sents], max_tokens)
            parts = [doc[start:end].as_doc() for start, end in bounds] if len(doc) > max_tokens else [doc]
            tokvecs = ops.xp.concatenate(encoder.predict(parts))
            expected = ops.reduce_mean(tokvecs, ops.asarray1i([len(s) for s in doc.sents]))
            assert vecs.shape == expected.shape
            assert np.allclose(vecs, expected, atol=1e-5)


def test_head_calls_are_bounded():
    assert head_calls([5, 3000, 4, 6], 4096) == [[0], [1], [2, 3]]
    assert head_calls([30] * 10, 100) == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert head_calls([], 10) == []


def test_long_doc_in_a_batch_does_not_pad_the_others(small_nlp, huge_doc):
    """The head sees at most max_tokens_per_call (200) padded sentences per
    call, or one doc that has more: a huge doc in a batch of short ones does
    not make every row as long as it."""
    model = small_nlp.get_pipe("bertsum").model
    head = model.get_ref("head")
    forward = head._func
    padded = []

    def recording(model, inputs, is_train):
        sentvecs, _ = inputs
        padded.append((len(sentvecs), max(len(x) for x in sentvecs)))
        return forward(model, inputs, is_train)

    docs = [small_nlp(t) for t in TEXTS * 5]
    docs.insert(7, huge_doc)
    head._func = recording
    try:
        scores = small_nlp.get_pipe("bertsum").predict(docs)
    finally:
        head._func = forward
    assert n_sents(huge_doc) > 200
    assert all(n * longest <= 200 or n == 1 for n, longest in padded)
    assert sum(n for n, _ in padded) == len(docs)
    alone = small_nlp.get_pipe("bertsum").predict([huge_doc])[0]
    assert np.allclose(scores[7], alone, atol=1e-5)


# -- extensions ---------------------------------------------------------------


def test_extensions_values(small_nlp):
    doc = small_nlp(TEXTS[0])
    assert_valid_annotations(doc)
    assert len(doc._.sent_scores) == 5
    assert len(doc._.summary_sents) == 3
    assert isinstance(doc._.summary, str) and doc._.summary
    for sent, score in zip(doc.sents, doc._.sent_scores):
        assert sent._.bertsum_score == score
        # Any span starting inside the sentence gets its sentence's score.
        assert doc[sent.start + 1 : sent.end]._.bertsum_score == score
    for span in doc._.summary_sents:
        assert span._.bertsum_score == doc._.sent_scores[sent_index(doc)[span.start]]
    # The summary holds the top-scoring sentences.
    best = sorted(range(5), key=lambda i: -doc._.sent_scores[i])[:3]
    assert summary_ids(doc) == sorted(best)
    # Unprocessed docs: no scores, no summary.
    fresh = small_nlp.make_doc("Nothing here.")
    assert fresh._.sent_scores is None
    assert fresh._.summary_sents == []
    assert fresh._.summary == ""


def test_second_component_and_reimport_with_default_names(make_nlp, small_nlp):
    make_nlp()
    nlp = make_nlp()
    nlp.add_pipe("bertsum", name="bertsum_again", config={"model": small_nlp.config["components"]["bertsum"]["model"]})
    import spacy_bertsum.extensions as extensions

    reloaded = importlib.reload(extensions)
    assert reloaded.install_extensions({}, SPANS_KEY)["summary"] == "summary"
    # The getters still work after all this.
    doc = small_nlp(TEXTS[1])
    assert_valid_annotations(doc)


def test_conflicting_extension_raises_e003(make_nlp, unique_name):
    Doc.set_extension(unique_name, default=None)  # "another package" owns it
    with pytest.raises(ValueError, match=r"\[E003\]") as excinfo:
        make_nlp(extensions={"summary": unique_name})
    assert "extensions" in str(excinfo.value)
    assert unique_name in str(excinfo.value)
    # The other package's extension is left alone.
    assert Doc.get_extension(unique_name) == (None, None, None, None)


def test_conflicting_span_extension_raises_e003(make_nlp, unique_name):
    Span.set_extension(unique_name, getter=lambda span: 0.0)
    with pytest.raises(ValueError, match=r"\[E003\].*extensions"):
        make_nlp(extensions={"span_score": unique_name})


def test_default_name_taken_by_another_package(make_nlp):
    """Someone else registered Doc._.summary before bertsum was created."""
    saved = Doc.get_extension("summary")
    assert saved[2] is not None  # bertsum's getter
    Doc.remove_extension("summary")
    try:
        Doc.set_extension("summary", default=None)
        with pytest.raises(ValueError, match=r"\[E003\].*extensions"):
            make_nlp()
    finally:
        Doc.remove_extension("summary")
        Doc.set_extension("summary", getter=saved[2])


def test_unknown_and_duplicate_extension_keys(make_nlp, unique_name):
    with pytest.raises(ValueError, match=r"\[E004\]"):
        make_nlp(extensions={"summry": unique_name})
    with pytest.raises(ValueError, match=r"\[E007\]"):
        make_nlp(extensions={"summary": unique_name, "summary_sents": unique_name})


def test_renamed_extensions(make_nlp, unique_name):
    names = {
        "sent_scores": unique_name + "_scores",
        "summary_sents": unique_name + "_sents",
        "summary": "bertsum_summary",
        "span_score": unique_name + "_span",
    }
    had_bertsum_summary = Doc.has_extension("bertsum_summary")
    try:
        nlp = make_nlp(extensions=names)
        assert nlp.get_pipe("bertsum").cfg["extensions"] == names
        nlp.initialize()
        doc = nlp(TEXTS[2])
        scores = getattr(doc._, unique_name + "_scores")
        sents = getattr(doc._, unique_name + "_sents")
        assert len(scores) == 5 and len(sents) == 3
        assert doc._.bertsum_summary == " ".join(s.text.strip() for s in sents)
        for sent, score in zip(doc.sents, scores):
            assert getattr(sent._, unique_name + "_span") == score
        # The default names read the same data (same spans_key).
        assert doc._.sent_scores == scores
        # A second component with the same renamed extensions is fine.
        make_nlp(extensions=names)
    finally:
        if not had_bertsum_summary and Doc.has_extension("bertsum_summary"):
            Doc.remove_extension("bertsum_summary")


# -- per-call overrides -------------------------------------------------------


def test_component_cfg_override(small_nlp):
    doc = small_nlp(TEXTS[0], component_cfg={"bertsum": {"top_k": 1}})
    assert len(doc._.summary_sents) == 1
    best = int(np.argmax(doc._.sent_scores))
    assert summary_ids(doc) == [best]
    docs = list(small_nlp.pipe(TEXTS, component_cfg={"bertsum": {"top_k": 2}}))
    assert [len(d._.summary_sents) for d in docs] == [2] * len(TEXTS)
    doc = small_nlp(TEXTS[0], component_cfg={"bertsum": {"ratio": 1.0}})
    assert len(doc._.summary_sents) == 5
    with pytest.raises(TypeError, match=r"\[E012\]"):
        small_nlp(TEXTS[0], component_cfg={"bertsum": {"top_n": 1}})
    # The component's own settings are unchanged.
    assert small_nlp.get_pipe("bertsum").selection.top_k == 3
    assert len(small_nlp(TEXTS[0])._.summary_sents) == 3


def test_component_cfg_dict_reused_after_pipe(small_nlp):
    """nlp.pipe writes batch_size into the caller's component_cfg dict; reusing
    that dict with nlp(text) must still work."""
    cfg = {"bertsum": {"top_k": 1}}
    list(small_nlp.pipe(TEXTS[:2], component_cfg=cfg))
    assert "batch_size" in cfg["bertsum"]  # spaCy's doing
    doc = small_nlp(TEXTS[0], component_cfg=cfg)
    assert len(doc._.summary_sents) == 1


def test_summarize_does_not_change_the_doc(small_nlp):
    doc = small_nlp(TEXTS[3])
    stored = [(s.start, s.end) for s in doc._.summary_sents]
    assert len(stored) == 3
    bertsum = small_nlp.get_pipe("bertsum")
    spans = bertsum.summarize(doc, top_k=2)
    assert isinstance(spans, SpanGroup)
    assert len(spans) == 2
    assert [s.start for s in spans] == sorted(s.start for s in spans)
    best = sorted(range(5), key=lambda i: -doc._.sent_scores[i])[:2]
    starts = [s.start for s in doc.sents]
    assert [s.start for s in spans] == [starts[i] for i in sorted(best)]
    assert [(s.start, s.end) for s in doc._.summary_sents] == stored
    # On a doc the component has not seen it runs the model, without storing anything.
    fresh = small_nlp.get_pipe("sentencizer")(small_nlp.make_doc(TEXTS[3]))
    spans2 = bertsum.summarize(fresh, top_k=2)
    assert [(s.start, s.end) for s in spans2] == [(s.start, s.end) for s in spans]
    assert fresh._.sent_scores is None and fresh._.summary_sents == []


# -- docs crossing boundaries -------------------------------------------------


def test_doc_pickles(small_nlp):
    doc = small_nlp(TEXTS[0])
    doc2 = pickle.loads(pickle.dumps(doc))
    assert doc2._.sent_scores == doc._.sent_scores
    assert doc2._.summary == doc._.summary
    assert [(s.start, s.end) for s in doc2._.summary_sents] == [(s.start, s.end) for s in doc._.summary_sents]
    empty = pickle.loads(pickle.dumps(small_nlp("")))
    assert empty._.sent_scores == [] and empty._.summary == ""


def test_docbin_round_trip(small_nlp):
    docs = list(small_nlp.pipe(TEXTS + [""]))
    doc_bin = DocBin(store_user_data=True, docs=docs)
    loaded = list(DocBin().from_bytes(doc_bin.to_bytes()).get_docs(small_nlp.vocab))
    for doc, doc2 in zip(docs, loaded):
        assert doc2._.sent_scores == doc._.sent_scores
        assert doc2._.summary == doc._.summary
        assert [s.text for s in doc2._.summary_sents] == [s.text for s in doc._.summary_sents]
        for s1, s2 in zip(doc.sents, doc2.sents):
            assert s1._.bertsum_score == s2._.bertsum_score


MP_SCRIPT = """
import json, sys
import spacy
nlp = spacy.load(sys.argv[1])
texts = json.loads(sys.argv[2])
# n_process=1 first: the parent has used torch's thread pool before it forks,
# as in real use.
one = list(nlp.pipe(texts, n_process=1, batch_size=2))
two = list(nlp.pipe(texts, n_process=2, batch_size=2))
json.dump([[(d.text, d._.summary, d._.sent_scores) for d in docs] for docs in (one, two)], sys.stdout)
"""


@pytest.mark.slow
def test_pipe_multiprocessing(small_nlp, tmp_path):
    """nlp.pipe(n_process=2) gives the same docs as n_process=1. Run in a child
    interpreter so that a deadlock in the forked workers fails the test instead
    of hanging the suite."""
    texts = TEXTS * 2 + ["", "One short sentence."]
    small_nlp.to_disk(tmp_path / "pipeline")
    proc = subprocess.Popen(
        [sys.executable, "-c", MP_SCRIPT, str(tmp_path / "pipeline"), json.dumps(texts)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("nlp.pipe(n_process=2) hung")
    assert proc.returncode == 0, err
    one, two = json.loads(out)
    expected = list(small_nlp.pipe(texts))
    assert [d[0] for d in two] == texts
    for doc, (_, summary1, scores1), (_, summary2, scores2) in zip(expected, one, two):
        assert summary2 == summary1 == doc._.summary
        assert len(scores2) == len(scores1) == len(doc._.sent_scores)
        assert np.allclose(scores2, scores1, atol=1e-6)
        assert np.allclose(scores2, doc._.sent_scores, atol=1e-6)


FORK_SCRIPT = """
import os, sys
import torch
torch.set_num_threads(2)
import spacy
nlp = spacy.load(sys.argv[1])
nlp("The parent uses torch first. Then it forks.")

def child(use_bertsum):
    pid = os.fork()
    if pid == 0:
        if use_bertsum:
            nlp("The storm hit the coast. Homes lost power.")
        os.write(1, f"{int(use_bertsum)}:{torch.get_num_threads()} ".encode())
        os._exit(0)
    os.waitpid(pid, 0)

child(False)
child(True)
os.write(1, f"parent:{torch.get_num_threads()}".encode())
"""


@pytest.mark.slow
def test_only_forked_children_that_predict_go_single_threaded(small_nlp, tmp_path):
    """Importing spacy_bertsum does not change forked children; a child that
    predicts with the component (as nlp.pipe(n_process=2) workers do) runs
    torch on one thread, the parent keeps its threads."""
    small_nlp.to_disk(tmp_path / "pipeline")
    result = subprocess.run(
        [sys.executable, "-c", FORK_SCRIPT, str(tmp_path / "pipeline")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0:2", "1:1", "parent:2"]


# -- serialization ------------------------------------------------------------


def test_to_disk_and_load(small_nlp, tmp_path):
    before = [d._.sent_scores for d in small_nlp.pipe(TEXTS)]
    small_nlp.to_disk(tmp_path / "pipeline")
    nlp2 = spacy.load(tmp_path / "pipeline")
    assert nlp2.pipe_names == ["sentencizer", "bertsum"]
    after = [d._.sent_scores for d in nlp2.pipe(TEXTS)]
    for a, b in zip(before, after):
        assert np.allclose(a, b, atol=1e-6)


def test_component_bytes_round_trip(small_nlp, tiny_encoder):
    before = [d._.sent_scores for d in small_nlp.pipe(TEXTS)]
    data = small_nlp.get_pipe("bertsum").to_bytes()
    nlp2 = build_nlp(tiny_encoder, **{"model.max_tokens_per_call": 200})
    nlp2.get_pipe("bertsum").from_bytes(data)
    after = [d._.sent_scores for d in nlp2.pipe(TEXTS)]
    for a, b in zip(before, after):
        assert np.allclose(a, b, atol=1e-6)
    # Whole-pipeline bytes too.
    nlp3 = build_nlp(tiny_encoder, **{"model.max_tokens_per_call": 200})
    nlp3.from_bytes(small_nlp.to_bytes())
    assert np.allclose(nlp3(TEXTS[0])._.sent_scores, before[0], atol=1e-6)


# -- the model's accessors ----------------------------------------------------


def test_model_accessors(make_nlp, tiny_encoder):
    nlp = make_nlp()
    pipe = nlp.get_pipe("bertsum")
    model = pipe.model
    assert not has_head(model) and len(model.layers) == 1
    assert get_hf_model(model) is None and get_tokenizer(model) is None
    with pytest.raises(ValueError, match=r"\[E005\]"):
        get_head_module(model)
    with pytest.raises(ValueError, match=r"\[E005\]"):
        set_hf_model(model, torch.nn.Linear(2, 2))
    assert get_window_size(model) == get_window_size(model.get_ref("encoder")) == 40
    nlp.initialize()
    assert has_head(model) and model.get_ref("head") is model.layers[1]
    head = get_head_module(model)
    assert isinstance(head, InterSentenceEncoder) and head.width == model.get_dim("nI") == 32
    assert isinstance(get_hf_model(model), torch.nn.Module)
    assert get_tokenizer(model)("the storm")["input_ids"]
    assert len(get_encoder_layers(model)) == 2
    docs = [nlp(t) for t in TEXTS]
    before = pipe.predict(docs)

    # Another head: it scores, its settings are recorded; the old one back
    # gives the old scores.
    linear = make_head_module(dict(model.attrs, inter_sentence_layers=0), 32)
    set_head_module(model, linear, {"inter_sentence_layers": 0})
    assert get_head_module(model) is linear and model.get_ref("head") is model.layers[1]
    assert len(model.layers) == 2 and model.attrs["inter_sentence_layers"] == 0
    assert not np.allclose(pipe.predict(docs)[0], before[0], atol=1e-4)
    set_head_module(model, head, {"inter_sentence_layers": 1})
    for a, b in zip(pipe.predict(docs), before):
        assert np.array_equal(a, b)

    # Another Hugging Face model: the encoder runs it.
    import copy

    changed = copy.deepcopy(get_hf_model(model))
    with torch.no_grad():
        for param in changed.parameters():
            param.mul_(0.5)
    set_hf_model(model, changed)
    assert get_hf_model(model) is changed
    assert not np.allclose(pipe.predict(docs)[0], before[0], atol=1e-4)


def test_window_size_of_other_span_getters(make_nlp):
    """Another span getter (here overlapping strided windows) has no window
    size: docs are only cut at max_tokens_per_call, and every sentence is scored."""
    getter = {"@span_getters": "spacy-transformers.strided_spans.v1", "window": 32, "stride": 24}
    nlp = make_nlp(**{"model.encoder.get_spans": getter, "model.max_tokens_per_call": 100})
    assert get_window_size(nlp.get_pipe("bertsum").model) is None
    nlp.initialize()
    doc = nlp(" ".join(TEXTS * 3))
    assert_valid_annotations(doc)
    windows = SentenceWindows(40)
    assert pickle.loads(pickle.dumps(windows)).max_tokens == 40
    with pytest.raises(ValueError, match=r"\[E015\]"):
        SentenceWindows(0)


def test_model_saved_without_the_head_ref_loads(small_nlp, tiny_encoder):
    """Pipelines saved before the head was the named ref "head" (their model
    node lists only "encoder") load and score as before."""
    pipe = small_nlp.get_pipe("bertsum")
    before = [d._.sent_scores for d in small_nlp.pipe(TEXTS)]
    data = srsly.msgpack_loads(pipe.to_bytes())
    model_msg = srsly.msgpack_loads(data["model"])
    assert model_msg["nodes"][0]["refs"].keys() == {"encoder", "head"}
    del model_msg["nodes"][0]["refs"]["head"]
    data["model"] = srsly.msgpack_dumps(model_msg)
    nlp2 = build_nlp(tiny_encoder, **{"model.max_tokens_per_call": 200})
    nlp2.get_pipe("bertsum").from_bytes(srsly.msgpack_dumps(data))
    model = nlp2.get_pipe("bertsum").model
    assert has_head(model) and model.get_ref("head") is model.layers[1]
    for a, doc in zip(before, nlp2.pipe(TEXTS)):
        assert np.allclose(a, doc._.sent_scores, atol=1e-6)


# -- training -----------------------------------------------------------------


def train(nlp, examples, n_steps, optimizer=None):
    if optimizer is None:
        optimizer = nlp.initialize(lambda: examples)
    history = []
    for _ in range(n_steps):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses, annotates=["sentencizer"])
        history.append(losses["bertsum"])
    return history


def hf_params(nlp):
    hf_model = get_hf_model(nlp.get_pipe("bertsum").model)
    return {name: p.detach().clone() for name, p in hf_model.named_parameters()}


def changed_params(before, after):
    assert before.keys() == after.keys()
    return {name for name in before if not torch.equal(before[name], after[name])}


def test_overfitting_IO(make_nlp, tmp_path):
    fix_random_seed(0)
    nlp = make_nlp()
    examples = make_examples(nlp, gold_ids=(1, 2))
    history = train(nlp, examples, 30)
    assert all(math.isfinite(loss) for loss in history)
    assert history[-1] < 0.5 * history[0]

    # The gold sentences are selected for the training texts.
    cfg = {"bertsum": {"top_k": 2}}
    for text in TEXTS:
        doc = nlp(text, component_cfg=cfg)
        assert summary_ids(doc) == [1, 2], doc._.sent_scores
    scores = nlp.evaluate(make_examples(nlp, gold_ids=(1, 2)), component_cfg=cfg)
    for key in ("bertsum_rouge1_f", "bertsum_rouge2_f", "bertsum_rougeLsum_f"):
        assert 0.5 < scores[key] <= 1.0, scores
    assert scores["bertsum_sents_f"] == pytest.approx(1.0)

    # Saved and loaded: the same scores.
    before = [d._.sent_scores for d in nlp.pipe(TEXTS)]
    nlp.to_disk(tmp_path / "trained")
    nlp2 = spacy.load(tmp_path / "trained")
    after = [d._.sent_scores for d in nlp2.pipe(TEXTS)]
    for a, b in zip(before, after):
        assert np.allclose(a, b, atol=1e-6)
    for text in TEXTS:
        assert summary_ids(nlp2(text, component_cfg=cfg)) == [1, 2]

    # Predicted docs without sentence boundaries (no `annotates`): E002.
    unsegmented = [Example(nlp.make_doc(eg.reference.text), eg.reference) for eg in examples]
    with pytest.raises(ValueError, match=r"\[E002\]"):
        nlp.update(unsegmented)


def test_two_components_keep_their_scores(make_nlp, tiny_encoder, unique_name):
    """Score keys carry the spans key, so a second bertsum component with
    another key does not overwrite the first one's scores."""
    nlp = make_nlp(top_k=1)
    names = {"sent_scores": unique_name + "_scores", "summary_sents": unique_name + "_sents",
             "summary": unique_name + "_summary", "span_score": unique_name + "_span"}
    config = tiny_config(tiny_encoder, spans_key="all_sents", top_k=5, trigram_blocking=False, extensions=names)
    nlp.add_pipe("bertsum", name="bertsum_all", config=config)
    nlp.initialize()
    examples = make_examples(nlp, gold_ids=(1, 2))
    for eg in examples:
        eg.reference.spans["all_sents"] = SpanGroup(eg.reference, spans=list(eg.reference.spans[SPANS_KEY]))
    scores = nlp.evaluate(examples)
    for key in ("bertsum", "all_sents"):
        for metric in ("rouge1_f", "rouge2_f", "rougeLsum_f", "sents_p", "sents_r", "sents_f"):
            assert scores[f"{key}_{metric}"] is not None, scores
    # bertsum picks 1 sentence of the 2 gold ones, the other all 5.
    assert scores["bertsum_sents_r"] <= 0.5
    assert scores["all_sents_sents_r"] == 1.0
    assert scores["all_sents_sents_p"] == pytest.approx(0.4)


def test_update_without_gold_spans_raises_e008(nlp):
    examples = [Example(nlp.make_doc(t), nlp.get_pipe("sentencizer")(nlp.make_doc(t))) for t in TEXTS]
    with pytest.raises(ValueError, match=r"\[E008\]"):
        nlp.update(examples, annotates=["sentencizer"])


def test_frozen_encoder_trains_the_head_only(make_nlp):
    fix_random_seed(0)
    nlp = make_nlp(**{"model.encoder.trainable_layers": 0})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    before = hf_params(nlp)
    head = get_head_module(nlp.get_pipe("bertsum").model)
    head_before = {n: p.detach().clone() for n, p in head.named_parameters()}
    history = train(nlp, examples, 10, optimizer)
    assert history[-1] < history[0]
    assert changed_params(before, hf_params(nlp)) == set()
    head_after = {n: p.detach().clone() for n, p in head.named_parameters()}
    assert changed_params(head_before, head_after)


def test_trainable_layers_1_updates_the_top_layer_only(make_nlp):
    fix_random_seed(0)
    nlp = make_nlp(**{"model.encoder.trainable_layers": 1})
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    before = hf_params(nlp)
    history = train(nlp, examples, 3, optimizer)
    assert all(math.isfinite(loss) for loss in history)
    changed = changed_params(before, hf_params(nlp))
    top = {name for name in before if name.startswith("encoder.layer.1.")}
    assert changed, "the top layer was not trained"
    assert changed <= top
    # The weight matrices of the top layer all move.
    assert {n for n in top if n.endswith("dense.weight")} <= changed


def test_train_max_tokens(make_nlp):
    fix_random_seed(0)
    nlp = make_nlp(train_max_tokens=12)
    examples = make_examples(nlp, gold_ids=(0,))
    bertsum = nlp.get_pipe("bertsum")
    doc = bertsum._training_doc(examples[0].predicted)
    assert 0 < len(doc) <= 12
    assert n_sents(doc) >= 1
    history = train(nlp, examples, 3)
    assert all(math.isfinite(loss) and loss > 0 for loss in history)
    # Prediction still scores whole docs.
    assert len(nlp(TEXTS[0])._.sent_scores) == 5


def test_late_training_windows_keep_true_positions_and_labels(make_nlp):
    fix_random_seed(0)
    nlp = make_nlp(train_max_tokens=12, train_late_windows=1.0)
    examples = make_examples(nlp, gold_ids=(3,))
    bertsum = nlp.get_pipe("bertsum")
    full_labels = bertsum.gold_labels(examples[0])
    assert full_labels == [0.0, 0.0, 0.0, 1.0, 0.0]
    firsts = set()
    for _ in range(30):
        window = bertsum._training_doc(examples[0].predicted)
        first = window.user_data[SENT_OFFSET_KEY]
        firsts.add(first)
        assert first >= 1
        sents = list(examples[0].predicted.sents)
        # The window starts exactly at sentence `first` of the doc.
        assert window.text.strip().startswith(sents[first].text.strip())
        assert 0 < len(window) <= max(12, len(sents[first]))
    assert len(firsts) > 1, "the late window should start at random sentences"
    # The loss reads the labels of the window's own sentences.
    logits = [np.zeros((2,), dtype="f")]
    loss_at_3, _ = bertsum.get_loss(examples[:1], logits, [3])
    loss_at_1, _ = bertsum.get_loss(examples[:1], logits, [1])
    assert loss_at_3 == pytest.approx(loss_at_1)  # same label count (one positive)
    _, d_at_3 = bertsum.get_loss(examples[:1], logits, [3])
    _, d_at_1 = bertsum.get_loss(examples[:1], logits, [1])
    assert d_at_3[0][0] < 0 and d_at_3[0][1] > 0  # sentence 3 positive, 4 negative
    assert d_at_1[0][0] > 0 and d_at_1[0][1] > 0  # sentences 1, 2 negative
    history = train(nlp, examples, 3)
    assert all(math.isfinite(loss) and loss > 0 for loss in history)


@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_train_late_windows_out_of_range_raises_e021(make_nlp, value):
    with pytest.raises(ValueError, match=r"\[E021\]"):
        make_nlp(train_late_windows=value)


def test_initialize_from_a_trained_pipeline(make_nlp, tiny_encoder, tmp_path):
    fix_random_seed(0)
    nlp = make_nlp()
    examples = make_examples(nlp, gold_ids=(1, 2))
    train(nlp, examples, 10)
    nlp.to_disk(tmp_path / "stage1")
    expected = [d._.sent_scores for d in nlp.pipe(TEXTS)]

    # A fresh pipeline from the config, started from stage 1's weights.
    fresh = make_nlp()
    fresh.config["initialize"]["components"]["bertsum"] = {"init_from": str(tmp_path / "stage1")}
    fresh.initialize(lambda: examples)
    for scores, doc in zip(expected, fresh.pipe(TEXTS)):
        assert np.allclose(scores, doc._.sent_scores, atol=1e-5)
    # Without init_from: the pretrained encoder and a new head.
    untouched = make_nlp()
    untouched.initialize(lambda: examples)
    assert not np.allclose(expected[0], untouched(TEXTS[0])._.sent_scores, atol=1e-3)

    broken = make_nlp()
    broken.config["initialize"]["components"]["bertsum"] = {"init_from": str(tmp_path / "nothing")}
    with pytest.raises(ValueError, match=r"\[E022\]"):
        broken.initialize(lambda: examples)

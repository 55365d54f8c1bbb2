"""int8 dynamic quantization of the encoder (spacy_bertsum.quantize)."""
import json
import warnings

import numpy
import pytest
import torch
from thinc.api import CupyOps

from spacy_bertsum.architectures import get_head_module, get_hf_model, get_tokenizer
from spacy_bertsum.cli.benchmark import stage_pipeline
from spacy_bertsum.cli.evaluate import evaluate_path
from spacy_bertsum.quantize import is_quantized, quantize_encoder

from .util import TEXTS, make_examples

DynamicLinear = torch.ao.nn.quantized.dynamic.Linear
#: The tiny encoder (2 layers: q, k, v, attention output, intermediate, output)
#: plus the pooler.
TINY_LINEARS = 2 * 6 + 1
#: Largest allowed change of a sentence probability. On the tiny random
#: encoder int8 moves the scores by < 1e-4 (seeds 0-9: at most 8.6e-5): its
#: token vectors pass LayerNorm, and the head's logits stay near 0, where the
#: sigmoid is flat. 0.01 leaves a 100x margin and still catches a broken
#: encoder (garbage or zero vectors shift the scores by far more).
SCORE_TOLERANCE = 0.01


def _hf(nlp):
    return get_hf_model(nlp.get_pipe("bertsum").model)


def _head(nlp):
    return get_head_module(nlp.get_pipe("bertsum").model)


def _docs(nlp):
    return [nlp.get_pipe("sentencizer")(nlp.make_doc(text)) for text in TEXTS]


def test_torch_has_a_quantized_engine():
    assert torch.backends.quantized.engine not in (None, "none")


def test_quantize_swaps_the_encoder_linears_only(nlp):
    head_types = [type(m) for m in _head(nlp).modules()]
    tokenizer = get_tokenizer(nlp.get_pipe("bertsum").model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's deprecation warnings stay inside
        n = quantize_encoder(nlp)
    assert n == TINY_LINEARS
    hf = _hf(nlp)
    assert sum(isinstance(m, DynamicLinear) for m in hf.modules()) == n
    assert not any(type(m) is torch.nn.Linear for m in hf.modules())
    # both references of the spacy-transformers model point to the new module
    trf = nlp.get_pipe("bertsum").model.get_ref("encoder").get_ref("transformer")
    assert trf.layers[0].shims[0]._model is hf
    assert trf.transformer is hf
    assert get_tokenizer(nlp.get_pipe("bertsum").model) is tokenizer
    assert [type(m) for m in _head(nlp).modules()] == head_types  # float head
    assert not any(isinstance(m, DynamicLinear) for m in _head(nlp).modules())
    assert is_quantized(nlp)


def test_scores_stay_close_to_float(nlp):
    pipe = nlp.get_pipe("bertsum")
    docs = _docs(nlp)
    before = pipe.predict(docs)
    float_vectors = pipe.model.get_ref("encoder").predict(docs)
    quantize_encoder(nlp)
    after = pipe.predict(docs)
    int8_vectors = pipe.model.get_ref("encoder").predict(docs)
    # the int8 encoder did run: its token vectors differ, a little
    vec_diff = max(float(numpy.abs(a - b).max()) for a, b in zip(float_vectors, int8_vectors))
    assert 0.0 < vec_diff < 0.5
    for doc, b, a in zip(docs, before, after):
        assert len(a) == len(b) == len(list(doc.sents))
        assert numpy.isfinite(a).all()
        assert float(numpy.abs(a - b).max()) < SCORE_TOLERANCE
    doc = nlp(TEXTS[0])  # the whole pipeline still summarizes
    assert len(doc._.summary_sents) == 3


def test_update_raises_e023(nlp):
    quantize_encoder(nlp)
    with pytest.raises(ValueError, match=r"\[E023\]"):
        nlp.update(make_examples(nlp), annotates=["sentencizer"])


def test_saving_raises_e024(nlp, tmp_path):
    quantize_encoder(nlp)
    with pytest.raises(ValueError, match=r"\[E024\]"):
        nlp.get_pipe("bertsum").to_disk(tmp_path / "bertsum")
    with pytest.raises(ValueError, match=r"\[E024\]"):
        nlp.to_bytes()
    with pytest.raises(ValueError, match=r"\[E024\]"):
        nlp.to_disk(tmp_path / "model")


def test_quantizing_twice_is_a_no_op(nlp):
    assert quantize_encoder(nlp) == TINY_LINEARS
    hf = _hf(nlp)
    scores = nlp.get_pipe("bertsum").predict(_docs(nlp))
    assert quantize_encoder(nlp) == 0
    assert _hf(nlp) is hf
    again = nlp.get_pipe("bertsum").predict(_docs(nlp))
    for a, b in zip(scores, again):
        numpy.testing.assert_allclose(a, b, atol=1e-6)


def test_gpu_pipeline_is_refused(nlp, monkeypatch):
    monkeypatch.setattr(nlp.get_pipe("bertsum").model, "ops", CupyOps.__new__(CupyOps))
    with pytest.raises(ValueError, match=r"\[E025\].*GPU"):
        quantize_encoder(nlp)
    assert not is_quantized(nlp)


def test_uninitialized_component_is_refused(make_nlp):
    with pytest.raises(ValueError, match=r"\[E005\]"):
        quantize_encoder(make_nlp())


def test_evaluate_and_benchmark_stage_with_int8(nlp, tmp_path):
    from spacy.tokens import DocBin

    gold = DocBin(docs=[eg.reference for eg in make_examples(nlp)], store_user_data=True)
    gold.to_disk(tmp_path / "gold.spacy")
    model = tmp_path / "model"
    nlp.to_disk(model)
    out = tmp_path / "metrics.json"
    result = evaluate_path(model, tmp_path / "gold.spacy", out, show_progress=False, int8=True)
    assert result["int8"] is True and result["n_docs"] == len(TEXTS)
    assert json.loads(out.read_text(encoding="utf8"))["int8"] is True
    assert evaluate_path(model, tmp_path / "gold.spacy", show_progress=False)["int8"] is False

    row = stage_pipeline(str(model), TEXTS, batch_size=2, capture=None, int8=True)
    assert row["quantized_linear_layers"] == TINY_LINEARS
    assert row["docs"] == len(TEXTS) and row["seconds"] > 0 and row["wordpieces"] > 0

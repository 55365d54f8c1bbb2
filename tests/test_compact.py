"""Compact checkpoints: trained layers + head only, checked against the base encoder."""
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
from transformers import BertConfig, BertModel

from .util import TEXTS, make_examples, tiny_config


@pytest.fixture
def trained_compact(tiny_encoder, tmp_path):
    config = tiny_config(tiny_encoder, **{"model.encoder.trainable_layers": 1})
    config["save_mode"] = "compact"
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("bertsum", config=config)
    examples = make_examples(nlp)
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(5):
        nlp.update(examples, sgd=optimizer, annotates=["sentencizer"])
    path = tmp_path / "compact"
    nlp.to_disk(path)
    return nlp, path


def test_compact_round_trip(trained_compact, tmp_path):
    nlp, path = trained_compact
    files = sorted(p.name for p in (path / "bertsum" / "model").iterdir())
    assert files == ["compact.json", "encoder.safetensors", "head.safetensors"]
    loaded = spacy.load(path)
    for text in TEXTS:
        expected = nlp(text)._.sent_scores
        got = loaded(text)._.sent_scores
        # float16 storage of the trained layers and head
        assert numpy.allclose(expected, got, atol=2e-3)
    full = tmp_path / "full"
    nlp.get_pipe("bertsum").cfg["save_mode"] = "full"
    nlp.to_disk(full)
    size = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())  # noqa: E731
    assert size(path / "bertsum") < size(full / "bertsum")


def test_corrupted_weights_give_clear_error(trained_compact):
    _, path = trained_compact
    weights = path / "bertsum" / "model" / "head.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"\[E016\].*corrupted"):
        spacy.load(path)


def test_other_base_encoder_gives_clear_error(trained_compact, tiny_encoder, tmp_path):
    _, path = trained_compact
    other = tmp_path / "other_bert"
    config = BertConfig.from_pretrained(tiny_encoder)
    BertModel(config).save_pretrained(str(other))  # same shape, other weights
    for f in Path(tiny_encoder).iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, other / f.name)
    cfg_path = path / "config.cfg"
    cfg_path.write_text(cfg_path.read_text().replace(tiny_encoder, str(other)))
    with pytest.raises(ValueError, match=r"\[E018\]"):
        spacy.load(path)


def test_changed_trainable_layers_gives_clear_error(trained_compact):
    _, path = trained_compact
    with pytest.raises(ValueError, match=r"\[E017\]"):
        spacy.load(path, config={"components": {"bertsum": {"model": {"encoder": {"trainable_layers": 2}}}}})


def test_flipped_bytes_inside_a_tensor_fail_the_checksum(trained_compact):
    """The header stays valid, so safetensors reads the file; only the
    checksum recorded at save time catches it."""
    _, path = trained_compact
    weights = path / "bertsum" / "model" / "head.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = b"\xff" * 8
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"\[E016\].*checksum"):
        spacy.load(path)


def _frozen_weight(nlp):
    from spacy_bertsum.architectures import get_hf_model

    return get_hf_model(nlp.get_pipe("bertsum").model).encoder.layer[0].attention.self.query.weight


def test_low_rank_update_of_a_frozen_layer_is_saved_as_factors(trained_compact, tmp_path):
    """A frozen (non-trainable) layer changed by a rank-2 update, as adapters
    leave it: the compact save stores the update's factors (format 2) and
    loading gives it back; the pretrained encoder's fingerprint is kept."""
    import json

    import torch

    nlp, path = trained_compact
    weight = _frozen_weight(nlp)
    torch.manual_seed(0)
    update = torch.randn(weight.shape[0], 2) @ torch.randn(2, weight.shape[1]) * 0.05
    with torch.no_grad():
        weight += update
    nlp.to_disk(tmp_path / "adapted")
    model_dir = tmp_path / "adapted" / "bertsum" / "model"
    meta = json.loads((model_dir / "compact.json").read_text())
    assert meta["format"] == 2 and meta["n_low_rank_updates"] == 1
    assert meta["fingerprint"] == json.loads((path / "bertsum" / "model" / "compact.json").read_text())["fingerprint"]
    loaded = spacy.load(tmp_path / "adapted")
    assert torch.allclose(_frozen_weight(loaded), weight, atol=1e-3)
    for text in TEXTS:
        assert numpy.allclose(nlp(text)._.sent_scores, loaded(text)._.sent_scores, atol=2e-3)
    # Saved again, the loaded copy stores the same update (no growth in rank).
    loaded.to_disk(tmp_path / "again")
    assert torch.allclose(_frozen_weight(spacy.load(tmp_path / "again")), weight, atol=2e-3)
    # An unchanged copy saved into the same directory drops the factors.
    with torch.no_grad():
        weight -= update
    nlp.to_disk(tmp_path / "adapted")
    assert not (model_dir / "lowrank.safetensors").exists()
    assert json.loads((model_dir / "compact.json").read_text())["format"] == 1


def test_full_rank_change_of_a_frozen_layer_is_an_error(trained_compact, tmp_path):
    import torch

    nlp, _ = trained_compact
    with torch.no_grad():
        _frozen_weight(nlp).add_(torch.randn(_frozen_weight(nlp).shape))
    with pytest.raises(ValueError, match=r"\[E092\].*query"):
        nlp.to_disk(tmp_path / "bad")


def test_newer_compact_format_gives_clear_error(trained_compact):
    import json

    _, path = trained_compact
    meta_path = path / "bertsum" / "model" / "compact.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps({**meta, "format": 99}))
    with pytest.raises(ValueError, match=r"\[E093\]"):
        spacy.load(path)

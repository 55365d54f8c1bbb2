"""Every training config shipped in configs/ loads, validates and builds a pipeline."""
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

from spacy_bertsum.architectures import get_listener, has_head

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.cfg"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_loads(path):
    config = spacy.util.load_config(path)
    assert "bertsum" in config["nlp"]["pipeline"]
    assert config["components"]["bertsum"]["factory"] == "bertsum"
    # A sentence segmenter runs before bertsum and annotates during training.
    pipeline = config["nlp"]["pipeline"]
    segmenters = [name for name in pipeline if config["components"][name].get("factory") in ("sentencizer", "senter", "parser")]
    assert segmenters and pipeline.index(segmenters[0]) < pipeline.index("bertsum")
    assert set(segmenters) & set(config["training"]["annotating_components"])


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_spacy_debug_config(path):
    result = subprocess.run(
        [sys.executable, "-m", "spacy", "debug", "config", str(path.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Config is valid" in result.stdout


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_config_builds_pipeline_without_loading_weights(path):
    config = spacy.util.load_config(path)
    nlp = spacy.util.load_model_from_config(config, auto_fill=True, validate=True)
    assert nlp.pipe_names == config["nlp"]["pipeline"]
    bertsum = nlp.get_pipe("bertsum")
    assert bertsum.spans_key == config["components"]["bertsum"]["spans_key"]
    assert bertsum.selection.top_k == config["components"]["bertsum"]["top_k"]
    # Not initialized: no scoring head, no Hugging Face weights.
    assert not has_head(bertsum.model)
    if get_listener(bertsum.model) is not None:  # a shared transformer component (listener mode)
        transformer = nlp.get_pipe("transformer").model
    else:
        transformer = bertsum.model.get_ref("encoder").get_ref("transformer")
    assert transformer.attrs["has_transformer"] is False
    assert transformer.layers[0].shims[0]._hfmodel.transformer is None
    # nlp.initialize() builds the optimizer from the uninterpolated nlp.config
    # (as `spacy debug data` runs it): no ${...} variables in that block.
    assert nlp.create_optimizer() is not None


def test_shipped_config_builds_its_optimizer():
    config = spacy.util.load_config(ROOT / "spacy_bertsum" / "pipelines" / "en_bertsum_news" / "config.cfg")
    nlp = spacy.util.load_model_from_config(config, auto_fill=True)
    assert nlp.create_optimizer() is not None


def test_old_model_name_still_builds():
    """Pipelines saved before 0.2 name the model spacy-bertsum.BertSumScorer.v1."""
    from spacy.util import registry

    assert registry.architectures.get("spacy-bertsum.BertSumScorer.v1") is registry.architectures.get(
        "spacy-bertsum.BertSumModel.v1"
    )

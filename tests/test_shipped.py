"""The trained pipeline shipped inside the package: ``spacy_bertsum.load()``.

The quality test runs the shipped pipeline on a fixed sample of 200 CNN/DM test
articles shipped in tests/data (lines 61-260 of the test split, picked before
the model was evaluated; the model never saw the test split).
"""
import json
import lzma
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import spacy

import spacy_bertsum
from spacy_bertsum.cli.evaluate import RougeTotals, lead_sentences
from spacy_bertsum.loading import DEFAULT_PIPELINE, pipeline_path

SAMPLE = Path(__file__).parent / "data" / "cnndm_test_61-260.jsonl.xz"
#: How far above Lead-3 the shipped model must stay on that sample (ROUGE-1
#: F, points). The 0.2 model measures +1.83 there, 95% CI [+0.83, +2.98]
#: (docs/benchmarks.md), 0.3.2 +2.37 [+1.40, +3.42], the shipped 0.4.0 +2.45
#: [+1.32, +3.58] (`evaluate` of the converted sample, 2026-12-02); a model that
#: falls back to Lead-3-like quality (the 0.1 model measured +1.46) fails the
#: bound below or the interval check.
MIN_R1_MARGIN = 1.0

NEWS = (
    "Heavy rain has flooded large parts of the northern city of Leeds, forcing "
    "hundreds of families to leave their homes. The river Aire burst its banks on "
    "Sunday night after two days of storms. Emergency services rescued 40 people "
    "from cars and houses, the fire service said. Train services to Manchester "
    "and York were cancelled. A local school opened its hall to people who had "
    "nowhere to sleep. The Environment Agency said more rain was expected on "
    "Tuesday. Residents criticised the council for not finishing flood defences "
    "that were promised five years ago. The council said work would start next "
    "spring. Shops in the city centre stayed closed on Monday."
)


@pytest.fixture(scope="module")
def shipped():
    return spacy_bertsum.load()


@pytest.mark.slow
def test_loads_offline_in_a_fresh_process():
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    code = (
        "import json, spacy_bertsum; nlp = spacy_bertsum.load(); "
        f"doc = nlp({NEWS!r}); "
        "print(json.dumps({'pipes': nlp.pipe_names, 'summary': doc._.summary}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["pipes"] == ["sentencizer", "quote_boundaries", "bertsum"]
    assert out["summary"]


def test_shipped_weights_are_compact():
    path = pipeline_path()
    size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    assert size <= 16e6, f"{size / 1e6:.1f} MB"
    model_dir = path / "bertsum" / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "compact.json",
        "encoder.safetensors",
        "head.safetensors",
        "lowrank.safetensors",
    ]


def test_summarizes_news_in_document_order(shipped):
    doc = shipped(NEWS)
    sents = doc._.summary_sents
    assert len(sents) == 3
    starts = [s.start for s in sents]
    assert starts == sorted(starts)
    assert len(doc._.sent_scores) == len(list(doc.sents))
    assert all(0.0 <= s <= 1.0 for s in doc._.sent_scores)
    assert doc._.summary == " ".join(s.text.strip() for s in sents)


@pytest.mark.slow
def test_beats_lead3_on_the_fixed_sample(shipped):
    rows = [json.loads(line) for line in lzma.open(SAMPLE, "rt", encoding="utf8")]
    assert len(rows) == 200
    model, lead3 = RougeTotals(), RougeTotals()
    texts = [row["article"] for row in rows]
    for row, doc in zip(rows, shipped.pipe(texts, batch_size=16)):
        model.add([s.text.strip() for s in doc._.summary_sents], row["highlights"])
        lead3.add(lead_sentences(doc), row["highlights"])
    m, l3 = model.means(), lead3.means()
    assert m["rouge1"] >= l3["rouge1"] + MIN_R1_MARGIN, (m, l3)
    # The gain is not noise on this sample: the lower end of its paired 95%
    # interval is above zero.
    diff, low, high = model.diff(lead3)["rouge1"]
    assert low > 0, (diff, low, high)
    assert m["rouge2"] > l3["rouge2"], (m, l3)
    assert m["rougeLsum"] > l3["rougeLsum"], (m, l3)


@pytest.fixture
def shipped_copy(tmp_path):
    path = tmp_path / DEFAULT_PIPELINE
    shutil.copytree(pipeline_path(), path)
    return path


def test_corrupted_shipped_weights_give_clear_error(shipped_copy):
    weights = shipped_copy / "bertsum" / "model" / "encoder.safetensors"
    weights.write_bytes(weights.read_bytes()[: 1000])
    with pytest.raises(ValueError, match=r"\[E016\]"):
        spacy.load(shipped_copy)


def test_shipped_weights_on_another_encoder_give_clear_error(shipped_copy, tiny_encoder):
    cfg_path = shipped_copy / "config.cfg"
    text = cfg_path.read_text(encoding="utf8")
    assert 'name = "sentence-transformers/all-MiniLM-L6-v2"' in text
    cfg_path.write_text(text.replace("sentence-transformers/all-MiniLM-L6-v2", tiny_encoder), encoding="utf8")
    with pytest.raises(ValueError, match=r"\[E018\]"):
        spacy.load(shipped_copy)


def test_shipped_config_has_no_local_training_paths():
    config = spacy.util.load_config(pipeline_path() / "config.cfg")
    assert config["paths"]["train"] is None and config["paths"]["dev"] is None
    assert config["paths"].get("init_bertsum") is None


def test_unknown_shipped_name_gives_clear_error():
    with pytest.raises(OSError, match=r"\[E020\].*en_bertsum_news"):
        spacy_bertsum.load("en_bertsum_nothing")

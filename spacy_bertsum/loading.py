"""The trained pipeline shipped inside the package: ``spacy_bertsum.load()``."""
from pathlib import Path
from typing import List, Union

import spacy
from spacy.language import Language

from .errors import Errors

PIPELINES_DIR = Path(__file__).parent / "pipelines"
DEFAULT_PIPELINE = "en_bertsum_news"


def available_pipelines() -> List[str]:
    if not PIPELINES_DIR.exists():
        return []
    return sorted(p.name for p in PIPELINES_DIR.iterdir() if (p / "config.cfg").exists())


def pipeline_path(name: str = DEFAULT_PIPELINE) -> Path:
    path = PIPELINES_DIR / name
    if not (path / "config.cfg").exists():
        raise OSError(Errors.E020.format(name=name, available=available_pipelines() or "none"))
    return path


def load(name: str = DEFAULT_PIPELINE, **kwargs) -> Language:
    """Load a pipeline shipped with spacy-bertsum (sentencizer + bertsum),
    offline. Keyword arguments go to ``spacy.load`` (e.g. ``exclude``)."""
    return spacy.load(pipeline_path(name), **kwargs)


def load_model(model: Union[str, Path, Language], **kwargs) -> Language:
    """A pipeline from what a user passes as ``--model``: a ``Language`` as is,
    the name of a pipeline shipped with spacy-bertsum (``en_bertsum_news``,
    unless a directory of that name exists here), or a path or installed
    package name for ``spacy.load``."""
    if isinstance(model, Language):
        return model
    if isinstance(model, str) and model in available_pipelines() and not Path(model).exists():
        return load(model, **kwargs)
    return spacy.load(model, **kwargs)

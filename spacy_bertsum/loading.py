"""Loading pipelines: the ones shipped inside the package
(``spacy_bertsum.load()``) and whatever a user passes as ``--model``.

Which pipeline a name means, everywhere in spacy-bertsum (every command's
``--model`` or model argument, and :func:`load_model`):

1. a ``Language`` object is used as it is;
2. an existing directory of that name (relative to the working directory);
3. an installed pipeline package of that name (as ``spacy.load`` finds it),
   e.g. ``en_bertsum_news`` built with ``spacy package`` and pip-installed;
4. a pipeline shipped inside spacy-bertsum (``spacy_bertsum/pipelines``);
5. otherwise ``spacy.load`` reports that it cannot find it.

``spacy_bertsum.load(name)`` always loads the copy shipped inside the package.
"""
from pathlib import Path
from typing import List, Optional, Union

import spacy
from spacy.language import Language
from spacy.util import is_package

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
    """Load a pipeline shipped with spacy-bertsum (sentencizer, quote_boundaries, bertsum),
    offline. Keyword arguments go to ``spacy.load`` (e.g. ``exclude``)."""
    return spacy.load(pipeline_path(name), **kwargs)


def resolve_model(model: Union[str, Path]) -> Union[str, Path]:
    """What ``spacy.load`` gets for ``model`` under the resolution order of
    this module: a path, an installed package name, or a shipped pipeline's path."""
    name = str(model)
    if Path(name).exists() or is_package(name):
        return model
    if name in available_pipelines() or name == DEFAULT_PIPELINE:
        return pipeline_path(name)  # E020 for the default name without package data
    return model


def load_model(
    model: Optional[Union[str, Path, Language]] = None, *, gpu_id: int = -1, int8: bool = False, **kwargs
) -> Language:
    """The pipeline a user means by ``model`` (see the module docstring for
    the order; None: the shipped ``en_bertsum_news``), on GPU ``gpu_id``
    (-1: CPU), with its bertsum encoder quantized to int8 if ``int8`` (CPU
    only; a ``Language`` passed in is quantized in place). Keyword arguments
    go to ``spacy.load``."""
    if int8 and gpu_id is not None and gpu_id >= 0:
        raise ValueError(Errors.E038)
    if gpu_id is not None and gpu_id >= 0:
        spacy.require_gpu(gpu_id)
    if isinstance(model, Language):
        nlp = model
    else:
        nlp = spacy.load(resolve_model(DEFAULT_PIPELINE if model is None else model), **kwargs)
    if int8:
        from .quantize import quantize_encoder

        quantize_encoder(nlp, find_bertsum(nlp))
    return nlp


def find_bertsum(nlp: Language) -> str:
    """The name of the first enabled component made by the ``bertsum`` factory."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == "bertsum":
            return name
    raise ValueError(Errors.E037.format(names=", ".join(nlp.pipe_names) or "none"))

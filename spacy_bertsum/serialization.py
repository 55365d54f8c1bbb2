"""Writing and reading the ``bertsum`` component's model: one thinc file
(``save_mode = "full"``) or a directory with the trained layers only
(``"compact"``, see spacy_bertsum.compact), and the weights of a trained
component in a pipeline directory (``init_from``)."""
from pathlib import Path
from typing import Optional

from thinc.api import Model

from .architectures import build_head, has_head, require_embedded
from .compact import is_compact, load_compact, save_compact
from .errors import Errors


def rebuild_head(model: Model, width: Optional[int]) -> None:
    """Build the scoring head for encoder vectors of ``width`` (the
    component's cfg) so that weights can be read into it; nothing to do when
    the head exists or the width is not known yet."""
    if width and not has_head(model):
        build_head(model, width)


def save_model(model: Model, path: Path, compact: bool) -> None:
    """A compact save (once the head exists) or a full one."""
    if compact and has_head(model):
        save_compact(model, path)
    else:
        model.to_disk(path)


def load_model_dir(model: Model, model_dir: Path, width: Optional[int]) -> None:
    """Read the model from a compact save (a directory with the trained
    layers only) or a full one (a thinc file)."""
    if is_compact(model_dir):
        require_embedded(model, f"The compact checkpoint {model_dir}")
        load_compact(model, model_dir)
    else:
        rebuild_head(model, width)
        model.from_disk(model_dir)


def load_trained(model: Model, path: Path, name: str, width: Optional[int]) -> None:
    """Read the weights of the trained component ``name`` into ``model``,
    from a pipeline directory (e.g. ``training/model-last``) or the
    component's own directory in one. Raises E022."""
    model_dir = next((p for p in (path / name / "model", path / "model") if p.exists()), None)
    if model_dir is None:
        raise ValueError(Errors.E022.format(path=path, name=name))
    try:
        load_model_dir(model, model_dir, width)
    except ValueError as err:
        raise ValueError(Errors.E022.format(path=path, name=name) + f" ({err})") from err

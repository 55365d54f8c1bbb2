"""``spacy-bertsum compact``: save a trained pipeline with only what training
changed (the trained encoder layers and the head, float16)."""
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional, Union

import srsly
import typer
from spacy.language import Language
from thinc.api import Config
from wasabi import msg

from ..architectures import HEAD_SETTINGS
from ..loading import load_model
from ._util import app


def save_compact_pipeline(
    nlp: Language, output: Union[str, Path], *, name: Optional[str] = None, meta: Optional[Dict[str, Any]] = None
) -> int:
    """Save ``nlp`` with every bertsum component in compact mode, and a
    config that loads anywhere: the head and selection settings the
    component runs with (also after a new head was installed or the selection
    changed) and no local training paths. The vocab is
    left out (it only holds strings seen in training; the tokenizer rebuilds
    what it needs). Returns the size in bytes."""
    output = Path(output)
    bertsum_names = [n for n in nlp.pipe_names if nlp.get_pipe_meta(n).factory == "bertsum"]
    for pipe_name in bertsum_names:
        nlp.get_pipe(pipe_name).cfg["save_mode"] = "compact"
    if name:
        nlp.meta["name"] = name
    if meta:
        nlp.meta.update(meta)
    output.mkdir(parents=True, exist_ok=True)  # spaCy creates only the last level
    nlp.to_disk(output, exclude=["vocab"])
    config = Config().from_disk(output / "config.cfg", interpolate=False)
    for pipe_name in bertsum_names:
        pipe = nlp.get_pipe(pipe_name)
        attrs = pipe.model.attrs
        config["components"][pipe_name]["save_mode"] = "compact"
        config["components"][pipe_name]["model"].update({key: attrs[key] for key in HEAD_SETTINGS})
        config["components"][pipe_name].update(asdict(pipe.selection))
    for key in ("train", "dev", "init_bertsum"):
        if key in config["paths"]:
            config["paths"][key] = None
    config.to_disk(output / "config.cfg")
    return sum(p.stat().st_size for p in output.rglob("*") if p.is_file())


@app.command("compact")
def compact_cli(
    model: str = typer.Argument(..., help="Trained pipeline with a bertsum component (path or package)"),
    output: Path = typer.Argument(..., help="Directory for the compact copy"),
    name: Optional[str] = typer.Option(None, "--name", help="meta.json name of the copy"),
    meta_path: Optional[Path] = typer.Option(
        None, "--meta", help="JSON file whose keys override the copy's meta.json (description, version, ...)",
        exists=True, dir_okay=False,
    ),
):
    """Save a trained pipeline with only the trained encoder layers and the head
    (float16); the rest is rebuilt from the pretrained encoder when it loads."""
    meta = srsly.read_json(meta_path) if meta_path else None
    size = save_compact_pipeline(load_model(model), output, name=name, meta=meta)
    msg.good(f"Saved compact pipeline to {output} ({size / 1e6:.1f} MB)")

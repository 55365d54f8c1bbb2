"""``spacy-bertsum compact``."""

import typer
from wasabi import msg
from pathlib import Path
from typing import Optional

from ._util import app


# -- command line ------------------------------------------------------------


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
    from ..loading import load_model

    nlp = load_model(model)
    for pipe_name, factory in ((n, nlp.get_pipe_meta(n).factory) for n in nlp.pipe_names):
        if factory == "bertsum":
            pipe = nlp.get_pipe(pipe_name)
            pipe.cfg["save_mode"] = "compact"
            nlp.config["components"][pipe_name]["save_mode"] = "compact"
    if name:
        nlp.meta["name"] = name
    if meta_path:
        import srsly

        nlp.meta.update(srsly.read_json(meta_path))
    # The vocab only holds strings seen in training; a blank English
    # tokenizer rebuilds what it needs, so leave it out (2+ MB saved).
    output.mkdir(parents=True, exist_ok=True)  # spaCy creates only the last level
    nlp.to_disk(output, exclude=["vocab"])
    size = sum(p.stat().st_size for p in Path(output).rglob("*") if p.is_file())
    msg.good(f"Saved compact pipeline to {output} ({size / 1e6:.1f} MB)")

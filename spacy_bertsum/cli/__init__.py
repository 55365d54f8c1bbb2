"""Command-line tools: ``spacy-bertsum COMMAND`` (or ``python -m spacy_bertsum
COMMAND``). One module per command, each a typer wrapper over a plain
function of that module; library errors become ``msg.fail(..., exits=...)``
here."""
from ._util import app
from . import (  # noqa: F401  (each registers its command on `app`)
    convert,
    split_dev,
    evaluate,
    evaluate_cats,
    cache_vectors,
    train_head,
    finetune,
    compact,
    show,
    summarize,
    report,
    benchmark,
)


def main() -> None:
    app()

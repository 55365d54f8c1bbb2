"""``spacy-bertsum show``."""

import typer
from wasabi import msg
from pathlib import Path

from ._util import app


# -- command line ------------------------------------------------------------


@app.command("show")
def show_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    index: int = typer.Option(0, "--index", help="Which doc of the file to show"),
):
    """Print one article's model summary next to the reference and Lead-3."""
    from spacy.tokens import DocBin

    from .evaluate import lead_sentences
    from ..loading import load_model
    from ..scorer import rouge_f
    from ..util import get_reference

    nlp = load_model(model)
    docs = DocBin().from_disk(data_path).get_docs(nlp.vocab)
    gold = next((d for i, d in enumerate(docs) if i == index), None)
    if gold is None:
        msg.fail(f"{data_path} has no doc at index {index}", exits=1)
    doc = nlp(gold.text)
    reference = get_reference(gold) or []
    text = doc.text if len(doc.text) <= 700 else doc.text[:700] + " ..."
    msg.divider("Article")
    print(_printable(text))
    systems = {
        "bertsum": [s.text.strip() for s in doc._.summary_sents],
        "lead-3": lead_sentences(doc),
    }
    for name, sents in systems.items():
        scores = rouge_f(sents, reference)
        msg.divider(f"{name} summary (R1 {100 * scores['rouge1']:.1f}, R2 {100 * scores['rouge2']:.1f}, RLsum {100 * scores['rougeLsum']:.1f})")
        print(_printable("\n".join(sents)))
    msg.divider("Reference")
    print(_printable("\n".join(reference)))


def _printable(text: str) -> str:
    """``text`` without terminal escape sequences and other control
    characters (an article must not drive the terminal); newlines and tabs stay."""
    import re
    import unicodedata

    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]", "", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")

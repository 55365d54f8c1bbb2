"""``spacy-bertsum show``: one article's summary next to Lead-3 and the reference."""
import re
import unicodedata
from pathlib import Path
from typing import Dict, List, Tuple, Union

import typer
from spacy.language import Language
from spacy.tokens import DocBin
from wasabi import msg

from ..errors import Errors
from ..loading import load_model
from ..scorer import rouge_f
from ..util import get_reference
from ._util import app
from .evaluate import lead_sentences


def show(nlp: Language, data_path: Union[str, Path], index: int = 0) -> Tuple[str, Dict[str, List[str]], List[str]]:
    """The article at ``index`` of a gold ``.spacy`` file, the summaries of
    the model (``bertsum``) and of Lead-3, and the reference sentences."""
    docs = DocBin().from_disk(data_path).get_docs(nlp.vocab)
    gold = next((d for i, d in enumerate(docs) if i == index), None)
    if gold is None:
        raise ValueError(Errors.E039.format(path=data_path, index=index))
    doc = nlp(gold.text)
    systems = {"bertsum": [s.text.strip() for s in doc._.summary_sents], "lead-3": lead_sentences(doc)}
    return doc.text, systems, get_reference(gold) or []


def printable(text: str) -> str:
    """``text`` without terminal escape sequences and other control
    characters (an article must not drive the terminal); newlines and tabs stay."""
    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]", "", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


@app.command("show")
def show_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    index: int = typer.Option(0, "--index", min=0, help="Which doc of the file to show"),
):
    """Print one article's model summary next to the reference and Lead-3."""
    try:
        text, systems, reference = show(load_model(model), data_path, index)
    except ValueError as e:
        msg.fail(str(e), exits=1)
    msg.divider("Article")
    print(printable(text if len(text) <= 700 else text[:700] + " ..."))
    for name, sents in systems.items():
        scores = rouge_f(sents, reference)
        msg.divider(f"{name} summary (R1 {100 * scores['rouge1']:.1f}, R2 {100 * scores['rouge2']:.1f}, RLsum {100 * scores['rougeLsum']:.1f})")
        print(printable("\n".join(sents)))
    msg.divider("Reference")
    print(printable("\n".join(reference)))

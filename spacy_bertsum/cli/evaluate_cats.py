"""``spacy-bertsum evaluate-cats``: the text classifier of a pipeline on gold
docs with exclusive categories: accuracy, macro and per-class P/R/F1 (from
spaCy's own ``Scorer.score_cats``, so they equal ``spacy evaluate``'s) and the
confusion matrix, which ``spacy evaluate`` does not give."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Union

import typer
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import DocBin
from spacy.training import Example
from wasabi import msg

from ..errors import Errors
from ..loading import load_model
from ._util import app
from .evaluate import save_text


def evaluate_cats(
    model: Union[str, Path, Language],
    data_path: Union[str, Path],
    output: Optional[Union[str, Path]] = None,
    *,
    batch_size: int = 32,
) -> Dict:
    """Score the predicted ``doc.cats`` of ``model`` against the gold cats of
    the docs in ``data_path`` (one category per doc: the argmax is the
    prediction). Prints the scores and the confusion matrix; writes them as
    JSON to ``output``."""
    nlp = load_model(model)
    gold = list(DocBin().from_disk(data_path).get_docs(nlp.vocab))
    labels = sorted({label for doc in gold for label in doc.cats})
    if not labels:
        raise ValueError(Errors.E087.format(path=data_path))
    predicted = nlp.pipe((nlp.make_doc(doc.text) for doc in gold), batch_size=batch_size)
    examples = [Example(pred, ref) for pred, ref in zip(predicted, gold)]
    if not any(ex.predicted.cats for ex in examples):
        raise ValueError(Errors.E088.format(model=model))
    scores = Scorer.score_cats(examples, "cats", labels=labels, multi_label=False)
    index = {label: i for i, label in enumerate(labels)}
    matrix = [[0] * len(labels) for _ in labels]
    for ex in examples:
        matrix[index[_argmax(ex.reference.cats)]][index[_argmax(ex.predicted.cats)]] += 1
    n_docs = len(examples)
    result = {
        "n_docs": n_docs,
        "labels": labels,
        # One category per doc: micro F equals accuracy.
        "accuracy": sum(matrix[i][i] for i in range(len(labels))) / n_docs,
        "macro_p": scores["cats_macro_p"],
        "macro_r": scores["cats_macro_r"],
        "macro_f": scores["cats_macro_f"],
        "per_class": scores["cats_f_per_type"],
        "confusion": {"rows": "gold", "columns": "predicted", "matrix": matrix},
        "model": str(model) if not isinstance(model, Language) else "<in-memory>",
        "data": str(data_path),
    }
    print_cats(result)
    if output:
        save_text(output, json.dumps(result, indent=2), "metrics")
    return result


def _argmax(cats: Dict[str, float]) -> str:
    return max(cats.items(), key=lambda item: item[1])[0]


def print_cats(result: Dict) -> None:
    labels: List[str] = result["labels"]
    msg.table(
        [[label, *(f"{100 * result['per_class'][label][k]:.2f}" for k in "prf")] for label in labels]
        + [["macro", *(f"{100 * result[f'macro_{k}']:.2f}" for k in "prf")]],
        header=["class", "P", "R", "F1"],
        divider=True,
    )
    msg.text(f"Accuracy {100 * result['accuracy']:.2f} on {result['n_docs']} docs")
    msg.table(
        [[label, *row] for label, row in zip(labels, result["confusion"]["matrix"])],
        header=["gold \\ predicted", *labels],
        divider=True,
    )


# -- command line ------------------------------------------------------------


@app.command("evaluate-cats")
def evaluate_cats_cli(
    model: str = typer.Argument(..., help="Trained pipeline with a text classifier: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file with doc.cats (e.g. `convert --cats-field`)", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the metrics as JSON here"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Docs per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
):
    """Accuracy, macro and per-class P/R/F1 and the confusion matrix of a
    pipeline's text classifier (exclusive categories) on gold docs."""
    from spacy.cli._util import setup_gpu

    setup_gpu(gpu_id)
    try:
        evaluate_cats(model, data_path, output, batch_size=batch_size)
    except ValueError as e:
        msg.fail(str(e), exits=1)

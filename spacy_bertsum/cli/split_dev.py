"""Split a converted dev file into a selection set and a held-back test set.

Model selection (checkpoints, settings) must not see the documents that later
tell how well the chosen model does. CNN/DM's validation file mixes two forms
(``text_form``): lowercased See et al. rows and raw, cased rows as scraped
(bylines, captions), which is what users send. The rule, fixed and
reproducible: of the rows whose ``field`` starts with ``holdout_prefix`` and
that are not among the first ``keep_first`` rows, ordered by id, the last
``n_holdout`` are held back; the other rows with the prefix, plus the first
``n_other`` rows of the other forms (file order), are the selection set.
``keep_first`` protects rows that an earlier step already used for selection
(the CPU training stages pick checkpoints on the first 150-300 dev rows).
"""

import typer
from wasabi import msg

from ._util import app
from pathlib import Path
from typing import Tuple, Union

from spacy.tokens import DocBin
from spacy.vocab import Vocab

from .convert import DOCBIN_ATTRS, ID_KEY
from ..errors import Errors
from ..util import FIELDS_KEY


def split_dev(
    input_path: Union[str, Path],
    select_path: Union[str, Path],
    holdout_path: Union[str, Path],
    *,
    field: str = "text_form",
    holdout_prefix: str = "RAW",
    n_holdout: int = 500,
    n_other: int = 1000,
    keep_first: int = 500,
) -> Tuple[int, int]:
    """Write the selection and held-back sets; returns their sizes."""
    docs = list(DocBin().from_disk(input_path).get_docs(Vocab()))
    if docs and FIELDS_KEY not in docs[0].user_data:
        raise ValueError(Errors.E026.format(path=input_path, field=field))
    value = [str((d.user_data.get(FIELDS_KEY) or {}).get(field) or "") for d in docs]
    prefixed = [i for i, v in enumerate(value) if v.startswith(holdout_prefix)]
    candidates = [i for i in prefixed if i >= keep_first]
    if len(candidates) < n_holdout:
        raise ValueError(Errors.E027.format(path=input_path, n=len(candidates), prefix=holdout_prefix, wanted=n_holdout))
    by_id = sorted(candidates, key=lambda i: str(docs[i].user_data.get(ID_KEY, i)))
    holdout = set(by_id[len(by_id) - n_holdout :]) if n_holdout else set()
    others = [i for i, v in enumerate(value) if not v.startswith(holdout_prefix)][:n_other]
    select = sorted(set(prefixed) - holdout | set(others))
    for path, idx in ((select_path, select), (holdout_path, sorted(holdout))):
        out = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
        for i in idx:
            out.add(docs[i])
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        out.to_disk(path)
    return len(select), len(holdout)


# -- command line ------------------------------------------------------------


@app.command("split-dev")
def split_dev_cli(
    input_path: Path = typer.Argument(..., help="Converted dev file (.spacy) with the field kept (`convert --keep-fields`)", exists=True, dir_okay=False),
    select_path: Path = typer.Argument(..., help="Output: the model-selection set (.spacy)"),
    holdout_path: Path = typer.Argument(..., help="Output: the held-back set, never used for selection (.spacy)"),
    field: str = typer.Option("text_form", "--field", help="Field that names each row's form"),
    holdout_prefix: str = typer.Option("RAW", "--holdout-prefix", help="Rows whose field starts with this are split between the two sets"),
    n_holdout: int = typer.Option(500, "--n-holdout", min=0, help="Rows (the last by id) held back"),
    n_other: int = typer.Option(1000, "--n-other", min=0, help="Rows of the other forms (first in file order) in the selection set"),
    keep_first: int = typer.Option(500, "--keep-first", min=0, help="The first N rows (used for selection before) are never held back"),
):
    """Split a dev file into a selection set and a held-back set (fixed rule: by id)."""

    try:
        n_select, n_hold = split_dev(
            input_path, select_path, holdout_path, field=field,
            holdout_prefix=holdout_prefix, n_holdout=n_holdout, n_other=n_other,
            keep_first=keep_first,
        )  # fmt: skip
    except ValueError as e:
        msg.fail(str(e), exits=1)
    msg.good(f"{n_select} docs -> {select_path}, {n_hold} held back -> {holdout_path}")

"""Convert JSONL summarization data (e.g. CNN/DailyMail) into a spaCy ``DocBin``.

Each input line is a JSON object with an article (``text_field``), a reference
summary (``summary_field``: a list of sentences or one string) and optionally
an id (``id_field``). Each written ``Doc`` carries:

* sentence boundaries, set by the segmentation pipeline;
* ``doc.spans[SPANS_KEY]``: the greedy ROUGE oracle sentences (each span one
  full sentence, in document order; possibly an empty group);
* ``doc.user_data[REFERENCE_KEY]``: the reference summary as a list of sentences;
* ``doc.user_data["bertsum_id"]``: the record's id as a string, when present;
* ``doc.user_data["bertsum_fields"]``: the values of ``keep_fields`` (e.g.
  ``text_form`` or ``category``), for evaluation broken down by them;
* ``doc.cats``: with ``cats_field`` (e.g. ``category``), one-hot over the
  values that field takes in the input file, for a ``textcat`` component.

Malformed lines are never dropped silently: they are reported with their line
number, and either skipped (``on_error="skip"``) or raise (``on_error="fail"``).
"""
import sys
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any, Deque, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import spacy
import typer
from spacy.language import Language
from spacy.tokens import DocBin
from tqdm import tqdm
from wasabi import msg

from ..errors import Errors
from ..oracle import greedy_oracle
from ..util import FIELDS_KEY, REFERENCE_KEY, SPANS_KEY, has_sentences
from ._jsonl import InputReadError, read_jsonl
from ._util import app

__all__ = ["ConvertStats", "read_jsonl", "load_segmenter", "convert", "ID_KEY", "FIELDS_KEY"]

ID_KEY = "bertsum_id"
# DocBin's default attrs already include SENT_START; listed explicitly so the
# sentence boundaries survive whatever the default becomes.
# Only what training and evaluation read: the words and the sentence starts
# (whitespace is always kept). spaCy's default 13 attributes cost 4x the
# memory: converting the 39k CNN/DM training articles peaked at 15 GB RSS.
DOCBIN_ATTRS = ("ORTH", "SENT_START")


class OnError(str, Enum):
    """What :func:`convert` does with a malformed line."""

    skip = "skip"
    fail = "fail"


@dataclass
class ConvertStats:
    """What :func:`convert` did: docs written, lines skipped, one message per bad line."""

    written: int = 0
    skipped: int = 0
    errors: List[str] = field(default_factory=list)


def load_segmenter(nlp_name_or_pipeline: Union[str, Path, Language] = "sentencizer") -> Language:
    """The pipeline that segments articles into sentences.

    ``"sentencizer"``: ``spacy.blank("en")`` plus the rule-based ``sentencizer``
    and ``quote_boundaries``, the segmentation of the shipped pipeline.
    A ``Language`` is used as is; anything else is passed to ``spacy.load``.
    Raises ValueError (E073) if the pipeline does not set sentence boundaries.
    """
    if isinstance(nlp_name_or_pipeline, Language):
        nlp = nlp_name_or_pipeline
    elif str(nlp_name_or_pipeline) == "sentencizer":
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("quote_boundaries")
    else:
        nlp = spacy.load(nlp_name_or_pipeline)
    probe = nlp("This is a first sentence. And this is a second one.")
    if not has_sentences(probe):
        raise ValueError(Errors.E073.format(name=nlp_name_or_pipeline, components=nlp.pipe_names))
    return nlp


def _check_record(
    obj: Any, text_field: str, summary_field: str
) -> Tuple[Optional[str], Optional[Union[str, List[str]]], Optional[str]]:
    """Validate one parsed line: ``(article, summary, None)`` or ``(None, None, problem)``."""
    if isinstance(obj, InputReadError):
        return None, None, str(obj)
    if isinstance(obj, Exception):
        return None, None, f"invalid JSON ({obj})"
    if not isinstance(obj, dict):
        return None, None, f"expected a JSON object, got {type(obj).__name__}"
    if text_field not in obj:
        return None, None, f"missing field '{text_field}'"
    text = obj[text_field]
    if not isinstance(text, str):
        return None, None, f"field '{text_field}' must be a string, got {type(text).__name__}"
    if not text.strip():
        return None, None, f"empty '{text_field}'"
    if summary_field not in obj:
        return None, None, f"missing field '{summary_field}'"
    summary = obj[summary_field]
    if isinstance(summary, str):
        if not summary.strip():
            return None, None, f"empty '{summary_field}'"
        return text, summary, None
    if isinstance(summary, list):
        if not all(isinstance(s, str) for s in summary):
            return None, None, f"field '{summary_field}' must be a string or a list of strings"
        sents = [s.strip() for s in summary if s.strip()]
        if not sents:
            return None, None, f"empty '{summary_field}'"
        return text, sents, None
    return None, None, (
        f"field '{summary_field}' must be a string or a list of strings, "
        f"got {type(summary).__name__}"
    )


def _field_values(input_path: Union[str, Path], name: str) -> List[str]:
    """The values (as strings, sorted) that the field ``name`` takes in the
    JSON objects of ``input_path``."""
    values = {str(obj[name]) for _, obj in read_jsonl(input_path) if isinstance(obj, dict) and obj.get(name) is not None}
    return sorted(values)


def _split_summary(nlp: Language, summary: str) -> List[str]:
    """Split a summary string into sentences: on line breaks, then with ``nlp``."""
    sents: List[str] = []
    for line in summary.splitlines():
        if line.strip():
            sents.extend(s.text.strip() for s in nlp(line.strip()).sents if s.text.strip())
    return sents


def convert(
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    text_field: str = "article",
    summary_field: str = "highlights",
    id_field: str = "id",
    nlp_name_or_pipeline: Union[str, Path, Language] = "sentencizer",
    max_oracle_sents: int = 3,
    limit: Optional[int] = None,
    skip: int = 0,
    n_process: int = 1,
    batch_size: int = 64,
    on_error: str = "skip",
    show_progress: bool = True,
    keep_fields: Sequence[str] = (),
    cats_field: Optional[str] = None,
) -> ConvertStats:
    """Convert a JSONL(.gz/.xz) file into a ``.spacy`` DocBin with oracle labels.

    limit: the most docs to write (None: all).
    skip: leave out the first ``skip`` records of the input (e.g. to take a
        later part of a file whose sources come in blocks).
    on_error: "skip" records and warns about a malformed line; "fail" raises
        ValueError (E074) naming the line and the problem.
    keep_fields: input fields stored on each doc (as strings, under
        ``doc.user_data[FIELDS_KEY]``; a missing field is stored as None).
    cats_field: an input field holding each record's class (e.g. the BBC
        ``category``): ``doc.cats`` is set one-hot over the values it takes
        in the input file; a record without it is a malformed line.
    Returns a :class:`ConvertStats`.
    """
    choices = [choice.value for choice in OnError]
    if on_error not in choices:
        raise ValueError(Errors.E054.format(name="on_error", choices=", ".join(choices), value=on_error))
    if limit is not None and limit < 0:
        raise ValueError(Errors.E010.format(name="limit", value=limit))
    if skip < 0:
        raise ValueError(Errors.E010.format(name="skip", value=skip))
    nlp = load_segmenter(nlp_name_or_pipeline)
    stats = ConvertStats()
    labels = _field_values(input_path, cats_field) if cats_field else []
    # Per article sent to nlp.pipe, in order: (line_no, reference sentences, id, fields, class).
    pending: Deque[Tuple[int, List[str], Optional[str], Dict[str, Optional[str]], Optional[str]]] = deque()
    bar = tqdm(
        total=limit, unit="doc", desc="convert", file=sys.stderr,
        disable=not show_progress, dynamic_ncols=True,
    )  # fmt: skip

    def report(line_no: int, problem: str) -> None:
        if on_error == "fail":
            raise ValueError(Errors.E074.format(path=input_path, line=line_no, problem=problem))
        message = f"line {line_no}: {problem}"
        stats.skipped += 1
        stats.errors.append(message)
        # Through tqdm, so the warning does not garble the progress bar.
        warning = msg.text(f"Skipping {message}", color="yellow", icon="warn", no_print=True)
        tqdm.write(str(warning), file=sys.stdout)

    def articles() -> Iterator[str]:
        n_yielded = 0
        for n_read, (line_no, obj) in enumerate(read_jsonl(input_path)):
            if n_read < skip:
                continue
            if limit is not None and n_yielded >= limit:
                return
            text, summary, problem = _check_record(obj, text_field, summary_field)
            if problem is not None:
                report(line_no, problem)
                continue
            if isinstance(summary, str):
                summary = _split_summary(nlp, summary)
                if not summary:
                    report(line_no, f"empty '{summary_field}'")
                    continue
            doc_id = obj.get(id_field)
            fields = {f: None if obj.get(f) is None else str(obj[f]) for f in keep_fields}
            label = None if not cats_field or obj.get(cats_field) is None else str(obj[cats_field])
            if cats_field and label is None:
                report(line_no, f"missing field '{cats_field}'")
                continue
            pending.append((line_no, summary, None if doc_id is None else str(doc_id), fields, label))
            n_yielded += 1
            yield text

    doc_bin = DocBin(attrs=DOCBIN_ATTRS, store_user_data=True)
    try:
        if limit != 0:
            for doc in nlp.pipe(articles(), n_process=n_process, batch_size=batch_size):
                line_no, reference, doc_id, fields, label = pending.popleft()
                if not has_sentences(doc):
                    raise ValueError(Errors.E075.format(path=input_path, line=line_no))
                sents = list(doc.sents)
                chosen = greedy_oracle([s.text for s in sents], reference, max_oracle_sents)
                doc.spans[SPANS_KEY] = [sents[i] for i in chosen]
                doc.user_data[REFERENCE_KEY] = list(reference)
                if doc_id is not None:
                    doc.user_data[ID_KEY] = doc_id
                if fields:
                    doc.user_data[FIELDS_KEY] = fields
                if label is not None:
                    doc.cats = {value: float(value == label) for value in labels}
                doc_bin.add(doc)
                stats.written += 1
                bar.update(1)
    finally:
        bar.close()
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    doc_bin.to_disk(output_path)
    msg.good(f"Wrote {stats.written} docs to {output_path}")
    if stats.skipped:
        msg.warn(f"Skipped {stats.skipped} malformed line(s) of {input_path}")
    else:
        msg.info("Skipped 0 lines")
    return stats


# -- command line ------------------------------------------------------------


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="JSONL file (.jsonl, .jsonl.gz or .jsonl.xz)", exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help="Output .spacy file (DocBin)"),
    text_field: str = typer.Option("article", "--text-field", help="Field with the document text"),
    summary_field: str = typer.Option("highlights", "--summary-field", help="Field with the reference summary (list of sentences or a string)"),
    id_field: str = typer.Option("id", "--id-field", help="Optional field with a document id"),
    segmenter: str = typer.Option("sentencizer", "--segmenter", help="'sentencizer' (rule-based, opening quotes moved as the shipped pipeline does) or a spaCy pipeline name/path that sets sentences"),
    max_oracle_sents: int = typer.Option(3, "--max-oracle-sents", help="Most sentences in the greedy ROUGE oracle"),
    limit: int = typer.Option(0, "--limit", min=0, help="Write at most this many docs (0: all)"),
    skip: int = typer.Option(0, "--skip", min=0, help="Leave out the first N records of the input"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for sentence segmentation"),
    on_error: OnError = typer.Option("skip", "--on-error", help="'skip' (report and skip malformed lines) or 'fail' (stop at the first)"),
    keep_fields: str = typer.Option("", "--keep-fields", help="Comma-separated input fields to keep on each doc (e.g. text_form), for `evaluate --by`"),
    cats_field: Optional[str] = typer.Option(None, "--cats-field", help="Input field with each record's class (e.g. category): set doc.cats one-hot over its values, for textcat"),
):
    """Convert article/summary JSONL into a DocBin with oracle labels."""
    output_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        stats = convert(
            input_path,
            output_path,
            text_field=text_field,
            summary_field=summary_field,
            id_field=id_field,
            nlp_name_or_pipeline=segmenter,
            max_oracle_sents=max_oracle_sents,
            limit=limit or None,
            skip=skip,
            n_process=n_process,
            on_error=on_error.value,
            keep_fields=[f.strip() for f in keep_fields.split(",") if f.strip()],
            cats_field=cats_field or None,
        )
    except ValueError as e:
        msg.fail(str(e), exits=1)
    if stats.written == 0:
        msg.fail(f"No docs written from {input_path}", exits=1)

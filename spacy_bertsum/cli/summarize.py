"""Batch summarization: ``spacy-bertsum summarize`` (also ``python -m spacy_bertsum summarize``).

Reads documents from a JSONL file (plain, ``.gz`` or ``.xz``), a directory or
glob of ``.txt`` files, or stdin, runs a pipeline with a ``bertsum`` component
over them and writes one JSON line per input row::

    {"id": ..., "summary": str, "summary_sents": [str], "scores": [float per sentence]}

Bad input never loses data: a row that cannot be summarized (invalid JSON, a
missing or non-string text field, a text longer than ``max_chars``, a doc on
which the pipeline raises) gets an error row instead and the run goes on::

    {"id": ..., "error": "line N: <what is wrong>", "summary": null, "summary_sents": [], "scores": []}

The texts go through one ``nlp.pipe(..., as_tuples=True)`` with an error
handler (``nlp.set_error_handler``) that records which doc failed and why:
components retry a failing batch doc by doc, so only the culprit is left out
of the stream, and it gets its error row in its place. Everything streams:
rows are written in input order and flushed after every ``batch_size`` rows;
``resume=True`` keeps the complete rows of an existing output and skips as
many input rows. SIGINT and SIGTERM stop the run (and the worker processes of
``n_process > 1``) within seconds, leaving complete rows to resume from.
"""
import os
import sys
from collections import deque
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import typer
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm
from wasabi import msg

from ..errors import Errors
from ..loading import find_bertsum as _find_bertsum
from ..loading import load_model
from ..util import SPANS_KEY, get_sent_scores
from ._inputs import (DEFAULT_MAX_CHARS, Record, StdinFormat, UsageError, _resolve_input, check_positive,
                      check_stdin_format, checked_output, error_row, input_files, iter_records)
from ._jsonl import LineWriter, OutputLocked, describe, scan_output
from ._processes import single_threaded_torch, stop_on_signals, stop_workers
from ._ray_engine import Engine, pick_engine
from ._util import app

__all__ = [
    "Record",
    "SummarizeStats",
    "UsageError",
    "error_row",
    "find_bertsum",
    "iter_records",
    "load_pipeline",
    "summarize",
    "summarize_records",
]

#: The most documents the --html view shows (the rest are counted in a note).
DEFAULT_HTML_DOCS = 100
SELECTION_KEYS = ("top_k", "ratio", "max_words", "trigram_blocking", "min_words")
TEST_TEXT = "This is a test. It checks that the pipeline can summarize."


@dataclass
class SummarizeStats:
    """What :func:`summarize` did. ``rows`` and ``failed`` count the whole
    output, including the ``resumed`` rows an interrupted run had written."""

    rows: int = 0
    failed: int = 0
    resumed: int = 0
    output: str = "stdout"

    def summary_line(self) -> str:
        kept = f" ({self.resumed} kept from the existing output)" if self.resumed else ""
        return f"{self.rows} rows, {self.failed} failed{kept} -> {self.output}"


# -- rows -------------------------------------------------------------------


def _doc_row(doc_id: Any, doc: Doc, spans_key: str) -> Dict[str, Any]:
    sents = [span.text.strip() for span in doc.spans[spans_key]] if spans_key in doc.spans else []
    scores = get_sent_scores(doc, spans_key) or []
    return {"id": doc_id, "summary": " ".join(sents), "summary_sents": sents, "scores": [float(s) for s in scores]}


# -- the pipeline ---------------------------------------------------------------


def load_pipeline(
    model: Optional[Union[str, Path, Language]] = None, gpu_id: int = -1, *, int8: bool = False
) -> Language:
    """The pipeline to summarize with (``spacy_bertsum.loading.load_model``:
    a ``Language``, a path, an installed package, a pipeline shipped with
    spacy-bertsum; None: ``en_bertsum_news``), optionally on a GPU or with
    its encoder quantized to int8 (CPU only). Raises UsageError."""
    if int8 and gpu_id is not None and gpu_id >= 0:
        raise UsageError(Errors.E038)
    try:
        nlp = load_model(model, gpu_id=gpu_id, int8=int8)
    except Exception as e:
        raise UsageError(Errors.E055.format(model=model or "en_bertsum_news", err=describe(e))) from e
    find_bertsum(nlp)
    return nlp


def check_pipeline(
    model: Optional[Union[str, Path, Language]],
    gpu_id: int = -1,
    *,
    int8: bool = False,
    selection: Optional[Dict[str, Any]] = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Tuple[Language, str, Dict[str, Any]]:
    """:func:`load_pipeline`, then summarize a test text with the
    ``selection`` overrides, so that a pipeline that cannot summarize is a
    UsageError (E059) before the first row. Returns the pipeline (with
    ``nlp.max_length = max_chars``), its bertsum component's name and the
    overrides without None values."""
    nlp = load_pipeline(model, gpu_id, int8=int8)
    name = find_bertsum(nlp)
    overrides = _selection_overrides(nlp, name, selection)
    nlp.max_length = max_chars
    try:
        nlp(TEST_TEXT, component_cfg={name: dict(overrides)})
    except Exception as e:
        raise UsageError(Errors.E059.format(err=describe(e))) from e
    return nlp, name, overrides


def find_bertsum(nlp: Language) -> str:
    """The name of the (enabled) component made by the ``bertsum`` factory."""
    try:
        return _find_bertsum(nlp)
    except ValueError as e:
        raise UsageError(str(e)) from e


def _selection_overrides(nlp: Language, name: str, selection: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    overrides = {k: v for k, v in (selection or {}).items() if v is not None}
    unknown = set(overrides) - set(SELECTION_KEYS)
    if unknown:
        raise UsageError(Errors.E012.format(names=sorted(unknown), allowed=list(SELECTION_KEYS)))
    config = getattr(nlp.get_pipe(name), "selection", None)
    if config is not None and overrides:
        try:
            config.updated(**overrides)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from e
    return overrides


class _ErrorRecorder:
    """An error handler (``nlp.set_error_handler``) that keeps, per record
    number (``doc._context`` under ``as_tuples``), the error its doc raised.
    A class, not a closure, so that worker processes can unpickle it; their
    records stay in the worker (such a doc is re-run here for its message)."""

    def __init__(self) -> None:
        self.errors: Dict[int, BaseException] = {}

    def __call__(self, proc_name, proc, docs, error) -> None:
        for doc in docs or []:
            number = getattr(doc, "_context", None)
            if number is not None:
                self.errors[number] = error


@contextmanager
def _error_handler(nlp: Language, handler: Callable) -> Iterator[None]:
    """``nlp.set_error_handler(handler)`` for the duration, then the
    handlers as they were."""
    before = {name: proc.get_error_handler() for name, proc in nlp.pipeline if hasattr(proc, "get_error_handler")}
    default = nlp.default_error_handler
    nlp.set_error_handler(handler)
    try:
        yield
    finally:
        nlp.default_error_handler = default
        for name, proc in nlp.pipeline:
            if name in before:
                proc.set_error_handler(before[name])


def summarize_records(
    nlp: Language,
    records: Iterable[Record],
    *,
    selection: Optional[Dict[str, Any]] = None,
    batch_size: int = 32,
    n_process: int = 1,
    on_doc: Optional[Callable[[Doc], None]] = None,
) -> Iterator[Dict[str, Any]]:
    """One output row per record, in order. The texts go through one
    ``nlp.pipe(..., as_tuples=True)``; a doc that a component fails on is
    left out of the stream by the error handler and gets an error row in its
    place. ``on_doc`` is called with each summarized Doc."""
    name = find_bertsum(nlp)
    spans_key = getattr(nlp.get_pipe(name), "spans_key", SPANS_KEY)
    overrides = _selection_overrides(nlp, name, selection)
    recorder = _ErrorRecorder()
    pending: Deque[Tuple[int, Record]] = deque()  # records taken from the input, not yet output
    base = iter(records)

    def texts() -> Iterator[Tuple[str, int]]:
        for number, record in enumerate(base):
            pending.append((number, record))
            if record.text is not None:
                yield record.text, number

    def row_of_missing(number: int, record: Record) -> Dict[str, Any]:
        if record.text is None:
            return record.row  # type: ignore[return-value]
        error = recorder.errors.pop(number, None)
        if error is None:  # failed in a worker process (or nowhere): run it here for the message
            try:
                doc = nlp(record.text, component_cfg={name: dict(overrides)})
            except Exception as e:
                error = e
            else:
                if on_doc is not None:
                    on_doc(doc)
                return _doc_row(record.id, doc, spans_key)
        return error_row(record.id, record.where, f"summarization failed ({describe(error)})")

    with _error_handler(nlp, recorder):
        # component_cfg is copied: Language.pipe adds "batch_size" to it.
        stream = nlp.pipe(texts(), as_tuples=True, batch_size=batch_size, n_process=n_process,
                          component_cfg={name: dict(overrides)})
        try:
            for doc, number in stream:
                while pending[0][0] != number:
                    yield row_of_missing(*pending.popleft())
                record = pending.popleft()[1]
                if on_doc is not None:
                    on_doc(doc)
                yield _doc_row(record.id, doc, spans_key)
        finally:
            stream.close()
        while pending:
            yield row_of_missing(*pending.popleft())


def summarize(
    input: Union[str, Path],
    output: Optional[Union[str, Path]] = None,
    *,
    model: Optional[Union[str, Path, Language]] = None,
    text_field: str = "text",
    id_field: str = "id",
    stdin_format: str = "jsonl",
    selection: Optional[Dict[str, Any]] = None,
    batch_size: int = 32,
    n_process: int = 1,
    gpu_id: int = -1,
    max_chars: int = DEFAULT_MAX_CHARS,
    resume: bool = False,
    show_progress: bool = True,
    stdin: Optional[IO[bytes]] = None,
    stdout: Optional[IO[bytes]] = None,
    html: Optional[Union[str, Path]] = None,
    html_max_docs: int = DEFAULT_HTML_DOCS,
    int8: bool = False,
) -> SummarizeStats:
    """Summarize every row of ``input`` into JSONL at ``output`` (None or "-": stdout).

    model: a ``Language``, a pipeline path or package name, or None for the
        package's shipped model (see ``spacy_bertsum.loading``).
    selection: overrides of the component's selection settings (top_k, ratio,
        max_words, trigram_blocking, min_words); None values are ignored.
    max_chars: longer texts get an error row; ``nlp.max_length`` is set to it.
    n_process: processes for ``nlp.pipe``; above 1, torch is set to one thread
        (in this process too: the setting stays).
    html: also write the HTML view (``spacy_bertsum.render``) of the
        summarized docs of this run to this file, capped at ``html_max_docs``
        with a "showing N of M" note.
    resume: continue an interrupted run: keep the complete lines of the
        existing output, skip as many input rows, append the rest.
    int8: quantize the encoder to int8 first (CPU only, not with gpu_id >= 0;
        see spacy_bertsum.quantize). A ``Language`` passed as ``model`` is
        quantized in place.
    Raises UsageError (before writing anything) for bad options, a missing
    input or a model that cannot be loaded or cannot summarize; KeyboardInterrupt
    on SIGINT or SIGTERM, after closing the output with complete rows.
    """
    check_positive(batch_size=batch_size, n_process=n_process, max_chars=max_chars)
    check_stdin_format(stdin_format)
    kind, source = _resolve_input(input)  # fail early on a missing input, before loading the model
    out_path = checked_output(output, input_files(kind, source), resume=resume, html=html)
    if n_process > 1:
        single_threaded_torch()
    nlp, name, overrides = check_pipeline(model, gpu_id, int8=int8, selection=selection, max_chars=max_chars)

    stats = SummarizeStats(output=str(out_path) if out_path is not None else "stdout")
    append = False
    if resume and out_path.exists():  # type: ignore[union-attr]
        stats.resumed, stats.failed = scan_output(out_path)  # type: ignore[arg-type]
        stats.rows = stats.resumed
        append = True
    records = iter_records(input, text_field=text_field, id_field=id_field, stdin_format=stdin_format,
                           max_chars=max_chars, stdin=stdin, skip=stats.resumed)
    total = max(len(source) - stats.resumed, 0) if kind == "txt" else None
    try:
        sink = LineWriter(out_path, append, stdout)
    except OutputLocked as e:
        raise UsageError(str(e)) from e
    bar = tqdm(total=total, unit=" docs", desc="summarize", file=sys.stderr,
               disable=not show_progress, dynamic_ncols=True)
    html_docs: List[Doc] = []
    n_html = 0

    def keep_for_html(doc: Doc) -> None:
        nonlocal n_html
        n_html += 1
        if len(html_docs) < html_max_docs:
            html_docs.append(doc)

    rows = summarize_records(nlp, records, selection=overrides, batch_size=batch_size, n_process=n_process,
                             on_doc=keep_for_html if html is not None else None)
    try:
        with stop_on_signals():
            for n_new, row in enumerate(rows, 1):
                sink.write(row)
                stats.rows += 1
                if row.get("error") is not None:
                    stats.failed += 1
                if n_new % batch_size == 0:
                    sink.flush()
                bar.update(1)
    except KeyboardInterrupt:
        stop_workers()
        rows.close()
        raise
    finally:
        bar.close()
        sink.close()
    if html is not None:
        from ..render import render_docs

        spans_key = getattr(nlp.get_pipe(name), "spans_key", SPANS_KEY)
        markup = render_docs(html_docs, n_html, page=True, spans_key=spans_key, title="spacy-bertsum summaries")
        Path(html).parent.mkdir(parents=True, exist_ok=True)
        Path(html).write_text(markup, encoding="utf8")
    return stats


# -- command line ------------------------------------------------------------


def _fail(message: str, exits: int) -> None:
    """``msg.fail`` on stderr: stdout carries the rows."""
    with redirect_stdout(sys.stderr):
        msg.fail(message, exits=exits)


@app.command("summarize")
def summarize_cli(
    input: str = typer.Argument(..., help="JSONL file (.jsonl/.gz/.xz), a .txt file, a directory or glob of .txt files, or - for stdin"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output JSONL file (default or -: stdout)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline with a bertsum component: a path or package name"),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field with the document text"),
    id_field: str = typer.Option("id", "--id-field", help="JSONL field with the document id (default: the line number)"),
    stdin_format: StdinFormat = typer.Option("jsonl", "--stdin-format", help="For input -: 'jsonl', or 'txt' (each line is one document)"),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=0, help="Most sentences per summary"),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="Select ceil(ratio * n_sents) sentences instead of top_k"),
    max_words: Optional[int] = typer.Option(None, "--max-words", min=0, help="Word budget per summary"),
    no_trigram_blocking: bool = typer.Option(False, "--no-trigram-blocking", help="Allow sentences sharing a trigram"),
    min_words: Optional[int] = typer.Option(None, "--min-words", min=0, help="Shorter sentences are not eligible"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Docs per nlp.pipe batch (and per output flush)"),
    n_process: int = typer.Option(1, "--n-process", min=1, help="Processes for nlp.pipe"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
    max_chars: int = typer.Option(5_000_000, "--max-chars", min=1, help="Longer texts get an error row (sets nlp.max_length)"),
    resume: bool = typer.Option(False, "--resume", help="Keep the complete rows of an existing --output and append the rest"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar"),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML view of the summarized docs here"),
    html_max_docs: int = typer.Option(100, "--html-max-docs", min=0, help="Most docs in the --html view (a note counts the rest)"),
    int8: bool = typer.Option(False, "--int8", help="Quantize the encoder to int8 (dynamic; CPU only): faster, slightly different scores"),
    engine: Engine = typer.Option("local", "--engine", help="local: this machine (--n-process); ray: a Ray cluster (pip install 'spacy-bertsum[ray]'); also reads and writes .parquet"),
    address: Optional[str] = typer.Option(None, "--address", help="--engine ray: the cluster to join (default: start one on 127.0.0.1, stopped at the end)"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, help="--engine ray: pipeline copies (actors), one CPU each (default: one per CPU)"),
):
    """Summarize documents into JSONL: one row per input row, error rows for bad ones."""

    selection = {"top_k": top_k, "ratio": ratio, "max_words": max_words, "min_words": min_words}
    if no_trigram_blocking:
        selection["trigram_blocking"] = False
    try:
        stats = pick_engine(engine, address, workers)(
            input,
            output,
            model=model,
            text_field=text_field,
            id_field=id_field,
            stdin_format=stdin_format.value,
            selection=selection,
            batch_size=batch_size,
            n_process=n_process,
            gpu_id=gpu_id,
            max_chars=max_chars,
            resume=resume,
            show_progress=not quiet,
            html=html,
            html_max_docs=html_max_docs,
            int8=int8,
        )
    except UsageError as e:
        _fail(str(e), exits=2)
    except KeyboardInterrupt:
        where = f" --output {output}" if output not in (None, "-") else ""
        typer.echo(f"Interrupted: the complete rows are kept; run again with --resume{where} to finish.", err=True)
        if n_process > 1:
            # The output is closed. spaCy's queue threads may still block on
            # pipes to the killed workers, which would hang the interpreter's
            # exit: leave at once.
            sys.stderr.flush()
            os._exit(130)
        raise typer.Exit(130)
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`)
        try:  # no second BrokenPipeError when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise typer.Exit(1)
    typer.echo(stats.summary_line(), err=True)
    raise typer.Exit(1 if stats.failed else 0)

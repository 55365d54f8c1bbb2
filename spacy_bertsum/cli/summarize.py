"""Batch summarization: ``spacy-bertsum summarize`` (also ``python -m spacy_bertsum summarize``).

Reads documents from a JSONL file (plain, ``.gz`` or ``.xz``), a directory or
glob of ``.txt`` files, or stdin, runs a pipeline with a ``bertsum`` component
over them and writes one JSON line per input row::

    {"id": ..., "summary": str, "summary_sents": [str], "scores": [float per sentence]}

Bad input never loses data: a row that cannot be summarized (invalid JSON, a
missing or non-string text field, a text longer than ``max_chars``, a doc on
which the pipeline raises) gets an error row instead and the run goes on::

    {"id": ..., "error": "line N: <what is wrong>", "summary": null, "summary_sents": [], "scores": []}

Everything streams: input rows are read lazily, output rows are written in
input order and flushed after every ``batch_size`` rows, and ``resume=True``
continues an interrupted run where its output file stops.
"""

import typer

from ._util import app
import glob
import gzip
import json
import lzma
import os
import sys
import zlib
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Callable, Deque, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import spacy
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from ..loading import load, load_model
from ..util import SPANS_KEY, get_sent_scores

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

DEFAULT_MAX_CHARS = 5_000_000
#: The most documents the --html view shows (the rest are counted in a note).
DEFAULT_HTML_DOCS = 100
STDIN_FORMATS = ("jsonl", "txt")
SELECTION_KEYS = ("top_k", "ratio", "max_words", "trigram_blocking", "min_words")
_MAX_ERROR_CHARS = 500


class UsageError(Exception):
    """A problem with the options, the input path or the model: nothing was run
    (the CLI exits with code 2)."""


@dataclass
class Record:
    """One input row: ``text`` to summarize, or an already final ``row``
    (an error row, or the empty summary of an empty text)."""

    id: Any
    where: str  # "line 3", or a file name: the prefix of error messages
    text: Optional[str] = None
    row: Optional[Dict[str, Any]] = None
    #: re-run only to rebuild a batch exactly (resume): its row is not output
    replay: bool = False


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


def error_row(doc_id: Any, where: str, problem: str) -> Dict[str, Any]:
    return {
        "id": doc_id,
        "error": f"{where}: {problem}",
        "summary": None,
        "summary_sents": [],
        "scores": [],
    }


def _empty_row(doc_id: Any) -> Dict[str, Any]:
    return {"id": doc_id, "summary": "", "summary_sents": [], "scores": []}


def _doc_row(doc_id: Any, doc: Doc, spans_key: str) -> Dict[str, Any]:
    sents = [span.text.strip() for span in doc.spans[spans_key]] if spans_key in doc.spans else []
    scores = get_sent_scores(doc, spans_key) or []
    return {
        "id": doc_id,
        "summary": " ".join(sents),
        "summary_sents": sents,
        "scores": [float(s) for s in scores],
    }


def _dumps(row: Dict[str, Any]) -> bytes:
    """One strict JSON line (no NaN/Infinity), UTF-8. Lone surrogates (from
    ``\\udXXX`` escapes in the input) cannot be UTF-8 encoded: such a row is
    written ASCII-escaped."""
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    try:
        return line.encode("utf8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(row, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (after links); False if one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _clean_text(text: str) -> str:
    """Replace lone surrogates, which the tokenizers cannot handle."""
    try:
        text.encode("utf8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf8", errors="replace").decode("utf8")


def _describe(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".strip()
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + " ..."
    return " ".join(text.split())


# -- input --------------------------------------------------------------------


def _open_binary(path: Path) -> IO[bytes]:
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def _decoded_lines(lines: Iterable[bytes]) -> Iterator[Tuple[int, str]]:
    """``(line_number, text)`` for every line, decoded leniently (invalid UTF-8
    becomes U+FFFD), without the line break; a UTF-8 BOM is dropped. Line
    breaks are ``\\n``, ``\\r\\n`` or a lone ``\\r`` (old Mac files), as in
    Python's universal newlines."""
    line_no = 0
    for raw in lines:
        text = raw.decode("utf8", errors="replace")
        if line_no == 0:
            text = text.lstrip("\ufeff")
        text = text[:-1] if text.endswith("\n") else text
        text = text[:-1] if text.endswith("\r") else text
        for part in text.split("\r") if "\r" in text else [text]:
            line_no += 1
            yield line_no, part


def _jsonl_record(line_no: int, line: str, text_field: str, id_field: str, max_chars: int) -> Record:
    where = f"line {line_no}"
    try:
        obj = json.loads(line)
    except Exception as e:  # ValueError, or RecursionError on absurd nesting
        return Record(line_no, where, row=error_row(line_no, where, f"invalid JSON ({_describe(e)})"))
    if not isinstance(obj, dict):
        problem = f"expected a JSON object, got {type(obj).__name__}"
        return Record(line_no, where, row=error_row(line_no, where, problem))
    doc_id = obj.get(id_field)
    if doc_id is None:
        doc_id = line_no
    if text_field not in obj:
        return Record(doc_id, where, row=error_row(doc_id, where, f"missing field '{text_field}'"))
    text = obj[text_field]
    if not isinstance(text, str):
        problem = f"field '{text_field}' must be a string, got {type(text).__name__}"
        return Record(doc_id, where, row=error_row(doc_id, where, problem))
    return _text_record(doc_id, where, text, max_chars)


def _text_record(doc_id: Any, where: str, text: str, max_chars: int) -> Record:
    if not text.strip():
        return Record(doc_id, where, row=_empty_row(doc_id))
    if len(text) > max_chars:
        return Record(doc_id, where, row=error_row(doc_id, where, _too_long(len(text), max_chars)))
    return Record(doc_id, where, text=_clean_text(text))


def _too_long(n_chars: int, max_chars: int) -> str:
    return f"text has {n_chars} characters, more than the limit of {max_chars} (--max-chars)"


def _txt_file_record(path: Path, max_chars: int) -> Record:
    name = path.name
    try:
        size = path.stat().st_size
        if size > 4 * max_chars:  # UTF-8: at most 4 bytes per character
            problem = f"file has {size} bytes, more than {max_chars} characters (--max-chars)"
            return Record(name, name, row=error_row(name, name, problem))
        data = path.read_bytes()
    except OSError as e:
        return Record(name, name, row=error_row(name, name, f"cannot read the file ({_describe(e)})"))
    try:
        text = data.decode("utf8")
    except UnicodeDecodeError as e:
        problem = f"not UTF-8 text (byte {e.start}): convert the file to UTF-8 (e.g. iconv -f latin1 -t utf-8)"
        return Record(name, name, row=error_row(name, name, problem))
    return _text_record(name, name, text.lstrip("\ufeff"), max_chars)


def _resolve_input(input: Union[str, Path]) -> Tuple[str, Any]:
    """``("stdin", None)``, ``("jsonl", path)`` or ``("txt", [paths])``."""
    spec = str(input)
    if spec == "-":
        return "stdin", None
    path = Path(spec)
    if path.is_dir():
        # A broken link still gets its (error) row: nothing is dropped silently.
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() == ".txt" and (p.is_file() or p.is_symlink())),
            key=lambda p: p.name,
        )
        if not files:
            raise UsageError(f"no .txt files in the directory {spec}")
        return "txt", files
    if path.is_file():
        if path.suffix.lower() == ".txt":
            return "txt", [path]
        try:
            path.open("rb").close()
        except OSError as e:
            raise UsageError(f"cannot read {spec}: {_describe(e)}") from e
        return "jsonl", path
    if any(ch in spec for ch in "*?["):
        matches = (Path(p) for p in glob.glob(spec, recursive=True))
        files = sorted((p for p in matches if p.suffix.lower() == ".txt" and p.is_file()), key=str)
        if not files:
            raise UsageError(f"no .txt files match {spec}")
        return "txt", files
    raise UsageError(f"input not found: {spec}")


def iter_records(
    input: Union[str, Path],
    *,
    text_field: str = "text",
    id_field: str = "id",
    stdin_format: str = "jsonl",
    max_chars: int = DEFAULT_MAX_CHARS,
    skip: int = 0,
    stdin: Optional[IO[bytes]] = None,
) -> Iterator[Record]:
    """The input rows as :class:`Record` objects, lazily and in order.

    input: a JSONL file (plain, .gz or .xz), a .txt file, a directory (its
        .txt files, sorted by name), a glob (the .txt files it matches, sorted
        by path), or "-" for stdin.
    stdin_format: for "-": "jsonl", or "txt" (each line is one document).
    skip: leave out the first ``skip`` rows without parsing them.
    stdin: a binary stream to read instead of ``sys.stdin``.
    """
    kind, source = _resolve_input(input)
    if kind == "txt":
        for path in islice(source, skip, None):
            yield _txt_file_record(path, max_chars)
        return
    if kind == "stdin" and stdin_format not in STDIN_FORMATS:
        raise UsageError(f"--stdin-format must be one of {', '.join(STDIN_FORMATS)}, got '{stdin_format}'")
    if kind == "stdin":
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream without a binary buffer
            stream = (line.encode("utf8", errors="surrogateescape") for line in sys.stdin)
        lines = _decoded_lines(stream)
        yield from _records_from_lines(lines, kind="txt" if stdin_format == "txt" else "jsonl",
                                       text_field=text_field, id_field=id_field, max_chars=max_chars, skip=skip)
        return
    with _open_binary(source) as f:
        yield from _records_from_lines(_decoded_lines(f), kind="jsonl", text_field=text_field,
                                       id_field=id_field, max_chars=max_chars, skip=skip)


def _records_from_lines(
    lines: Iterator[Tuple[int, str]], *, kind: str, text_field: str, id_field: str, max_chars: int, skip: int
) -> Iterator[Record]:
    if kind == "jsonl":  # blank lines are not rows (their numbers still count)
        lines = ((n, line) for n, line in lines if line.strip())
    last = 0
    try:
        for line_no, line in islice(lines, skip, None):
            last = line_no
            if kind == "txt":
                yield _text_record(line_no, f"line {line_no}", line, max_chars)
            else:
                yield _jsonl_record(line_no, line, text_field, id_field, max_chars)
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:  # truncated or corrupt .gz/.xz
        where = f"line {last + 1}"
        yield Record(last + 1, where, row=error_row(last + 1, where, f"cannot read the input past this point ({_describe(e)})"))


# -- the pipeline ---------------------------------------------------------------


def load_pipeline(
    model: Optional[Union[str, Path, Language]] = None, gpu_id: int = -1, *, int8: bool = False
) -> Language:
    """The pipeline to summarize with: a ``Language`` as is, the name of a
    pipeline shipped with spacy-bertsum, a path or package name through
    ``spacy.load``, or (None) the shipped ``en_bertsum_news`` through
    ``spacy_bertsum.load()``. Raises UsageError.

    int8: quantize the bertsum encoder to int8 (spacy_bertsum.quantize; CPU
        only, prediction only). A ``Language`` passed in is quantized in place.
    """
    _check_int8(int8, gpu_id)
    nlp = _load_pipeline(model, gpu_id)
    if int8:
        from ..quantize import quantize_encoder

        try:
            quantize_encoder(nlp, find_bertsum(nlp))
        except ValueError as e:
            raise UsageError(f"cannot quantize the pipeline to int8: {_describe(e)}") from e
    return nlp


def _check_int8(int8: bool, gpu_id: Optional[int]) -> None:
    if int8 and gpu_id is not None and gpu_id >= 0:
        raise UsageError("--int8 runs on the CPU only: drop --gpu-id (or --int8)")


def _load_pipeline(model: Optional[Union[str, Path, Language]], gpu_id: int) -> Language:
    if gpu_id is not None and gpu_id >= 0:
        try:
            spacy.require_gpu(gpu_id)
        except Exception as e:
            raise UsageError(f"cannot use GPU {gpu_id}: {_describe(e)}") from e
    if isinstance(model, Language):
        return model
    if model is None:
        try:
            return load()
        except Exception as e:
            raise UsageError(f"cannot load the shipped model: {_describe(e)}") from e
    try:
        return load_model(model)
    except Exception as e:
        raise UsageError(f"cannot load the pipeline '{model}': {_describe(e)}") from e


def find_bertsum(nlp: Language) -> str:
    """The name of the (enabled) component made by the ``bertsum`` factory."""
    for name in nlp.pipe_names:
        if nlp.get_pipe_meta(name).factory == "bertsum":
            return name
    raise UsageError(f"the pipeline has no bertsum component (components: {', '.join(nlp.pipe_names) or 'none'})")


def _selection_overrides(nlp: Language, name: str, selection: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    overrides = {k: v for k, v in (selection or {}).items() if v is not None}
    unknown = set(overrides) - set(SELECTION_KEYS)
    if unknown:
        raise UsageError(f"unknown selection setting(s) {sorted(unknown)}; allowed: {list(SELECTION_KEYS)}")
    pipe = nlp.get_pipe(name)
    config = getattr(pipe, "selection", None)
    if config is not None and overrides:
        try:
            config.updated(**overrides)
        except (TypeError, ValueError) as e:
            raise UsageError(str(e)) from e
    return overrides


def summarize_records(
    nlp: Language,
    records: Iterable[Record],
    *,
    selection: Optional[Dict[str, Any]] = None,
    batch_size: int = 32,
    n_process: int = 1,
    on_doc: Optional[Callable[[Doc], None]] = None,
) -> Iterator[Dict[str, Any]]:
    """One output row per record (except ``replay`` records), in order.

    Texts go through one streaming ``nlp.pipe``, in batches of ``batch_size``
    texts counted from the first record. If it raises, the unfinished texts
    of the failing batch are re-run one by one, so only the culprit gets an
    error row, and streaming restarts at the next batch. Batches are thus the
    same in every run over the same records, and so are the scores (a doc's
    scores can differ in the last float bit with the docs it is batched with).
    ``on_doc`` is called with each summarized Doc of an output row.
    """
    for record, row in _summarize(
        nlp, records, selection=selection, batch_size=batch_size, n_process=n_process,
        on_doc=on_doc,
    ):  # fmt: skip
        if not record.replay:
            yield row


def _summarize(
    nlp: Language,
    records: Iterable[Record],
    *,
    selection: Optional[Dict[str, Any]],
    batch_size: int,
    n_process: int,
    on_doc: Optional[Callable[[Doc], None]] = None,
) -> Iterator[Tuple[Record, Dict[str, Any]]]:
    name = find_bertsum(nlp)
    spans_key = getattr(nlp.get_pipe(name), "spans_key", SPANS_KEY)
    overrides = _selection_overrides(nlp, name, selection)
    base = iter(records)
    retry: Deque[Tuple[int, Record]] = deque()  # taken from `base`, not finished
    input_error: List[BaseException] = []
    n_texts = 0  # texts taken from `base`: each text's number fixes its batch

    def run_one(record: Record) -> Dict[str, Any]:
        try:
            doc = nlp(record.text, component_cfg={name: dict(overrides)})
            if on_doc is not None and not record.replay:
                on_doc(doc)
            return _doc_row(record.id, doc, spans_key)
        except Exception as e:
            return error_row(record.id, record.where, f"summarization failed ({_describe(e)})")

    while True:
        # (text number or -1, record) for each record fed to nlp.pipe, not yet output
        pending: Deque[Tuple[int, Record]] = deque()

        def feed() -> Iterator[str]:
            nonlocal n_texts
            while True:
                if retry:
                    item = retry.popleft()
                else:
                    if input_error:
                        return
                    try:
                        record = next(base, None)
                    except Exception as e:  # reading the input failed: stop, re-raise later
                        input_error.append(e)
                        return
                    if record is None:
                        return
                    number = -1
                    if record.text is not None:
                        number, n_texts = n_texts, n_texts + 1
                    item = (number, record)
                pending.append(item)
                if item[1].text is not None:
                    yield item[1].text

        # component_cfg is copied: Language.pipe adds "batch_size" to it.
        stream = nlp.pipe(feed(), batch_size=batch_size, n_process=n_process,
                          component_cfg={name: dict(overrides)})
        error: Optional[Exception] = None
        try:
            for doc in stream:
                while pending[0][1].text is None:
                    record = pending.popleft()[1]
                    yield record, record.row  # type: ignore[misc]
                record = pending.popleft()[1]
                if on_doc is not None and not record.replay:
                    on_doc(doc)
                yield record, _doc_row(record.id, doc, spans_key)
        except Exception as e:
            error = e
        finally:
            stream.close()
        if error is None:
            while pending:
                record = pending.popleft()[1]
                if record.text is None:
                    yield record, record.row  # type: ignore[misc]
                else:  # the pipeline returned fewer docs than it was given
                    yield record, run_one(record)
            if input_error:
                raise input_error[0]
            return
        texts = [number for number, record in pending if record.text is not None]
        if not texts:
            # No document was in flight: the pipeline itself is broken.
            raise RuntimeError(f"the pipeline failed outside any document: {_describe(error)}") from error
        error = None
        # Re-run the rest of the failing batch one by one; restart at the next batch.
        failing_batch = texts[0] // batch_size
        while pending and (pending[0][1].text is None or pending[0][0] // batch_size == failing_batch):
            record = pending.popleft()[1]
            yield record, (record.row if record.text is None else run_one(record))  # type: ignore[misc]
        retry.extendleft(reversed(pending))


def _skip_for_resume(records: Iterator[Record], n_rows: int, batch_size: int) -> Iterator[Record]:
    """Leave out the first ``n_rows`` records, but replay (as ``replay``
    records, whose rows are not output) those of an unfinished batch, so
    that the remaining texts are batched as in an uninterrupted run."""
    batch: List[Record] = []  # the records since the first text of the last batch
    n_texts = 0
    for record in islice(records, n_rows):
        if record.text is not None:
            if n_texts % batch_size == 0:
                batch = []
            n_texts += 1
        if batch or record.text is not None:
            batch.append(record)
    if n_texts % batch_size == 0:
        batch = []  # the last batch was complete
    for record in batch:
        record.replay = True
        yield record
    yield from records


# -- output -----------------------------------------------------------------------


def _scan_output(path: Path) -> Tuple[int, int]:
    """Count the complete lines of an earlier output file and the error rows
    among them, and cut off a trailing partial line. ``(rows, failed)``."""
    rows = failed = 0
    end = 0  # offset just after the last newline
    offset = 0
    partial = b""
    with path.open("rb") as f:
        for line in f:
            offset += len(line)
            if not line.endswith(b"\n"):
                partial = line
                break
            rows += 1
            end = offset
            if b'"error"' in line:
                try:
                    if json.loads(line).get("error") is not None:
                        failed += 1
                except (ValueError, AttributeError):
                    pass
    if partial:
        with path.open("r+b") as f:
            f.truncate(end)
    return rows, failed


class _Sink:
    """Binary line writer over a file or stdout."""

    def __init__(self, path: Optional[Path], append: bool, stdout: Optional[IO[bytes]] = None):
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Lock before truncating: a second run on the same --output must
            # not empty the first one's file.
            self.file: IO[bytes] = path.open("ab")
            if not _try_lock(self.file):
                self.file.close()
                raise UsageError(f"another run is writing {path}: wait for it, or write elsewhere")
            if not append:
                self.file.truncate(0)
        else:
            if stdout is None:
                sys.stdout.flush()
                stdout = getattr(sys.stdout, "buffer", None)
            self.file = stdout if stdout is not None else _TextAsBinary(sys.stdout)

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def flush(self) -> None:
        self.file.flush()

    def close(self) -> None:
        if self.path is not None:
            self.file.close()
        else:
            self.file.flush()


def _try_lock(file: IO[bytes]) -> bool:
    """An exclusive, non-blocking lock on an open file (released when it is
    closed or the process ends); True where locks are not supported."""
    try:
        import fcntl
    except ImportError:  # Windows
        return True
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


class _TextAsBinary:
    def __init__(self, stream: IO[str]):
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf8"))

    def flush(self) -> None:
        self.stream.flush()


def _single_threaded_torch() -> None:
    """With ``n_process > 1`` spaCy forks workers; a fork after multi-threaded
    torch work deadlocks them (the OpenMP pool does not survive a fork). One
    torch thread per process avoids it and matches one process per core."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        return
    torch.set_num_threads(1)


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
        package's shipped model (``spacy_bertsum.load``, when there is one).
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
    input or a model that cannot be loaded or cannot summarize.
    """
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if n_process < 1:
        raise UsageError(f"--n-process must be at least 1, got {n_process}")
    if max_chars < 1:
        raise UsageError(f"--max-chars must be at least 1, got {max_chars}")
    if stdin_format not in STDIN_FORMATS:
        raise UsageError(f"--stdin-format must be one of {', '.join(STDIN_FORMATS)}, got '{stdin_format}'")
    _check_int8(int8, gpu_id)
    out_path = None if output is None or str(output) == "-" else Path(output)
    if resume and out_path is None:
        raise UsageError("--resume needs --output PATH (it cannot resume stdout)")
    if out_path is not None and out_path.is_dir():
        raise UsageError(f"--output is a directory: {out_path}")
    kind, source = _resolve_input(input)  # fail early on a missing input, before loading the model
    inputs = [source] if kind == "jsonl" else (source if kind == "txt" else [])
    for flag, target in (("--output", out_path), ("--html", html)):
        if target is not None and any(_same_file(Path(target), p) for p in inputs):
            raise UsageError(f"{flag} {target} is an input file: it would be overwritten. Write elsewhere.")

    nlp = load_pipeline(model, gpu_id, int8=int8)
    name = find_bertsum(nlp)
    overrides = _selection_overrides(nlp, name, selection)
    nlp.max_length = max_chars
    if n_process > 1:
        _single_threaded_torch()
    try:
        nlp("This is a test. It checks that the pipeline can summarize.", component_cfg={name: dict(overrides)})
    except Exception as e:
        raise UsageError(f"the pipeline cannot summarize: {_describe(e)}") from e

    stats = SummarizeStats(output=str(out_path) if out_path is not None else "stdout")
    append = False
    if resume and out_path.exists():  # type: ignore[union-attr]
        stats.resumed, stats.failed = _scan_output(out_path)  # type: ignore[arg-type]
        stats.rows = stats.resumed
        append = True
    records = iter_records(input, text_field=text_field, id_field=id_field, stdin_format=stdin_format,
                           max_chars=max_chars, stdin=stdin)
    if stats.resumed:
        records = _skip_for_resume(records, stats.resumed, batch_size)
    total = max(len(source) - stats.resumed, 0) if kind == "txt" else None
    sink = _Sink(out_path, append, stdout)
    bar = tqdm(total=total, unit=" docs", desc="summarize", file=sys.stderr,
               disable=not show_progress, dynamic_ncols=True)
    html_docs: List[Doc] = []
    n_html = 0

    def keep_for_html(doc: Doc) -> None:
        nonlocal n_html
        n_html += 1
        if len(html_docs) < html_max_docs:
            html_docs.append(doc)

    try:
        n_new = 0
        rows = summarize_records(
            nlp, records, selection=overrides, batch_size=batch_size, n_process=n_process,
            on_doc=keep_for_html if html is not None else None,
        )  # fmt: skip
        for row in rows:
            sink.write(_dumps(row))
            n_new += 1
            stats.rows += 1
            if row.get("error") is not None:
                stats.failed += 1
            if n_new % batch_size == 0:
                sink.flush()
            bar.update(1)
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


@app.command("summarize")
def summarize_cli(
    input: str = typer.Argument(..., help="JSONL file (.jsonl/.gz/.xz), a .txt file, a directory or glob of .txt files, or - for stdin"),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Output JSONL file (default or -: stdout)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline with a bertsum component: a path or package name"),
    text_field: str = typer.Option("text", "--text-field", help="JSONL field with the document text"),
    id_field: str = typer.Option("id", "--id-field", help="JSONL field with the document id (default: the line number)"),
    stdin_format: str = typer.Option("jsonl", "--stdin-format", help="For input -: 'jsonl', or 'txt' (each line is one document)"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="Most sentences per summary"),
    ratio: Optional[float] = typer.Option(None, "--ratio", help="Select ceil(ratio * n_sents) sentences instead of top_k"),
    max_words: Optional[int] = typer.Option(None, "--max-words", help="Word budget per summary"),
    no_trigram_blocking: bool = typer.Option(False, "--no-trigram-blocking", help="Allow sentences sharing a trigram"),
    min_words: Optional[int] = typer.Option(None, "--min-words", help="Shorter sentences are not eligible"),
    batch_size: int = typer.Option(32, "--batch-size", help="Docs per nlp.pipe batch (and per output flush)"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for nlp.pipe"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
    max_chars: int = typer.Option(5_000_000, "--max-chars", help="Longer texts get an error row (sets nlp.max_length)"),
    resume: bool = typer.Option(False, "--resume", help="Keep the complete rows of an existing --output and append the rest"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar"),
    html: Optional[Path] = typer.Option(None, "--html", help="Also write the HTML view of the summarized docs here"),
    html_max_docs: int = typer.Option(100, "--html-max-docs", help="Most docs in the --html view (a note counts the rest)"),
    int8: bool = typer.Option(False, "--int8", help="Quantize the encoder to int8 (dynamic; CPU only): faster, slightly different scores"),
):
    """Summarize documents into JSONL: one row per input row, error rows for bad ones."""

    selection = {"top_k": top_k, "ratio": ratio, "max_words": max_words, "min_words": min_words}
    if no_trigram_blocking:
        selection["trigram_blocking"] = False
    try:
        stats = summarize(
            input,
            output,
            model=model,
            text_field=text_field,
            id_field=id_field,
            stdin_format=stdin_format,
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
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(2)
    except BrokenPipeError:  # the reader of stdout went away (e.g. `| head`)
        import os
        import sys

        try:  # no second BrokenPipeError when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        raise typer.Exit(1)
    typer.echo(stats.summary_line(), err=True)
    raise typer.Exit(1 if stats.failed else 0)

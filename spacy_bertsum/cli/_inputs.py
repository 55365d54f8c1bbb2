"""The input side of ``summarize``: input rows as :class:`Record` objects,
from a JSONL file (plain, .gz, .xz), .txt files (a file, a directory, a glob)
or stdin, with an error row for every row that cannot be summarized; and the
checks of input, output and options that come before anything runs
(:class:`UsageError`)."""
import glob
import sys
from dataclasses import dataclass
from enum import Enum
from itertools import islice
from pathlib import Path
from typing import IO, Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from ..errors import Errors
from ._jsonl import decoded_lines, describe, open_binary, parsed_lines, same_file

DEFAULT_MAX_CHARS = 5_000_000


class StdinFormat(str, Enum):
    """What stdin holds: JSON lines, or one document a line."""

    jsonl = "jsonl"
    txt = "txt"


STDIN_FORMATS = tuple(f.value for f in StdinFormat)


class UsageError(ValueError):
    """A problem with the options, the input path or the model, raised with a
    coded message (``Errors``) before anything was written: the CLI exits
    with code 2."""


@dataclass
class Record:
    """One input row: ``text`` to summarize, or an already final ``row``
    (an error row, or the empty summary of an empty text)."""

    id: Any
    where: str  # "line 3", or a file name: the prefix of error messages
    text: Optional[str] = None
    row: Optional[Dict[str, Any]] = None


def error_row(doc_id: Any, where: str, problem: str) -> Dict[str, Any]:
    return {"id": doc_id, "error": f"{where}: {problem}", "summary": None, "summary_sents": [], "scores": []}


def _empty_row(doc_id: Any) -> Dict[str, Any]:
    return {"id": doc_id, "summary": "", "summary_sents": [], "scores": []}


def _clean_text(text: str) -> str:
    """Replace lone surrogates, which the tokenizers cannot handle."""
    try:
        text.encode("utf8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf8", errors="replace").decode("utf8")


def _jsonl_record(line_no: int, obj: Any, text_field: str, id_field: str, max_chars: int) -> Record:
    where = f"line {line_no}"
    if isinstance(obj, Exception):
        problem = str(obj) if type(obj).__name__ == "InputReadError" else f"invalid JSON ({describe(obj)})"
        return Record(line_no, where, row=error_row(line_no, where, problem))
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
        problem = f"text has {len(text)} characters, more than the limit of {max_chars} (--max-chars)"
        return Record(doc_id, where, row=error_row(doc_id, where, problem))
    return Record(doc_id, where, text=_clean_text(text))


def _txt_file_record(path: Path, max_chars: int) -> Record:
    name = path.name
    try:
        size = path.stat().st_size
        if size > 4 * max_chars:  # UTF-8: at most 4 bytes per character
            problem = f"file has {size} bytes, more than {max_chars} characters (--max-chars)"
            return Record(name, name, row=error_row(name, name, problem))
        data = path.read_bytes()
    except OSError as e:
        return Record(name, name, row=error_row(name, name, f"cannot read the file ({describe(e)})"))
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
            raise UsageError(Errors.E051.format(path=spec))
        return "txt", files
    if path.is_file():
        if path.suffix.lower() == ".txt":
            return "txt", [path]
        try:
            path.open("rb").close()
        except OSError as e:
            raise UsageError(Errors.E053.format(path=spec, err=describe(e))) from e
        return "jsonl", path
    if any(ch in spec for ch in "*?["):
        matches = (Path(p) for p in glob.glob(spec, recursive=True))
        files = sorted((p for p in matches if p.suffix.lower() == ".txt" and p.is_file()), key=str)
        if not files:
            raise UsageError(Errors.E052.format(pattern=spec))
        return "txt", files
    raise UsageError(Errors.E050.format(path=spec))


def input_files(kind: str, source: Any) -> List[Path]:
    """The files of a resolved input (none for stdin)."""
    if kind == "stdin":
        return []
    return [source] if kind == "jsonl" else list(source)


def check_stdin_format(stdin_format: str) -> None:
    if stdin_format not in STDIN_FORMATS:
        choices = ", ".join(STDIN_FORMATS)
        raise UsageError(Errors.E054.format(name="stdin_format", choices=choices, value=stdin_format))


def check_positive(**settings: Optional[int]) -> None:
    """E066 for a setting below 1 (None: not set)."""
    for name, value in settings.items():
        if value is not None and value < 1:
            raise UsageError(Errors.E066.format(name=name, value=value))


def checked_output(
    output: Optional[Union[str, Path]],
    inputs: Sequence[Path],
    *,
    resume: bool = False,
    html: Optional[Union[str, Path]] = None,
) -> Optional[Path]:
    """The path to write the rows to (None: stdout), checked before anything
    runs: ``resume`` needs a file (E056), which is not a directory (E057),
    and neither it nor ``html`` is one of the ``inputs`` (E058)."""
    out_path = None if output is None or str(output) == "-" else Path(output)
    if resume and out_path is None:
        raise UsageError(Errors.E056)
    if out_path is not None and out_path.is_dir():
        raise UsageError(Errors.E057.format(path=out_path))
    for option, target in (("--output", out_path), ("--html", html)):
        if target is not None and any(same_file(Path(target), p) for p in inputs):
            raise UsageError(Errors.E058.format(option=option, path=target))
    return out_path


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
    if kind == "stdin":
        check_stdin_format(stdin_format)
        stream = stdin if stdin is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text stream without a binary buffer
            stream = (line.encode("utf8", errors="surrogateescape") for line in sys.stdin)
        yield from _records(decoded_lines(stream), "txt" if stdin_format == "txt" else "jsonl",
                            text_field, id_field, max_chars, skip)
        return
    with open_binary(source) as f:
        yield from _records(decoded_lines(f), "jsonl", text_field, id_field, max_chars, skip)


def _records(lines, kind: str, text_field: str, id_field: str, max_chars: int, skip: int) -> Iterator[Record]:
    if kind == "jsonl":  # blank lines are not rows (their numbers still count)
        for line_no, obj in islice(parsed_lines(lines), skip, None):
            yield _jsonl_record(line_no, obj, text_field, id_field, max_chars)
        return
    for line_no, line in islice(lines, skip, None):
        if isinstance(line, Exception):
            yield Record(line_no, f"line {line_no}", row=error_row(line_no, f"line {line_no}", str(line)))
        else:
            yield _text_record(line_no, f"line {line_no}", line, max_chars)

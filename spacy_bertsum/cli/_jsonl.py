"""JSON lines in and out, for every command that reads or writes them.

Reading: plain, ``.gz`` or ``.xz`` files (by suffix) or any binary stream;
lines are numbered from 1 (blank lines count), decoded leniently (invalid
UTF-8 becomes U+FFFD, a BOM is dropped, ``\\n``, ``\\r\\n`` and a lone ``\\r``
end a line), and a line that cannot be parsed, or input that cannot be
decompressed past some point, comes out as an exception next to its line
number instead of stopping the reader. Writing: strict JSON (no NaN), one row
per line, to a file that a second writer cannot open at the same time, or to
stdout.
"""
import gzip
import json
import lzma
import os
import sys
import zlib
from pathlib import Path
from typing import IO, Any, Dict, Iterable, Iterator, Optional, Tuple, Union

#: What a truncated or corrupt .gz/.xz stream raises while it is read.
DECOMPRESSION_ERRORS = (OSError, EOFError, lzma.LZMAError, zlib.error)
_MAX_ERROR_CHARS = 500

Line = Tuple[int, Union[str, Exception]]


class InputReadError(Exception):
    """The input cannot be read past this line (e.g. a corrupt .gz stream)."""


def describe(error: BaseException) -> str:
    """A one-line description of ``error`` for an error row or message."""
    text = f"{type(error).__name__}: {error}".strip()
    if len(text) > _MAX_ERROR_CHARS:
        text = text[:_MAX_ERROR_CHARS] + " ..."
    return " ".join(text.split())


def open_binary(path: Union[str, Path]) -> IO[bytes]:
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".gz":
        return gzip.open(path, "rb")
    if suffix == ".xz":
        return lzma.open(path, "rb")
    return path.open("rb")


def decoded_lines(lines: Iterable[bytes]) -> Iterator[Line]:
    """``(line_number, text)`` for every line, without its line break. If the
    stream fails (decompression), the last item is ``(number,
    InputReadError)`` for the first line that could not be read."""
    line_no = 0
    try:
        for raw in lines:
            text = raw.decode("utf8", errors="replace")
            if line_no == 0:
                text = text.lstrip("\ufeff")
            text = text[:-1] if text.endswith("\n") else text
            text = text[:-1] if text.endswith("\r") else text
            for part in text.split("\r") if "\r" in text else [text]:
                line_no += 1
                yield line_no, part
    except DECOMPRESSION_ERRORS as e:
        yield line_no + 1, InputReadError(f"cannot read the input past this point ({describe(e)})")


def parsed_lines(lines: Iterable[Line]) -> Iterator[Tuple[int, Any]]:
    """``(line_number, object or exception)`` for every non-blank line: an
    exception for a line that is not valid JSON, or that could not be read."""
    for line_no, line in lines:
        if isinstance(line, Exception):
            yield line_no, line
        elif line.strip():
            try:
                yield line_no, json.loads(line)
            except (ValueError, RecursionError) as e:  # RecursionError: absurd nesting
                yield line_no, e


def read_jsonl(path: Union[str, Path]) -> Iterator[Tuple[int, Any]]:
    """``(line_number, object or exception)`` for each non-blank line of a
    JSONL file (plain, .gz or .xz)."""
    with open_binary(path) as f:
        yield from parsed_lines(decoded_lines(f))


def dumps(row: Dict[str, Any]) -> bytes:
    """One strict JSON line (no NaN/Infinity), UTF-8. Lone surrogates (from
    ``\\udXXX`` escapes in the input) cannot be UTF-8 encoded: such a row is
    written ASCII-escaped."""
    line = json.dumps(row, ensure_ascii=False, allow_nan=False)
    try:
        return line.encode("utf8") + b"\n"
    except UnicodeEncodeError:
        return json.dumps(row, ensure_ascii=True, allow_nan=False).encode("ascii") + b"\n"


def same_file(a: Union[str, Path], b: Union[str, Path]) -> bool:
    """Whether two paths name one file (after links); False if one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def scan_output(path: Path) -> Tuple[int, int]:
    """Count the complete lines of an earlier output file (to resume it) and
    the error rows among them, and cut off a trailing partial line.
    ``(rows, failed)``."""
    rows = failed = 0
    end = offset = 0  # end: the offset just after the last newline
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


class OutputLocked(Exception):
    """Another process is writing the output file."""


class LineWriter:
    """Binary line writer over a file (locked against a second writer) or stdout."""

    def __init__(self, path: Optional[Path], append: bool = False, stdout: Optional[IO[bytes]] = None):
        self.path = path
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Lock before truncating: a second run on the same output must
            # not empty the first one's file.
            self.file: Any = path.open("ab")
            if not _try_lock(self.file):
                self.file.close()
                raise OutputLocked(f"another run is writing {path}: wait for it, or write elsewhere")
            if not append:
                self.file.truncate(0)
        else:
            if stdout is None:
                sys.stdout.flush()
                stdout = getattr(sys.stdout, "buffer", None)
            self.file = stdout if stdout is not None else _TextAsBinary(sys.stdout)

    def write(self, row: Dict[str, Any]) -> None:
        self.file.write(dumps(row))

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

"""``spacy-bertsum summarize --engine ray``: the rows of the local engine,
summarized by the actors of a Ray cluster (``spacy_bertsum.ray``).

This process (the driver) reads the input with the local engine's reader
(``iter_records``; Parquet rows go through the same ``_jsonl_record``) and
cuts it into shards of ``shard_rows`` consecutive rows (32 batches). Shards
go to the cluster in waves (one Ray Data run each), cut into blocks of a
batch, every row with its input position (``_row``); the actors send back the
exact JSON line the local engine writes for it. A shard whose rows are all back is written at once
(temporary name, then rename) to ``OUTPUT.parts/part-NNNNNN.jsonl``; when all
shards are written, the output is assembled from them in input order (JSONL,
or Parquet for a ``.parquet`` path) and the work directory removed.

Faults: an actor that dies is restarted and its batches run again (Ray's
``max_restarts``/``max_task_retries``); rows are keyed by position, so a row
cannot be written twice, and a shard that is missing a row is an error, never
a short output. A stopped run keeps its finished shards: ``--resume`` reads
the input again and summarizes only the shards without a file, after
checking (``OUTPUT.parts/run.json``) that input and settings are the same.
"""
import functools
import json
import os
import shutil
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import IO, Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from tqdm import tqdm

from ..errors import Errors
from ._inputs import (DEFAULT_MAX_CHARS, Record, UsageError, _jsonl_record, _resolve_input, check_positive,
                      check_stdin_format, checked_output, input_files, iter_records)
from ._jsonl import LineWriter, OutputLocked, describe, scan_output
from ._processes import stop_on_signals


class Engine(str, Enum):
    """Where ``summarize`` runs: this machine, or a Ray cluster."""

    local = "local"
    ray = "ray"


#: Batches per output shard (the unit of resume), unless shard_rows says otherwise.
SHARD_BATCHES = 32
#: Shards per wave, per worker (at least MIN_WAVE_SHARDS): a wave is one Ray
#: Data run, whose actors load the pipeline once.
WAVE_SHARDS_PER_WORKER = 4
MIN_WAVE_SHARDS = 16
MANIFEST = "run.json"
#: The settings that decide the rows: a resumed run must have the same.
ROW_SETTINGS = ("input", "model", "text_field", "id_field", "stdin_format", "selection", "max_chars", "int8")


def pick_engine(engine: Engine, address: Optional[str], workers: Optional[int]) -> Callable[..., Any]:
    """The function that runs ``summarize`` for ``--engine``: the local
    ``summarize``, or :func:`summarize_ray` with ``address`` and ``workers``."""
    from .summarize import summarize

    if engine == Engine.local:
        if address is not None or workers is not None:
            raise UsageError(Errors.E065.format(option="--address/--workers", engine="local", instead="--n-process"))
        return summarize
    return functools.partial(summarize_ray, address=address, workers=workers)


def summarize_ray(
    input: Union[str, Path],
    output: Optional[Union[str, Path]] = None,
    *,
    model: Optional[Union[str, Path]] = None,
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
    html_max_docs: int = 0,
    int8: bool = False,
    address: Optional[str] = None,
    workers: Optional[int] = None,
    cpus_per_worker: int = 1,
    shard_rows: Optional[int] = None,
):
    """``summarize`` (same arguments, same rows) on a Ray cluster: the one at
    ``address``, or a local one on 127.0.0.1 with one CPU per worker, shut
    down at the end. ``workers``: actors, each with a copy of the pipeline
    (default: one per CPU of the cluster, or per GPU with ``gpu_id >= 0``).
    Input also Parquet (a file or a directory of ``.parquet`` files, rows
    numbered like lines); output JSONL, or Parquet for a ``.parquet`` path.
    ``shard_rows``: rows per output shard (default ``SHARD_BATCHES * batch_size``; a
    resumed run keeps its first run's). Not with ``n_process > 1`` or ``html``
    (E065). Raises UsageError; KeyboardInterrupt on SIGINT or SIGTERM, with
    the finished shards kept for ``resume``."""
    from .summarize import SummarizeStats, check_pipeline

    check_positive(batch_size=batch_size, max_chars=max_chars, workers=workers, shard_rows=shard_rows)
    for option, used in (("--n-process", n_process != 1), ("--html", html is not None)):
        if used:
            raise UsageError(Errors.E065.format(option=option, engine="ray", instead="--workers"))
    check_stdin_format(stdin_format)
    if int8 and gpu_id >= 0:
        raise UsageError(Errors.E038)
    kind, source = _resolve(input)
    out_path = checked_output(output, input_files(kind, source), resume=resume)
    try:
        import spacy_bertsum.ray as sbr
    except ImportError as e:
        raise UsageError(str(e)) from e
    try:
        overrides = sbr.check_settings(model, selection or {}, workers or 1, batch_size, cpus_per_worker)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from e
    model = sbr.model_name(model)
    settings = {"input": _identity(kind, source), "model": model or "en_bertsum_news", "text_field": text_field,
                "id_field": id_field, "stdin_format": stdin_format, "selection": overrides, "max_chars": max_chars,
                "int8": int8, "shard_rows": shard_rows or SHARD_BATCHES * batch_size}

    stats = SummarizeStats(output=str(out_path) if out_path is not None else "stdout")
    try:
        sink = LineWriter(out_path, append=True, stdout=stdout)  # holds the lock; written at the end
    except OutputLocked as e:
        raise UsageError(str(e)) from e
    parts = Path(f"{out_path}.parts") if out_path is not None else Path(tempfile.mkdtemp(prefix="bertsum-ray-"))
    try:
        # Load the pipeline here too (the driver runs on a node of the
        # cluster), so that a bad model is a usage error before any actor
        # starts; the copy is dropped.
        check_pipeline(model, int8=int8, selection=overrides, max_chars=max_chars)
        settings = _prepare_parts(parts, settings, resume, out_path)
        if out_path is not None and not resume:  # as the local engine: the output is overwritten
            sink.file.truncate(0)
        records = _records(kind, source, input, text_field, id_field, stdin_format, max_chars, stdin)
        gpus = 1 if gpu_id >= 0 else 0
        n_local = workers or _cpu_count()
        # SIGINT/SIGTERM: KeyboardInterrupt, also while Ray starts, and again
        # after ray.init (whose SIGTERM handler aborts the process).
        with stop_on_signals(), sbr.cluster(address, num_cpus=None if address else n_local * cpus_per_worker,
                                            quiet=not show_progress), stop_on_signals(), sbr.quiet_data():
            if workers is None:
                workers = sbr.cluster_workers(cpus_per_worker, gpus)
            run = _Run(sbr, parts, settings["shard_rows"], stats, show_progress, model=model,
                       workers=workers, batch_size=batch_size, cpus_per_worker=cpus_per_worker,
                       gpus_per_worker=gpus, selection=overrides, max_chars=max_chars, int8=int8)
            n_shards = run.run(records)
        _assemble(parts, n_shards, sink, out_path)
        shutil.rmtree(parts)  # the output is complete
    finally:
        sink.close()
        if out_path is None:  # nothing to resume from stdout
            shutil.rmtree(parts, ignore_errors=True)
    return stats


class _Run:
    """The shards of one run: skip the finished ones, send the others to the
    actors in waves, write each as soon as all its rows are back."""

    def __init__(self, sbr, parts: Path, shard_rows: int, stats, show_progress: bool, **settings) -> None:
        self.sbr, self.parts, self.shard_rows, self.stats = sbr, parts, shard_rows, stats
        self.settings = settings
        self.wave_shards = max(MIN_WAVE_SHARDS, WAVE_SHARDS_PER_WORKER * settings["workers"])
        self.bar = tqdm(unit=" docs", desc="summarize (ray)", file=sys.stderr, disable=not show_progress,
                        dynamic_ncols=True)

    def run(self, records: Iterator[Record]) -> int:
        """Summarize every shard without a file; returns the number of shards."""
        wave: List[Tuple[int, List[Record]]] = []
        n_shards = 0
        try:
            for n_shards, shard in enumerate(_chunks(records, self.shard_rows), 1):
                if not self._kept(*shard):
                    wave.append(shard)
                if len(wave) >= self.wave_shards:
                    self._run_wave(wave)
                    wave = []
            if wave:
                self._run_wave(wave)
        finally:
            self.bar.close()
        return n_shards

    def part(self, k: int) -> Path:
        return self.parts / f"part-{k:06d}.jsonl"

    def _kept(self, k: int, records: List[Record]) -> bool:
        path = self.part(k)
        if not path.exists():
            return False
        rows, failed = scan_output(path)
        if rows != len(records):  # cannot happen with atomic writes; redo it
            path.unlink()
            return False
        self._count(rows, failed, resumed=True)
        return True

    def _run_wave(self, wave: List[Tuple[int, List[Record]]]) -> None:
        import ray.data

        sizes = {k: len(records) for k, records in wave}
        # One block per actor call (a block is one task for one actor): batches
        # of batch_size rows, smaller when the wave would give a worker fewer than 4.
        n_rows = sum(sizes.values())
        size = min(self.settings["batch_size"], -(-n_rows // (4 * self.settings["workers"])))
        tables = [self.sbr.records_table(k * self.shard_rows + i, records[i:i + size])
                  for k, records in wave for i in range(0, len(records), size)]
        settings = {**self.settings, "batch_size": size}
        ds = self.sbr.map_summarizer(ray.data.from_arrow(tables), self.sbr._RecordSummarizer, **settings)
        buffers: Dict[int, Dict[int, Tuple[bytes, bool]]] = {}
        batches = ds.iter_batches(batch_format="pyarrow", batch_size=None)
        try:
            for batch in batches:
                columns = [batch.column(name).to_pylist() for name in ("_row", "line", "failed")]
                for row, line, failed in zip(*columns):
                    k = row // self.shard_rows
                    if k not in sizes:  # a second copy of a row already written: never twice
                        continue
                    buffers.setdefault(k, {})[row] = (line, failed)
                    if len(buffers[k]) == sizes[k]:
                        self._write(k, buffers.pop(k))
                        del sizes[k]
        finally:  # stop Ray Data's executor now (e.g. on Ctrl-C), before Ray is shut down
            getattr(batches, "close", lambda: None)()
        if sizes:
            missing = sum(n - len(buffers.get(k, ())) for k, n in sizes.items())
            raise RuntimeError(Errors.E063.format(got=f"{missing} fewer", expected=sum(sizes.values())))

    def _write(self, k: int, rows: Dict[int, Tuple[bytes, bool]]) -> None:
        path = self.part(k)
        tmp = path.with_name(path.name + ".tmp")
        with tmp.open("wb") as f:
            f.write(b"".join(rows[row][0] for row in sorted(rows)))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._count(len(rows), sum(failed for _, failed in rows.values()))

    def _count(self, rows: int, failed: int, resumed: bool = False) -> None:
        self.stats.rows += rows
        self.stats.failed += failed
        if resumed:
            self.stats.resumed += rows
        self.bar.update(rows)


# -- input -------------------------------------------------------------------


def _resolve(input: Union[str, Path]) -> Tuple[str, Any]:
    """``("parquet", [files])`` for a .parquet file or a directory with
    .parquet files (in path order), else what the local engine reads."""
    path = Path(str(input))
    if str(input) != "-" and path.is_file() and path.suffix.lower() == ".parquet":
        return "parquet", [path]
    if str(input) != "-" and path.is_dir():
        files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
        if files:
            return "parquet", files
    return _resolve_input(input)


def _records(kind: str, source: Any, input, text_field: str, id_field: str, stdin_format: str, max_chars: int,
             stdin: Optional[IO[bytes]]) -> Iterator[Record]:
    if kind != "parquet":
        return iter_records(input, text_field=text_field, id_field=id_field, stdin_format=stdin_format,
                            max_chars=max_chars, stdin=stdin)
    return _parquet_records(source, text_field, id_field, max_chars)


def _parquet_records(files: List[Path], text_field: str, id_field: str, max_chars: int) -> Iterator[Record]:
    """Parquet rows as JSONL objects: the fields ``text_field`` and
    ``id_field`` of each row (a missing column is a missing field), rows
    numbered from 1 across the files, as lines are."""
    import pyarrow.parquet as pq

    handles = []
    for path in files:  # all readable before the first row
        try:
            handles.append(pq.ParquetFile(path))
        except Exception as e:
            raise UsageError(Errors.E072.format(path=path, err=describe(e))) from e
    line_no = 0
    for handle in handles:
        names = handle.schema_arrow.names
        columns = [c for c in dict.fromkeys((text_field, id_field)) if c in names] or names[:1]
        for batch in handle.iter_batches(batch_size=1024, columns=columns):
            for obj in batch.to_pylist():
                line_no += 1
                fields = {key: value for key, value in obj.items() if key in (text_field, id_field)}
                yield _jsonl_record(line_no, fields, text_field, id_field, max_chars)


def _chunks(records: Iterator[Record], size: int) -> Iterator[Tuple[int, List[Record]]]:
    chunk: List[Record] = []
    k = 0
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield k, chunk
            k, chunk = k + 1, []
    if chunk:
        yield k, chunk


def _identity(kind: str, source: Any) -> Any:
    """What a resumed run must read again: files with size and mtime."""
    if kind == "stdin":
        return "-"
    files = [source] if kind == "jsonl" else source
    stat = [(str(Path(p).resolve()), *_size_mtime(p)) for p in files[:1000]]
    return {"kind": kind, "n_files": len(files), "files": stat}


def _size_mtime(path: Path) -> Tuple[int, int]:
    try:
        st = Path(path).stat()
    except OSError:
        return -1, -1
    return st.st_size, st.st_mtime_ns


# -- work directory and output ---------------------------------------------------


def _prepare_parts(parts: Path, settings: Dict[str, Any], resume: bool, out_path: Optional[Path]) -> Dict[str, Any]:
    """Start a new work directory, or (``resume``) check that the one there
    was made with the same input and settings. Returns the run's settings
    (a resumed run keeps its shard size)."""
    manifest = parts / MANIFEST
    if resume and manifest.exists():
        before = json.loads(manifest.read_text(encoding="utf8"))
        changed = [key for key in ROW_SETTINGS if _jsonable(before.get(key)) != _jsonable(settings[key])]
        if changed:
            raise UsageError(Errors.E064.format(path=parts, changed=", ".join(changed)))
        for stale in parts.glob("*.tmp"):
            stale.unlink()
        return {**settings, "shard_rows": before["shard_rows"]}
    if resume and out_path is not None and out_path.exists() and out_path.stat().st_size > 0:
        raise UsageError(Errors.E067.format(output=out_path, parts=parts))
    if parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(parents=True)
    manifest.write_text(json.dumps(settings, indent=2, default=str), encoding="utf8")
    return settings


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _assemble(parts: Path, n_shards: int, sink: LineWriter, out_path: Optional[Path]) -> None:
    """The output from the shards, in input order."""
    files = [parts / f"part-{k:06d}.jsonl" for k in range(n_shards)]
    if out_path is not None and out_path.suffix.lower() == ".parquet":
        _write_parquet(files, out_path)
        return
    if out_path is not None:
        sink.file.truncate(0)
    for path in files:
        with path.open("rb") as f:
            shutil.copyfileobj(f, sink.file)
    sink.flush()


def _write_parquet(files: List[Path], out_path: Path) -> None:
    """Columns id (a string: other ids as JSON text), summary, summary_sents,
    scores, error; written under a temporary name, then renamed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("summary", pa.string()), ("summary_sents", pa.list_(pa.string())),
                        ("scores", pa.list_(pa.float64())), ("error", pa.string())])
    tmp = out_path.with_name(out_path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for path in files:
            rows = [json.loads(line) for line in path.read_bytes().splitlines()]
            for row in rows:
                row["id"] = row["id"] if isinstance(row["id"], str) else json.dumps(row["id"])
                row.setdefault("error", None)
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
    os.replace(tmp, out_path)


# -- Ray -----------------------------------------------------------------------------


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1

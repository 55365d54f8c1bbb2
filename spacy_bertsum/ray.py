"""Summarize a corpus on a Ray cluster, with the pipeline and the rows of
``spacy-bertsum summarize`` (``pip install "spacy-bertsum[ray]"``).

Ray Data's batch-inference pattern: ``Dataset.map_batches`` with a callable
class, so that every actor (worker process) loads the pipeline once, by name
or path, and then summarizes batch after batch. A loaded ``nlp`` never goes
through the object store (explosion/spaCy#13506): actors get the name.

    import ray, spacy_bertsum.ray as sbr

    with sbr.cluster():                      # or ray.init(address=...)
        ds = ray.data.read_parquet("docs/")  # columns "id", "text"
        out = sbr.summarize_dataset(ds, model="en_bertsum_news", workers=4, top_k=3)
        out.write_parquet("summaries/")      # id, summary, summary_sents, scores, error

Each actor sets torch to its CPU share (``cpus_per_worker`` threads) and
turns rows into output rows with the local engine's own code
(``summarize_records``, ``_doc_row``, ``error_row``), so a bad row becomes
an error row, as in the CLI. Ray Data starts its actors with
``max_restarts=-1`` and ``max_task_retries=-1`` (its defaults since before
Ray 2.40; Ray 2.60 deprecates passing them to ``map_batches``): an actor that
dies (killed, out of memory, its node lost) is restarted and the batches it
had are run again; Ray Data keeps only the outputs of completed tasks, so no
row is lost or duplicated (``tests/test_ray.py`` kills one to check).
``spacy-bertsum summarize --engine ray`` (``spacy_bertsum.cli._ray_engine``)
adds input files, row order, output shards and resume on top.
"""
import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

from .cli._inputs import DEFAULT_MAX_CHARS, Record, _text_record, error_row
from .cli._jsonl import dumps
from .cli.summarize import SELECTION_KEYS, _selection_overrides, find_bertsum, load_pipeline, summarize_records
from .errors import Errors
from .selection import SelectionConfig

try:
    import pyarrow as pa
    import ray
    import ray.data
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(Errors.E060) from e

__all__ = ["OUTPUT_COLUMNS", "cluster", "summarize_dataset"]

#: The columns of :func:`summarize_dataset`'s output, one row per input row.
OUTPUT_COLUMNS = ("id", "summary", "summary_sents", "scores", "error")


# -- the cluster ---------------------------------------------------------------


@contextmanager
def cluster(address: Optional[str] = None, *, num_cpus: Optional[int] = None,
            num_gpus: Optional[int] = None, quiet: bool = False, **init_kwargs: Any) -> Iterator[Dict[str, Any]]:
    """A Ray connection for the duration: join the cluster at ``address``,
    or start a local one that listens on the loopback interface only
    (127.0.0.1, no dashboard) with ``num_cpus`` CPUs and shut it down
    afterwards. If this process is already connected, that connection is
    used and left open. Other keyword arguments go to ``ray.init`` (e.g.
    ``runtime_env``). Yields ``ray.init``'s address info (``{}`` for a
    connection made before)."""
    if ray.is_initialized():
        yield {}
        return
    init_kwargs["logging_level"] = logging.WARNING if quiet else logging.INFO
    try:  # (an interrupted ray.init leaves processes behind unless shut down)
        if address and not _is_loopback(address):
            context = ray.init(address=address, **init_kwargs)
        else:
            with _loopback_mode():
                if address:  # a cluster that listens on 127.0.0.1 (started by `cluster()`)
                    context = ray.init(address=address, **init_kwargs)
                else:
                    context = ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus,
                                       include_dashboard=False, **init_kwargs)
        yield dict(context.address_info)
    finally:
        ray.shutdown()


def _is_loopback(address: str) -> bool:
    host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


@contextmanager
def _loopback_mode() -> Iterator[None]:
    """Ray on 127.0.0.1 only, for the duration of a ``ray.init``. On Linux
    Ray binds the machine's address (or all interfaces) and resolves
    127.0.0.1 to it, unless it runs in its single-machine mode, which
    RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 selects; Ray reads it when it is
    imported (then it sets a constant) and the processes it starts inherit it."""
    from ray._private import ray_constants

    variable = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    before_env, before_flag = os.environ.get(variable), getattr(ray_constants, "ENABLE_RAY_CLUSTER", None)
    os.environ[variable] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        if before_env is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before_env
        if before_flag is not None:
            ray_constants.ENABLE_RAY_CLUSTER = before_flag


def cluster_workers(cpus_per_worker: float = 1, gpus_per_worker: float = 0) -> int:
    """How many workers the connected cluster has room for: one per
    ``gpus_per_worker`` GPUs if that is above 0, else per ``cpus_per_worker`` CPUs."""
    resources = ray.cluster_resources()
    if gpus_per_worker:
        return max(1, int(resources.get("GPU", 1) // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1) // cpus_per_worker))


@contextmanager
def quiet_data() -> Iterator[None]:
    """Ray Data's progress bars and INFO logs off for the duration (for a
    caller with a progress bar of its own), as they were afterwards."""
    from ray.data import DataContext

    context = DataContext.get_current()
    bars = context.enable_progress_bars
    # ("Progress bars disabled" is a warning of its own.)
    levels = {name: logging.getLogger(name).level for name in ("ray.data", "ray.data._internal.progress")}
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    try:
        yield
    finally:
        context.enable_progress_bars = bars
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


# -- the actors --------------------------------------------------------------


class _Summarizer:
    """One copy of the pipeline (a Ray actor): loaded once, then called with
    batches (``pyarrow.Table``) of rows. Subclasses turn a batch into
    :class:`Record` objects and the output rows into a table."""

    def __init__(self, model: Union[str, None], *, selection: Dict[str, Any], batch_size: int, max_chars: int,
                 threads: int, gpu: bool, int8: bool) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        # Ray gives a GPU actor its own device as device 0 (CUDA_VISIBLE_DEVICES).
        self.nlp = load_pipeline(model, 0 if gpu else -1, int8=int8)
        self.nlp.max_length = max_chars
        self.selection = _selection_overrides(self.nlp, find_bertsum(self.nlp), selection)
        self.batch_size = batch_size
        self.max_chars = max_chars

    def __call__(self, batch: "pa.Table") -> "pa.Table":
        records = self.records(batch)
        rows = list(summarize_records(self.nlp, records, selection=self.selection, batch_size=self.batch_size))
        if len(rows) != len(records):  # summarize_records yields one row per record; never let a row go
            raise RuntimeError(Errors.E063.format(got=len(rows), expected=len(records)))
        return self.table(batch, rows)

    def records(self, batch: "pa.Table") -> List[Record]:
        raise NotImplementedError

    def table(self, batch: "pa.Table", rows: List[Dict[str, Any]]) -> "pa.Table":
        raise NotImplementedError


class _DatasetSummarizer(_Summarizer):
    """Rows of a user's dataset (a text column, an optional id column) to
    the columns of :data:`OUTPUT_COLUMNS`; the id column is passed through."""

    def __init__(self, model, *, text_column: str, id_column: str, **settings) -> None:
        super().__init__(model, **settings)
        self.text_column = text_column
        self.id_column = id_column

    def records(self, batch: "pa.Table") -> List[Record]:
        if self.text_column not in batch.column_names:
            raise ValueError(Errors.E062.format(column=self.text_column, columns=batch.column_names))
        texts = batch.column(self.text_column).to_pylist()
        ids = self._ids(batch).to_pylist()
        return [self._record(doc_id, text) for doc_id, text in zip(ids, texts)]

    def _record(self, doc_id: Any, text: Any) -> Record:
        where = f"{self.id_column}={doc_id!r}"
        if not isinstance(text, str):  # a null (or a column of another type)
            problem = f"field '{self.text_column}' must be a string, got {type(text).__name__}"
            return Record(doc_id, where, row=error_row(doc_id, where, problem))
        return _text_record(doc_id, where, text, self.max_chars)

    def _ids(self, batch: "pa.Table") -> "pa.Array":
        if self.id_column in batch.column_names:
            return batch.column(self.id_column).combine_chunks()
        return pa.nulls(batch.num_rows)

    def table(self, batch: "pa.Table", rows: List[Dict[str, Any]]) -> "pa.Table":
        return pa.table({
            "id": self._ids(batch),
            "summary": pa.array([row["summary"] for row in rows], pa.string()),
            "summary_sents": pa.array([row["summary_sents"] for row in rows], pa.list_(pa.string())),
            "scores": pa.array([row["scores"] for row in rows], pa.list_(pa.float64())),
            "error": pa.array([row.get("error") for row in rows], pa.string()),
        })


class _RecordSummarizer(_Summarizer):
    """Records read by the driver (``spacy-bertsum summarize --engine ray``):
    columns ``_row`` (input position), ``id`` and ``row`` (JSON), ``where``,
    ``text``. Output: ``_row``, ``line`` (the JSON line the local engine
    writes for that record) and ``failed``."""

    def records(self, batch: "pa.Table") -> List[Record]:
        columns = {name: batch.column(name).to_pylist() for name in ("id", "where", "text", "row")}
        return [
            Record(json.loads(doc_id), where, text=text, row=json.loads(row) if row is not None else None)
            for doc_id, where, text, row in zip(columns["id"], columns["where"], columns["text"], columns["row"])
        ]

    def table(self, batch: "pa.Table", rows: List[Dict[str, Any]]) -> "pa.Table":
        return pa.table({
            "_row": batch.column("_row"),
            "line": pa.array([dumps(row) for row in rows], pa.binary()),
            "failed": pa.array([row.get("error") is not None for row in rows], pa.bool_()),
        })


def records_table(first_row: int, records: List[Record]) -> "pa.Table":
    """The input of :class:`_RecordSummarizer` for ``records``, numbered from ``first_row``."""
    return pa.table({
        "_row": pa.array(range(first_row, first_row + len(records)), pa.int64()),
        "id": pa.array([json.dumps(r.id, ensure_ascii=False, default=str) for r in records], pa.string()),
        "where": pa.array([r.where for r in records], pa.string()),
        "text": pa.array([r.text for r in records], pa.string()),
        "row": pa.array([None if r.row is None else json.dumps(r.row, ensure_ascii=False, default=str)
                         for r in records], pa.string()),
    })


# -- the API -------------------------------------------------------------------


def check_settings(model: Any, selection: Dict[str, Any], workers: int, batch_size: int,
                   cpus_per_worker: float) -> Dict[str, Any]:
    """Validate what the actors will get (before any actor starts) and
    return the selection overrides without None values. A path to an
    existing pipeline directory is made absolute (actors have another
    working directory). Raises TypeError or ValueError."""
    from spacy.language import Language

    if isinstance(model, Language):
        raise TypeError(Errors.E061)
    for name, value in (("workers", workers), ("batch_size", batch_size), ("cpus_per_worker", cpus_per_worker)):
        if value is None or value <= 0:
            raise ValueError(Errors.E066.format(name=name, value=value))
    overrides = {k: v for k, v in (selection or {}).items() if v is not None}
    unknown = sorted(set(overrides) - set(SELECTION_KEYS))
    if unknown:
        raise TypeError(Errors.E012.format(names=unknown, allowed=list(SELECTION_KEYS)))
    SelectionConfig().updated(**overrides)  # ValueError for a bad value
    return overrides


def model_name(model: Optional[Union[str, Path]]) -> Optional[str]:
    """``model`` as actors on any node of this cluster can load it: an
    existing directory as an absolute path, anything else as it is."""
    if model is None:
        return None
    return str(Path(model).resolve()) if Path(model).exists() else str(model)


def map_summarizer(ds: "ray.data.Dataset", summarizer: type, *, model: Optional[str], workers: int,
                   batch_size: int, cpus_per_worker: float = 1, gpus_per_worker: float = 0,
                   **settings) -> "ray.data.Dataset":
    """``ds.map_batches`` with ``workers`` actors of ``summarizer``."""
    settings.update(batch_size=batch_size, threads=int(cpus_per_worker), gpu=gpus_per_worker > 0)
    return ds.map_batches(
        summarizer,
        fn_constructor_args=(model,),
        fn_constructor_kwargs=settings,
        batch_size=batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=workers),
        num_cpus=cpus_per_worker,
        num_gpus=gpus_per_worker or None,
    )


def summarize_dataset(
    ds: "ray.data.Dataset",
    *,
    model: Optional[Union[str, Path]] = None,
    text_column: str = "text",
    id_column: str = "id",
    workers: int = 1,
    batch_size: int = 32,
    cpus_per_worker: float = 1,
    gpus_per_worker: float = 0,
    max_chars: int = DEFAULT_MAX_CHARS,
    int8: bool = False,
    **selection: Any,
) -> "ray.data.Dataset":
    """Summarize every row of a ``ray.data.Dataset``: a lazy dataset with the
    columns ``id`` (the ``id_column`` values, null without one), ``summary``,
    ``summary_sents``, ``scores`` and ``error``, one row per input row
    (plain columns, never Doc objects).

    model: a pipeline name or path (see ``spacy_bertsum.loading``; None: the
        shipped ``en_bertsum_news``) that every node can load; not a loaded
        ``Language`` (E061). An existing directory is passed as an absolute path.
    workers: actors, each with its own copy of the pipeline, ``cpus_per_worker``
        CPUs (its torch threads) and ``gpus_per_worker`` GPUs (> 0: on its GPU).
    batch_size: rows per actor call and per ``nlp.pipe`` batch.
    selection: top_k, ratio, max_words, trigram_blocking, min_words overrides.
    A row whose text is null or not a string, or longer than ``max_chars``,
    or on which the pipeline fails, gets ``error`` (``"id='a1': ..."``) and a
    null summary; an empty text gets ``summary == ""``. Rows keep their order
    within a batch; batches come in input order when
    ``DataContext.execution_options.preserve_order`` is set. One block is
    one task for one actor: give ``ds`` at least ``workers`` blocks (e.g.
    ``ds.repartition(n)``) to keep them all busy.
    """
    overrides = check_settings(model, selection, workers, batch_size, cpus_per_worker)
    names = ds.columns(fetch_if_missing=False)  # None: not known without running it
    if names is not None and text_column not in names:
        raise ValueError(Errors.E062.format(column=text_column, columns=names))
    return map_summarizer(
        ds, _DatasetSummarizer, model=model_name(model), workers=workers, batch_size=batch_size,
        cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker, text_column=text_column,
        id_column=id_column, selection=overrides, max_chars=max_chars, int8=int8,
    )

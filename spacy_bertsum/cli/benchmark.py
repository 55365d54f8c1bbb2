"""Speed and memory benchmark: ``python -m spacy_bertsum benchmark``.

Measures, on the same N articles, docs/s, wordpieces/s and peak RSS of

* ``encoder``: the bare Hugging Face encoder replaying exactly the wordpiece
  batches the pipeline feeds it (captured with a forward pre-hook), under
  ``torch.inference_mode()``: the compute floor;
* ``pipeline``: ``nlp.pipe(texts, batch_size=B)`` (tokenization, sentence
  splitting, wordpiece tokenization, encoder, pooling, head, selection);
* ``pipeline_int8`` (with ``--int8``): the same with the encoder quantized to
  int8 (spacy_bertsum.quantize) right after loading;
* ``cli``: ``python -m spacy_bertsum summarize`` end to end in a subprocess
  (Python start-up and model loading included);
* peers: Lead-3 (spaCy sentencizer, first three sentences) and PyTextRank
  (optional: ``pip install pytextrank`` and a spaCy model with a tagger and
  parser, ``en_core_web_sm`` by default);

and the full pipeline on single long documents of growing length.

Every stage runs in a fresh child process (``python -m spacy_bertsum.cli.benchmark
--stage NAME ...``) that loads the model, warms up on 2 docs, runs the stage
and reports seconds and its own peak RSS, so no stage inherits another's
memory. Peak RSS is the child's ``VmHWM`` (see :func:`_peak_rss_mb` for why
not ``ru_maxrss``); "run peak" is the high-water mark of the timed run alone,
after resetting it (``/proc/self/clear_refs``) once the model is loaded and
warmed up. The CLI row is measured from outside: ``/usr/bin/time -f %M``, or
``getrusage(RUSAGE_CHILDREN)`` in a small wrapper process.
"""

import typer

from ._util import app
import argparse
import datetime
import json
import gzip
import lzma
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

DEFAULT_DATA = Path(__file__).parent.parent / "data" / "cnndm_test.jsonl.xz"
DEFAULT_LONG = (1000, 10000, 100000)
TARGET_RATIO = 0.8
LONG_RSS_TARGET_MB = 2048
LINEAR_TOLERANCE = 1.5  # time per word may grow this much over the sizes and still count as flat
TEXTRANK_MODEL = "en_core_web_sm"
TIME_BIN = "/usr/bin/time"

ROWS = (
    ("encoder", "(a) encoder forward only (floor)"),
    ("pipeline", "(b) nlp.pipe, full pipeline"),
    ("pipeline_int8", "(b) nlp.pipe, int8 encoder"),
    ("cli", "(c) CLI summarize, end to end"),
    ("lead3", "(d) Lead-3 (sentencizer)"),
    ("textrank", "(d) PyTextRank"),
)


class BenchmarkError(Exception):
    """A stage could not run; the message says why."""


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def read_texts(path: Path, n: int, field: str = "article") -> List[str]:
    """The first ``n`` non-empty ``field`` values of a JSONL(.gz/.xz) file,
    cycled if the file has fewer."""
    opener = lzma.open if path.suffix == ".xz" else gzip.open if path.suffix == ".gz" else open
    texts: List[str] = []
    with opener(path, "rt", encoding="utf8") as f:  # type: ignore[operator]
        for line in f:
            if not line.strip():
                continue
            value = json.loads(line).get(field)
            if isinstance(value, str) and value.strip():
                texts.append(value)
            if len(texts) >= n:
                break
    if not texts:
        raise BenchmarkError(f"no '{field}' texts in {path}")
    return [texts[i % len(texts)] for i in range(n)]


def long_text(texts: Sequence[str], n_words: int) -> str:
    """A document of exactly ``n_words`` whitespace-separated words, made by
    concatenating ``texts`` (cycling)."""
    words: List[str] = []
    i = 0
    while len(words) < n_words:
        words.extend(texts[i % len(texts)].split())
        i += 1
    return " ".join(words[:n_words])


def _write_jsonl(path: Path, texts: Sequence[str]) -> None:
    with path.open("w", encoding="utf8") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"id": i, "text": text}, ensure_ascii=False) + "\n")


def _read_jsonl_texts(path: Path) -> List[str]:
    with path.open(encoding="utf8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


# ---------------------------------------------------------------------------
# Child side: one stage per process
# ---------------------------------------------------------------------------


def _peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` where /proc has it, else
    ``getrusage(RUSAGE_SELF).ru_maxrss``. On Linux the latter is no good in a
    child: a process started by ``subprocess`` reports at least the RSS its
    parent had when it was spawned (the parent here has torch loaded), while
    ``VmHWM`` belongs to the child's own address space."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _current_rss_mb() -> Optional[float]:
    return _status_mb("VmRSS")


class _Peak:
    """Peak RSS of the process (``getrusage``), and, where Linux lets us reset
    the high-water mark (``/proc/self/clear_refs``), the peak of the timed run
    alone, after model loading and warm-up."""

    def __init__(self) -> None:
        self.before = 0.0
        self.reset = False

    def start(self) -> Optional[float]:
        self.before = _peak_rss_mb()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        return _current_rss_mb()

    def figures(self) -> Dict[str, Optional[float]]:
        now = _peak_rss_mb()
        return {"peak_rss_mb": max(self.before, now), "run_peak_rss_mb": now if self.reset else None}


def _status_mb(key: str) -> Optional[float]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def _sent_count(doc) -> int:
    from ..util import get_sent_scores

    return len(get_sent_scores(doc) or ())


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def _load(model: Optional[str]):
    """The pipeline: a path, package or shipped pipeline name, or (None) the
    shipped model."""
    from ..loading import load, load_model

    return load_model(model) if model else load()


def _hf_model(nlp):
    from .summarize import find_bertsum

    model = nlp.get_pipe(find_bertsum(nlp)).model
    return model.get_ref("encoder").get_ref("transformer").transformer


def stage_build(out_dir: Path) -> Dict[str, Any]:
    """An untrained pipeline (blank English + sentencizer + default bertsum),
    saved to ``out_dir``. Speed does not depend on training."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("bertsum")
    nlp.initialize()
    nlp.to_disk(out_dir)
    return {"model": str(out_dir)}


def _capture_hook(store: List[Dict[str, Any]]):
    def hook(module, args, kwargs):
        names = ("input_ids", "attention_mask", "token_type_ids")
        call = {}
        for i, name in enumerate(names):
            value = kwargs.get(name)
            if value is None and i < len(args):
                value = args[i]
            if value is not None:
                call[name] = value.detach().clone()
        store.append(call)

    return hook


def stage_pipeline(model: Optional[str], texts: List[str], batch_size: int, capture: Optional[Path],
                   int8: bool = False) -> Dict[str, Any]:
    """Time ``nlp.pipe`` over ``texts``; then, untimed, run it again with a
    pre-hook on the HF model to record every encoder call's tensors.
    int8: quantize the encoder after loading (not part of ``load_s``)."""
    import torch

    t0 = time.perf_counter()
    nlp = _load(model)
    load_s = time.perf_counter() - t0
    extra: Dict[str, Any] = {}
    if int8:
        from ..quantize import quantize_encoder
        from .summarize import find_bertsum

        t0 = time.perf_counter()
        extra["quantized_linear_layers"] = quantize_encoder(nlp, find_bertsum(nlp))
        extra["quantize_s"] = time.perf_counter() - t0
    for _ in nlp.pipe(texts[:2], batch_size=batch_size):
        pass
    peak = _Peak()
    rss_before = peak.start()
    n_sents = 0
    t0 = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        n_sents += _sent_count(doc)
    seconds = time.perf_counter() - t0
    peaks = peak.figures()
    calls: List[Dict[str, Any]] = []
    handle = _hf_model(nlp).register_forward_pre_hook(_capture_hook(calls), with_kwargs=True)
    try:
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
    finally:
        handle.remove()
    if capture is not None:
        torch.save(calls, capture)
    real = sum(int(c["attention_mask"].sum()) for c in calls)
    padded = sum(int(c["attention_mask"].numel()) for c in calls)
    return {
        "seconds": seconds,
        "docs": len(texts),
        "wordpieces": real,
        "padded_wordpieces": padded,
        "encoder_calls": len(calls),
        "sentences": n_sents,
        "load_s": load_s,
        "rss_before_mb": rss_before,
        **peaks,
        **extra,
    }


def stage_encoder(model: Optional[str], n_docs: int, capture: Path, grad_mode: str = "inference") -> Dict[str, Any]:
    """Replay the captured encoder calls through the HF model alone."""
    import torch

    t0 = time.perf_counter()
    nlp = _load(model)
    load_s = time.perf_counter() - t0
    hf = _hf_model(nlp)
    hf.eval()
    calls = torch.load(capture)
    if not calls:
        raise BenchmarkError("the pipeline made no encoder call")

    def context():
        return torch.inference_mode() if grad_mode == "inference" else torch.no_grad()

    with context():  # warm-up: the first call's first 2 rows
        hf(**{k: v[:2] for k, v in calls[0].items()})
    peak = _Peak()
    rss_before = peak.start()
    t0 = time.perf_counter()
    with context():
        for call in calls:
            hf(**call)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "docs": n_docs,
        "wordpieces": sum(int(c["attention_mask"].sum()) for c in calls),
        "padded_wordpieces": sum(int(c["attention_mask"].numel()) for c in calls),
        "encoder_calls": len(calls),
        "grad_mode": grad_mode,
        "load_s": load_s,
        "rss_before_mb": rss_before,
        **peak.figures(),
    }


def stage_lead3(texts: List[str], batch_size: int) -> Dict[str, Any]:
    import spacy

    t0 = time.perf_counter()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    load_s = time.perf_counter() - t0
    for doc in nlp.pipe(texts[:2], batch_size=batch_size):
        [s.text for s in list(doc.sents)[:3]]
    peak = _Peak()
    rss_before = peak.start()
    t0 = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        " ".join(s.text.strip() for s in list(doc.sents)[:3])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "docs": len(texts), "load_s": load_s, "rss_before_mb": rss_before, **peak.figures()}


def stage_textrank(texts: List[str], batch_size: int, textrank_model: str) -> Dict[str, Any]:
    import spacy
    import pytextrank  # noqa: F401  (registers the "textrank" factory)

    t0 = time.perf_counter()
    nlp = spacy.load(textrank_model)
    nlp.add_pipe("textrank")
    load_s = time.perf_counter() - t0

    def summary(doc):
        return " ".join(s.text.strip() for s in doc._.textrank.summary(limit_phrases=15, limit_sentences=3))

    for doc in nlp.pipe(texts[:2], batch_size=batch_size):
        summary(doc)
    peak = _Peak()
    rss_before = peak.start()
    t0 = time.perf_counter()
    for doc in nlp.pipe(texts, batch_size=batch_size):
        summary(doc)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "docs": len(texts), "load_s": load_s, "rss_before_mb": rss_before, **peak.figures()}


def stage_long(model: Optional[str], warmup: List[str], text_path: Path) -> Dict[str, Any]:
    text = text_path.read_text(encoding="utf8")
    t0 = time.perf_counter()
    nlp = _load(model)
    load_s = time.perf_counter() - t0
    nlp.max_length = max(nlp.max_length, len(text) + 1)
    for _ in nlp.pipe(warmup[:2]):
        pass
    peak = _Peak()
    rss_before = peak.start()
    t0 = time.perf_counter()
    doc = nlp(text)
    seconds = time.perf_counter() - t0
    return {
        "seconds": seconds,
        "words": len(text.split()),
        "tokens": len(doc),
        "sentences": _sent_count(doc),
        "load_s": load_s,
        "rss_before_mb": rss_before,
        **peak.figures(),
    }


def stage_main(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point of a stage child: ``python -m spacy_bertsum.cli.benchmark --stage NAME ...``.
    Writes its result as JSON to ``--result``."""
    parser = argparse.ArgumentParser(prog="python -m spacy_bertsum.cli.benchmark",
                                     description="Run one benchmark stage (used by `spacy_bertsum benchmark`).")
    parser.add_argument("--stage", required=True,
                        choices=["build", "pipeline", "pipeline-int8", "encoder", "encoder-no-grad", "lead3", "textrank", "long"])
    parser.add_argument("--result", required=True, type=Path)
    parser.add_argument("--model", default="")
    parser.add_argument("--texts", type=Path, help="JSONL with a 'text' field")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--capture", type=Path, help="file of captured encoder calls")
    parser.add_argument("--long-text", type=Path)
    parser.add_argument("--out-dir", type=Path)
    parser.add_argument("--textrank-model", default=TEXTRANK_MODEL)
    args = parser.parse_args(argv)
    try:
        _set_threads(args.threads)
        model = args.model or None
        texts = _read_jsonl_texts(args.texts) if args.texts else []
        if args.stage == "build":
            result = stage_build(args.out_dir)
        elif args.stage in ("pipeline", "pipeline-int8"):
            result = stage_pipeline(model, texts, args.batch_size, args.capture, int8=args.stage == "pipeline-int8")
        elif args.stage in ("encoder", "encoder-no-grad"):
            mode = "inference" if args.stage == "encoder" else "no_grad"
            result = stage_encoder(model, len(texts), args.capture, mode)
        elif args.stage == "lead3":
            result = stage_lead3(texts, args.batch_size)
        elif args.stage == "textrank":
            result = stage_textrank(texts, args.batch_size, args.textrank_model)
        else:
            result = stage_long(model, texts, args.long_text)
        torch = sys.modules.get("torch")
        if torch is not None:
            result["torch_threads"] = torch.get_num_threads()
    except Exception as e:  # reported by the parent
        result = {"error": f"{type(e).__name__}: {e}"}
    args.result.write_text(json.dumps(result), encoding="utf8")


# ---------------------------------------------------------------------------
# Parent side
# ---------------------------------------------------------------------------


def _child_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def _run_stage(stage: str, workdir: Path, threads: int, **options: Any) -> Dict[str, Any]:
    result_path = workdir / f"result-{stage}-{time.monotonic_ns()}.json"
    cmd = [sys.executable, "-m", "spacy_bertsum.cli.benchmark", "--stage", stage,
           "--result", str(result_path), "--threads", str(threads)]
    for key, value in options.items():
        if value is not None:
            cmd += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.run(cmd, env=_child_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not result_path.exists():
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"stage '{stage}' exited with code {proc.returncode}: {tail}"}
    return json.loads(result_path.read_text(encoding="utf8"))


def _run_cli(model: Optional[str], texts_path: Path, workdir: Path, threads: int, batch_size: int,
             n_docs: int) -> Dict[str, Any]:
    """``python -m spacy_bertsum summarize`` as a user runs it: wall time and
    the child's peak RSS (``/usr/bin/time -f %M`` when present, else
    ``getrusage(RUSAGE_CHILDREN)`` in a small wrapper process whose only
    child it is)."""
    out = workdir / "cli-summaries.jsonl"
    cmd = [sys.executable, "-m", "spacy_bertsum", "summarize", str(texts_path), "--output", str(out),
           "--quiet", "--batch-size", str(batch_size)]
    if model:
        cmd += ["--model", model]
    rss_file = workdir / "cli-rss.txt"
    if os.access(TIME_BIN, os.X_OK):
        full = [TIME_BIN, "-f", "%M", "-o", str(rss_file)] + cmd
        how = "/usr/bin/time -f %M"
    else:
        wrapper = (
            "import resource, subprocess, sys\n"
            "rc = subprocess.call(sys.argv[2:])\n"
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
            "sys.exit(rc)\n"
        )
        full = [sys.executable, "-c", wrapper, str(rss_file)] + cmd
        how = "getrusage(RUSAGE_CHILDREN)"
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=_child_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        return {"error": f"summarize exited with code {proc.returncode}: {tail}"}
    try:
        peak = int(rss_file.read_text().strip().splitlines()[-1]) / 1024.0
    except (OSError, ValueError, IndexError):
        peak = None
    rows = sum(1 for line in out.open(encoding="utf8") if line.strip())
    result: Dict[str, Any] = {"seconds": seconds, "docs": n_docs, "rows": rows, "peak_rss_mb": peak, "rss_measured_by": how}
    if rows != n_docs:
        result["error"] = f"summarize wrote {rows} rows for {n_docs} docs"
    return result


def _textrank_unavailable(textrank_model: str) -> Optional[str]:
    import importlib.util

    if importlib.util.find_spec("pytextrank") is None:
        return "not installed (pip install pytextrank)"
    if not Path(textrank_model).exists() and importlib.util.find_spec(textrank_model) is None:
        return (f"not available: needs a spaCy tagger/parser model ({textrank_model}) for noun chunks "
                f"and POS, which is not installed here (python -m spacy download {textrank_model})")
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _with_rates(row: Dict[str, Any], wordpieces: Optional[int]) -> Dict[str, Any]:
    if "error" in row or not row.get("seconds"):
        return row
    row["docs_per_s"] = row["docs"] / row["seconds"]
    if wordpieces:
        row["wordpieces"] = wordpieces
        row["wordpieces_per_s"] = wordpieces / row["seconds"]
    return row


def run_benchmark(
    *,
    data: Path = DEFAULT_DATA,
    n: int = 60,
    model: Optional[str] = None,
    untrained: bool = False,
    batch_size: int = 32,
    threads: Optional[int] = None,
    long_sizes: Sequence[int] = DEFAULT_LONG,
    textrank_model: str = TEXTRANK_MODEL,
    output: Optional[Path] = None,
    print_fn=print,
    int8: bool = False,
) -> Dict[str, Any]:
    """Run all stages and return (and print, and write to ``output``) the figures.
    int8: also time the pipeline with the encoder quantized to int8."""
    if n < 1:
        raise BenchmarkError(f"--n must be at least 1, got {n}")
    if batch_size < 1:
        raise BenchmarkError(f"--batch-size must be at least 1, got {batch_size}")
    threads = threads or os.cpu_count() or 1
    if threads < 1:
        raise BenchmarkError(f"--threads must be at least 1, got {threads}")
    if model and untrained:
        raise BenchmarkError("pass either --model or --untrained, not both")
    if not model and not untrained:
        from ..loading import pipeline_path

        try:
            pipeline_path()
        except OSError as err:
            raise BenchmarkError(f"{err} Or pass --untrained (speed does not depend on training).") from err
    texts = read_texts(Path(data), n)
    workdir = Path(tempfile.mkdtemp(prefix="bertsum-bench-"))
    try:
        return _run_all(texts=texts, data=Path(data), model=model, untrained=untrained, batch_size=batch_size,
                        threads=threads, long_sizes=list(long_sizes), textrank_model=textrank_model,
                        output=output, workdir=workdir, print_fn=print_fn, int8=int8)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_all(*, texts, data, model, untrained, batch_size, threads, long_sizes, textrank_model, output,
             workdir: Path, print_fn, int8: bool = False) -> Dict[str, Any]:
    texts_path = workdir / "texts.jsonl"
    _write_jsonl(texts_path, texts)
    header = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": _version("torch"),
        "spacy": _version("spacy"),
        "spacy_transformers": _version("spacy-transformers"),
        "transformers": _version("transformers"),
        "data": str(data),
        "docs": len(texts),
        "words_per_doc": sum(len(t.split()) for t in texts) / len(texts),
        "batch_size": batch_size,
        "model": model or ("untrained default config" if untrained else "spacy_bertsum.load()"),
    }
    _print_header(header, print_fn)
    if untrained:
        print_fn("building the untrained pipeline ...")
        built = _run_stage("build", workdir, threads, out_dir=workdir / "model")
        if "error" in built:
            raise BenchmarkError(f"cannot build the untrained pipeline: {built['error']}")
        model = built["model"]

    rows: Dict[str, Dict[str, Any]] = {}
    capture = workdir / "encoder-calls.pt"
    print_fn("(b) pipeline ...")
    rows["pipeline"] = _run_stage("pipeline", workdir, threads, model=model, texts=texts_path,
                                  batch_size=batch_size, capture=capture)
    wordpieces = rows["pipeline"].get("wordpieces")
    if int8:
        print_fn("(b) pipeline, int8 encoder ...")
        rows["pipeline_int8"] = _run_stage("pipeline-int8", workdir, threads, model=model, texts=texts_path,
                                           batch_size=batch_size)
    print_fn("(a) encoder replay ...")
    if capture.exists():
        rows["encoder"] = _run_stage("encoder", workdir, threads, model=model, texts=texts_path, capture=capture)
    else:
        rows["encoder"] = {"error": "no captured encoder calls (the pipeline stage failed)"}
    print_fn("(c) CLI ...")
    rows["cli"] = _run_cli(model, texts_path, workdir, threads, batch_size, len(texts))
    print_fn("(d) peers ...")
    rows["lead3"] = _run_stage("lead3", workdir, threads, texts=texts_path, batch_size=batch_size)
    unavailable = _textrank_unavailable(textrank_model)
    if unavailable:
        rows["textrank"] = {"unavailable": unavailable}
    else:
        rows["textrank"] = _run_stage("textrank", workdir, threads, texts=texts_path, batch_size=batch_size,
                                      textrank_model=textrank_model)
    for name in ("encoder", "pipeline", "pipeline_int8", "cli"):
        if name in rows:
            _with_rates(rows[name], wordpieces)
    for name in ("lead3", "textrank"):
        _with_rates(rows[name], None)

    ratio = None
    if rows["pipeline"].get("docs_per_s") and rows["encoder"].get("docs_per_s"):
        ratio = rows["pipeline"]["docs_per_s"] / rows["encoder"]["docs_per_s"]
    results: Dict[str, Any] = {
        "header": header,
        "rows": rows,
        "pipeline_over_encoder": {"ratio": ratio, "target": TARGET_RATIO,
                                  "meets_target": None if ratio is None else ratio >= TARGET_RATIO},
    }
    if int8:
        speedup = None
        if rows["pipeline"].get("docs_per_s") and rows["pipeline_int8"].get("docs_per_s"):
            speedup = rows["pipeline_int8"]["docs_per_s"] / rows["pipeline"]["docs_per_s"]
        results["int8_over_float_pipeline"] = speedup
    _print_rows(rows, ratio, print_fn)
    if int8:
        speedup = results["int8_over_float_pipeline"]
        print_fn(f"int8 / float pipeline docs/s = {_fmt(speedup, '.2f')}  "
                 "(its ROUGE cost: `python -m spacy_bertsum evaluate MODEL DATA --int8`)")

    if long_sizes:
        long_rows = []
        for n_words in long_sizes:
            print_fn(f"long document, {n_words} words ...")
            path = workdir / f"long-{n_words}.txt"
            path.write_text(long_text(texts, n_words), encoding="utf8")
            row = _run_stage("long", workdir, threads, model=model, texts=texts_path, long_text=path)
            row.setdefault("words", n_words)
            if "error" not in row and row.get("seconds"):
                row["words_per_s"] = row["words"] / row["seconds"]
                row["us_per_word"] = 1e6 * row["seconds"] / row["words"]
            long_rows.append(row)
            path.unlink()
        results["long"] = long_rows
        results["long_scaling"] = _scaling(long_rows)
        _print_long(long_rows, results["long_scaling"], print_fn)
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
        print_fn(f"figures written to {output}")
    return results


def _scaling(long_rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    ok = [r for r in long_rows if r.get("us_per_word")]
    largest = max(ok, key=lambda r: r["words"]) if ok else None
    out: Dict[str, Any] = {
        "largest_words": largest["words"] if largest else None,
        "largest_peak_rss_mb": largest["peak_rss_mb"] if largest else None,
        "rss_target_mb": LONG_RSS_TARGET_MB if largest and largest["words"] >= 100000 else None,
    }
    if len(ok) < 2:
        out.update(flat=None, growth=None, verdict="needs two or more sizes to judge")
        return out
    ok = sorted(ok, key=lambda r: r["words"])
    growth = ok[-1]["us_per_word"] / ok[0]["us_per_word"]
    flat = growth <= LINEAR_TOLERANCE
    if not flat:
        judged = f"NOT flat: grows more than x{LINEAR_TOLERANCE} (super-linear time)"
    elif growth < 1 / LINEAR_TOLERANCE:
        judged = "falling: fixed per-doc costs dominate the small sizes; no super-linear growth"
    else:
        judged = "flat: linear growth"
    verdict = f"time per word x{growth:.2f} from {ok[0]['words']:,} to {ok[-1]['words']:,} words: {judged}"
    out.update(flat=flat, growth=growth, verdict=verdict)
    return out


# -- printing -------------------------------------------------------------------


def _fmt(value: Optional[float], spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _print_header(header: Dict[str, Any], print_fn) -> None:
    print_fn("spacy-bertsum benchmark")
    print_fn(f"  date:    {header['date']}")
    print_fn(f"  cpu:     {header['cpu']}, {header['cores']} cores; torch threads: {header['torch_threads']}")
    print_fn(f"  python {header['python']}, torch {header['torch']}, spaCy {header['spacy']}, "
             f"spacy-transformers {header['spacy_transformers']}, transformers {header['transformers']}")
    print_fn(f"  model:   {header['model']}")
    print_fn(f"  data:    {header['docs']} docs from {header['data']} "
             f"({header['words_per_doc']:.0f} words/doc), batch size {header['batch_size']}")


def _table(headers: List[str], body: List[List[str]], print_fn) -> None:
    widths = [max(len(r[i]) for r in [headers] + body) for i in range(len(headers))]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))  # noqa: E731
    print_fn(line(headers))
    print_fn("  ".join("-" * w for w in widths))
    for row in body:
        print_fn(line(row))


def _print_rows(rows: Dict[str, Dict[str, Any]], ratio: Optional[float], print_fn) -> None:
    body = []
    notes = []
    for key, label in ROWS:
        if key not in rows:  # pipeline_int8 without --int8
            continue
        row = rows[key]
        if "error" in row or "unavailable" in row:
            body.append([label, "-", "-", "-", "-", "-"])
            notes.append(f"{label}: {row.get('unavailable') or row.get('error')}")
            continue
        body.append([label, _fmt(row.get("docs_per_s"), ",.2f"), _fmt(row.get("wordpieces_per_s"), ",.0f"),
                     _fmt(row.get("peak_rss_mb"), ",.0f"), _fmt(row.get("run_peak_rss_mb"), ",.0f"),
                     _fmt(row.get("seconds"), ",.2f")])
    print_fn("")
    _table(["stage", "docs/s", "wordpieces/s", "peak RSS MB", "run peak MB", "seconds"], body, print_fn)
    for note in notes:
        print_fn(f"  note: {note}")
    enc = rows["encoder"]
    if enc.get("padded_wordpieces"):
        pad = 1 - enc["wordpieces"] / enc["padded_wordpieces"]
        print_fn(f"  encoder: {enc['encoder_calls']} calls, {enc['wordpieces']:,} real wordpieces, "
                 f"{100 * pad:.1f}% of the positions fed to it are padding")
    print_fn("  peak RSS: whole stage process, model loading included; run peak: during the timed run only.")
    if rows["cli"].get("seconds"):
        print_fn("  CLI time includes Python start-up and model loading.")
    if ratio is None:
        print_fn("pipeline / encoder docs/s: - (a stage failed)")
    else:
        verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
        print_fn(f"pipeline / encoder docs/s = {ratio:.2f}  (target >= {TARGET_RATIO}: {verdict})")


def _print_long(long_rows: List[Dict[str, Any]], scaling: Dict[str, Any], print_fn) -> None:
    body = []
    notes = []
    for row in long_rows:
        if "error" in row:
            body.append([f"{row['words']:,}", "-", "-", "-", "-", "-", "-"])
            notes.append(f"{row['words']} words: {row['error']}")
            continue
        body.append([f"{row['words']:,}", _fmt(row["seconds"], ",.2f"), _fmt(row.get("words_per_s"), ",.0f"),
                     _fmt(row.get("us_per_word"), ",.0f"), f"{row['sentences']:,}", _fmt(row["peak_rss_mb"], ",.0f"),
                     _fmt(row.get("run_peak_rss_mb"), ",.0f")])
    print_fn("")
    print_fn("long documents (one doc each, full pipeline):")
    _table(["words", "seconds", "words/s", "us/word", "sentences", "peak RSS MB", "run peak MB"], body, print_fn)
    for note in notes:
        print_fn(f"  note: {note}")
    print_fn(f"scaling: {scaling['verdict']}")
    if scaling.get("rss_target_mb"):
        peak = scaling["largest_peak_rss_mb"]
        status = "within" if peak is not None and peak < scaling["rss_target_mb"] else "OVER"
        print_fn(f"peak RSS at {scaling['largest_words']:,} words: {_fmt(peak, ',.0f')} MB "
                 f"(target < {scaling['rss_target_mb']} MB: {status})")


def parse_sizes(value: str) -> List[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError as e:
        raise BenchmarkError(f"--long must be comma-separated word counts, got '{value}'") from e
    if any(s < 1 for s in sizes):
        raise BenchmarkError(f"--long word counts must be positive, got '{value}'")
    return sizes



# -- command line ------------------------------------------------------------


@app.command("benchmark")
def benchmark_cli(
    data: Path = typer.Option(None, "--data", help="JSONL(.gz/.xz) with an 'article' field (default: the shipped CNN/DM test sample)", exists=True, dir_okay=False),
    n: int = typer.Option(60, "--n", help="Docs to run (the data is cycled if shorter)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline with a bertsum component (default: spacy_bertsum.load())"),
    untrained: bool = typer.Option(False, "--untrained", help="Use an untrained default pipeline (speed does not depend on training)"),
    batch_size: int = typer.Option(32, "--batch-size", help="Docs per nlp.pipe batch"),
    threads: int = typer.Option(0, "--threads", help="torch threads in every stage (0: os.cpu_count())"),
    long: str = typer.Option("1000,10000,100000", "--long", help="Word counts of the long-document runs"),
    no_long: bool = typer.Option(False, "--no-long", help="Skip the long-document runs"),
    textrank_model: str = typer.Option("en_core_web_sm", "--textrank-model", help="spaCy model with tagger and parser for PyTextRank"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the figures as JSON here"),
    int8: bool = typer.Option(False, "--int8", help="Also time the pipeline with the encoder quantized to int8 (extra row)"),
):
    """Docs/s, wordpieces/s and peak RSS: encoder alone, pipeline, CLI, Lead-3, PyTextRank; long docs."""

    try:
        run_benchmark(
            data=data or DEFAULT_DATA,
            n=n,
            model=model,
            untrained=untrained,
            batch_size=batch_size,
            threads=threads or None,
            long_sizes=[] if no_long else parse_sizes(long),
            textrank_model=textrank_model,
            output=output,
            int8=int8,
        )
    except BenchmarkError as e:
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(2)


if __name__ == "__main__":
    stage_main()

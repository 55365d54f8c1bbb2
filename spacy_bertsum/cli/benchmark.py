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

then the full pipeline on single long documents of growing length (``--long``),
and ``long_in_batch``: ``python -m spacy_bertsum summarize --batch-size B`` on
the N articles with one long document (``--long-in-batch`` words, 100,000 by
default) in the middle, for the target "a 100k-word document inside a batch of
normal ones stays under 2 GB peak RSS". ``--no-long`` skips both.

Every stage runs in a fresh child process (``python -m spacy_bertsum
benchmark-stage SPEC.json``, a hidden command; the spec names the stage and its
options, see ``_benchmark_stages.py``) that loads the model, warms up on 2
docs, runs the stage and reports seconds and its own peak RSS, so no stage
inherits another's memory. Peak RSS is the child's ``VmHWM`` (see
``_benchmark_stages.peak_rss_mb`` for why not ``ru_maxrss``); "run peak" is the
high-water mark of the timed run alone, after resetting it
(``/proc/self/clear_refs``) once the model is loaded and warmed up. The CLI
rows are measured from outside: ``/usr/bin/time -f %M``, or
``getrusage(RUSAGE_CHILDREN)`` in a small wrapper process.
"""
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import srsly
import typer
from wasabi import msg

from ..errors import Errors
from . import _benchmark_report as report
from ._benchmark_stages import run_stage_file, stage_pipeline  # noqa: F401  (stage_pipeline: public, tests)
from ._jsonl import read_jsonl
from ._util import app

DEFAULT_DATA = Path(__file__).parent.parent / "data" / "cnndm_test.jsonl.xz"
DEFAULT_LONG = (1000, 10000, 100000)
DEFAULT_LONG_IN_BATCH = 100000
TEXTRANK_MODEL = "en_core_web_sm"
TIME_BIN = "/usr/bin/time"


# -- data ----------------------------------------------------------------------


def read_texts(path: Path, n: int, field: str = "article") -> List[str]:
    """The first ``n`` non-empty ``field`` values of a JSONL(.gz/.xz) file,
    cycled if the file has fewer."""
    texts: List[str] = []
    for _, obj in read_jsonl(path):
        value = obj.get(field) if isinstance(obj, dict) else None
        if isinstance(value, str) and value.strip():
            texts.append(value)
        if len(texts) >= n:
            break
    if not texts:
        raise ValueError(Errors.E040.format(path=path, field=field))
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


def with_long_doc(texts: Sequence[str], n_words: int) -> List[str]:
    """``texts`` with a ``long_text`` of ``n_words`` words inserted in the
    middle (at ``len(texts) // 2``), so it shares a batch with normal docs."""
    mid = len(texts) // 2
    return list(texts[:mid]) + [long_text(texts, n_words)] + list(texts[mid:])


def parse_sizes(value: str) -> List[int]:
    """``"1000,10_000"`` -> ``[1000, 10000]`` (the ``--long`` option)."""
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        sizes = [0]
    if any(s < 1 for s in sizes):
        raise ValueError(Errors.E043.format(value=value))
    return sizes


def _write_jsonl(path: Path, texts: Sequence[str]) -> None:
    srsly.write_jsonl(path, ({"id": i, "text": text} for i, text in enumerate(texts)))


# -- child processes -----------------------------------------------------------


def _child_env(threads: int) -> Dict[str, str]:
    env = dict(os.environ)
    for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[key] = str(threads)
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


def _stderr_tail(proc: subprocess.CompletedProcess) -> str:
    return "\n".join(proc.stderr.strip().splitlines()[-5:])


def _run_stage(stage: str, workdir: Path, threads: int, **options: Any) -> Dict[str, Any]:
    """Run ``stage`` in a child process (``benchmark-stage``); its figures, or
    ``{"error": ...}``. ``options``: the stage function's arguments (JSON
    values or paths; ``texts``: a JSONL file)."""
    stamp = time.monotonic_ns()
    spec_path = workdir / f"stage-{stage}-{stamp}.json"
    result_path = workdir / f"result-{stage}-{stamp}.json"
    options = {k: str(v) if isinstance(v, Path) else v for k, v in options.items()}
    srsly.write_json(spec_path, {"stage": stage, "result": str(result_path), "threads": threads, "options": options})
    cmd = [sys.executable, "-m", "spacy_bertsum", "benchmark-stage", str(spec_path)]
    proc = subprocess.run(cmd, env=_child_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if not result_path.exists():
        return {"error": f"stage '{stage}' exited with code {proc.returncode}: {_stderr_tail(proc)}"}
    return srsly.read_json(result_path)


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
    out.unlink(missing_ok=True)
    t0 = time.perf_counter()
    proc = subprocess.run(full, env=_child_env(threads), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        return {"error": f"summarize exited with code {proc.returncode}: {_stderr_tail(proc)}", "rss_measured_by": how}
    try:
        peak = int(rss_file.read_text().strip().splitlines()[-1]) / 1024.0
    except (OSError, ValueError, IndexError):
        peak = None
    written = list(srsly.read_jsonl(out))
    failed = [row for row in written if row.get("error") is not None]
    result: Dict[str, Any] = {"seconds": seconds, "docs": n_docs, "rows": len(written), "peak_rss_mb": peak,
                              "rss_measured_by": how}
    if len(written) != n_docs:
        result["error"] = f"summarize wrote {len(written)} rows for {n_docs} docs"
    elif failed:
        result["error"] = f"summarize wrote {len(failed)} error row(s), e.g. id {failed[0].get('id')}: {failed[0]['error']}"
    return result


def _run_long_in_batch(texts: List[str], n_words: int, model: Optional[str], workdir: Path, threads: int,
                       batch_size: int) -> Dict[str, Any]:
    """The CLI row on ``texts`` with one ``n_words``-word document in the middle."""
    docs = with_long_doc(texts, n_words)
    path = workdir / "long-in-batch.jsonl"
    _write_jsonl(path, docs)
    row = _run_cli(model, path, workdir, threads, batch_size, len(docs))
    path.unlink()
    target = report.rss_target(n_words)
    peak = row.get("peak_rss_mb")
    meets = None if target is None or peak is None or "error" in row else peak < target
    row.update(words=n_words, position=len(texts) // 2, batch_size=batch_size, rss_target_mb=target,
               meets_target=meets)
    return row


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


# -- the benchmark -------------------------------------------------------------


def run_benchmark(
    *,
    data: Path = DEFAULT_DATA,
    n: int = 60,
    model: Optional[str] = None,
    untrained: bool = False,
    batch_size: int = 32,
    threads: Optional[int] = None,
    long_sizes: Sequence[int] = DEFAULT_LONG,
    long_in_batch: int = DEFAULT_LONG_IN_BATCH,
    textrank_model: str = TEXTRANK_MODEL,
    output: Optional[Path] = None,
    print_fn=print,
    int8: bool = False,
) -> Dict[str, Any]:
    """Run all stages and return (and print, and write to ``output``) the figures.
    long_in_batch: words of the long doc run inside a batch (0: skip that run).
    int8: also time the pipeline with the encoder quantized to int8."""
    if model and untrained:
        raise ValueError(Errors.E041)
    if not model and not untrained:
        from ..loading import pipeline_path

        try:
            pipeline_path()
        except OSError as err:
            raise ValueError(Errors.E042.format(err=err)) from err
    texts = read_texts(Path(data), n)
    workdir = Path(tempfile.mkdtemp(prefix="bertsum-bench-"))
    try:
        return _run_all(texts=texts, data=Path(data), model=model, untrained=untrained, batch_size=batch_size,
                        threads=threads or os.cpu_count() or 1, long_sizes=list(long_sizes),
                        long_in_batch=long_in_batch, textrank_model=textrank_model, output=output,
                        workdir=workdir, print_fn=print_fn, int8=int8)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_all(*, texts, data, model, untrained, batch_size, threads, long_sizes, long_in_batch, textrank_model,
             output, workdir: Path, print_fn, int8: bool) -> Dict[str, Any]:
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
    report.print_header(header, print_fn)
    if untrained:
        print_fn("building the untrained pipeline ...")
        built = _run_stage("build", workdir, threads, out_dir=workdir / "model")
        if "error" in built:
            raise ValueError(Errors.E044.format(err=built["error"]))
        model = built["model"]

    rows: Dict[str, Dict[str, Any]] = {}
    capture = workdir / "encoder-calls.pt"
    print_fn("(b) pipeline ...")
    rows["pipeline"] = _run_stage("pipeline", workdir, threads, model=model, texts=texts_path,
                                  batch_size=batch_size, capture=capture)
    wordpieces = rows["pipeline"].get("wordpieces")
    if int8:
        print_fn("(b) pipeline, int8 encoder ...")
        rows["pipeline_int8"] = _run_stage("pipeline", workdir, threads, model=model, texts=texts_path,
                                           batch_size=batch_size, capture=None, int8=True)
    print_fn("(a) encoder replay ...")
    if capture.exists():
        rows["encoder"] = _run_stage("encoder", workdir, threads, model=model, n_docs=len(texts), capture=capture)
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
            report.with_rates(rows[name], wordpieces)
    for name in ("lead3", "textrank"):
        report.with_rates(rows[name], None)

    ratio = None
    if rows["pipeline"].get("docs_per_s") and rows["encoder"].get("docs_per_s"):
        ratio = rows["pipeline"]["docs_per_s"] / rows["encoder"]["docs_per_s"]
    results: Dict[str, Any] = {
        "header": header,
        "rows": rows,
        "pipeline_over_encoder": {"ratio": ratio, "target": report.TARGET_RATIO,
                                  "meets_target": None if ratio is None else ratio >= report.TARGET_RATIO},
    }
    report.print_rows(rows, ratio, print_fn)
    if int8:
        speedup = None
        if rows["pipeline"].get("docs_per_s") and rows["pipeline_int8"].get("docs_per_s"):
            speedup = rows["pipeline_int8"]["docs_per_s"] / rows["pipeline"]["docs_per_s"]
        results["int8_over_float_pipeline"] = speedup
        print_fn(f"int8 / float pipeline docs/s = {report.fmt(speedup, '.2f')}  "
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
        results["long_scaling"] = report.scaling(long_rows)
        report.print_long(long_rows, results["long_scaling"], print_fn)
    if long_in_batch:
        print_fn(f"CLI, one {long_in_batch}-word document among {len(texts)} ...")
        results["long_in_batch"] = _run_long_in_batch(texts, long_in_batch, model, workdir, threads, batch_size)
        report.print_long_in_batch(results["long_in_batch"], print_fn)
    if output is not None:
        output = Path(output)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
        print_fn(f"figures written to {output}")
    return results


# -- command line --------------------------------------------------------------


@app.command("benchmark")
def benchmark_cli(
    data: Path = typer.Option(None, "--data", help="JSONL(.gz/.xz) with an 'article' field (default: the shipped CNN/DM test sample)", exists=True, dir_okay=False),
    n: int = typer.Option(60, "--n", min=1, help="Docs to run (the data is cycled if shorter)"),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Pipeline with a bertsum component (default: spacy_bertsum.load())"),
    untrained: bool = typer.Option(False, "--untrained", help="Use an untrained default pipeline (speed does not depend on training)"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Docs per nlp.pipe batch (and summarize --batch-size)"),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads in every stage (0: os.cpu_count())"),
    long: str = typer.Option("1000,10000,100000", "--long", help="Word counts of the long-document runs"),
    long_in_batch: int = typer.Option(DEFAULT_LONG_IN_BATCH, "--long-in-batch", min=0, help="Words of the long doc that `summarize` gets in the middle of the --n docs (0: skip)"),
    no_long: bool = typer.Option(False, "--no-long", help="Skip the long-document runs (--long and --long-in-batch)"),
    textrank_model: str = typer.Option(TEXTRANK_MODEL, "--textrank-model", help="spaCy model with tagger and parser for PyTextRank"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Also write the figures as JSON here"),
    int8: bool = typer.Option(False, "--int8", help="Also time the pipeline with the encoder quantized to int8 (extra row)"),
):
    """Docs/s, wordpieces/s and peak RSS: encoder alone, pipeline, CLI, Lead-3,
    PyTextRank; long docs alone and inside a CLI batch."""
    try:
        run_benchmark(
            data=data or DEFAULT_DATA,
            n=n,
            model=model,
            untrained=untrained,
            batch_size=batch_size,
            threads=threads or None,
            long_sizes=[] if no_long else parse_sizes(long),
            long_in_batch=0 if no_long else long_in_batch,
            textrank_model=textrank_model,
            output=output,
            int8=int8,
        )
    except ValueError as e:
        msg.fail(str(e), exits=2)


@app.command("benchmark-stage", hidden=True)
def benchmark_stage_cli(
    spec: Path = typer.Argument(..., help="Stage spec (JSON) written by `benchmark`", exists=True, dir_okay=False),
):
    """Run one benchmark stage in this process (the child side of `benchmark`)."""
    run_stage_file(spec)

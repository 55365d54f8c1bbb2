"""The child side of ``benchmark``: one stage per process.

The parent writes a stage spec with ``srsly`` (``{"stage": NAME, "result":
PATH, "threads": N, "options": {...}}``) and runs ``python -m spacy_bertsum
benchmark-stage SPEC`` (a hidden command, see ``benchmark.py``), which calls
:func:`run_stage_file`. It loads the model, warms up on 2 docs, runs the stage
and writes seconds and its own peak RSS to ``result``; an exception becomes
``{"error": ...}`` there, so the parent can report it in the stage's row.
"""
import resource
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import srsly

from ..errors import Errors


def read_jsonl_texts(path: Path) -> List[str]:
    """The ``text`` field of every row of a JSONL file written by the parent."""
    return [row["text"] for row in srsly.read_jsonl(path)]


# -- memory probes -------------------------------------------------------------


def _status_mb(key: str) -> Optional[float]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` where /proc has it, else
    ``getrusage(RUSAGE_SELF).ru_maxrss``. On Linux the latter is no good in a
    child: a process started by ``subprocess`` reports at least the RSS its
    parent had when it was spawned (the parent here has torch loaded), while
    ``VmHWM`` belongs to the child's own address space."""
    hwm = _status_mb("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


class _Peak:
    """Peak RSS of the process, and, where Linux lets us reset the high-water
    mark (``/proc/self/clear_refs``), the peak of the timed run alone, after
    model loading and warm-up."""

    def __init__(self) -> None:
        self.before = 0.0
        self.reset = False

    def start(self) -> Optional[float]:
        """Reset the high-water mark; return the current RSS."""
        self.before = peak_rss_mb()
        try:
            Path("/proc/self/clear_refs").write_text("5")
            self.reset = True
        except OSError:
            self.reset = False
        return _status_mb("VmRSS")

    def figures(self) -> Dict[str, Optional[float]]:
        now = peak_rss_mb()
        return {"peak_rss_mb": max(self.before, now), "run_peak_rss_mb": now if self.reset else None}


# -- helpers -------------------------------------------------------------------


def _sent_count(doc) -> int:
    from ..util import get_sent_scores

    return len(get_sent_scores(doc) or ())


def _load(model: Optional[str]):
    """The pipeline: a path, package or shipped pipeline name, or (None) the
    shipped model."""
    from ..loading import load, load_model

    return load_model(model) if model else load()


def _hf_model(nlp):
    from ..loading import find_bertsum

    model = nlp.get_pipe(find_bertsum(nlp)).model
    return model.get_ref("encoder").get_ref("transformer").transformer


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


def _timed(run: Callable[[], Any]) -> Dict[str, Any]:
    """Call ``run()`` once, timed, with the RSS high-water mark reset first;
    its return value is under ``"value"``."""
    peak = _Peak()
    rss_before = peak.start()
    t0 = time.perf_counter()
    value = run()
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rss_before_mb": rss_before, "value": value, **peak.figures()}


# -- stages --------------------------------------------------------------------


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
        from ..loading import find_bertsum

        t0 = time.perf_counter()
        extra["quantized_linear_layers"] = quantize_encoder(nlp, find_bertsum(nlp))
        extra["quantize_s"] = time.perf_counter() - t0
    for _ in nlp.pipe(texts[:2], batch_size=batch_size):
        pass
    run = _timed(lambda: sum(_sent_count(doc) for doc in nlp.pipe(texts, batch_size=batch_size)))
    n_sents = run.pop("value")
    calls: List[Dict[str, Any]] = []
    handle = _hf_model(nlp).register_forward_pre_hook(_capture_hook(calls), with_kwargs=True)
    try:
        for _ in nlp.pipe(texts, batch_size=batch_size):
            pass
    finally:
        handle.remove()
    if capture is not None:
        torch.save(calls, capture)
    return {
        "seconds": run.pop("seconds"),
        "docs": len(texts),
        "wordpieces": sum(int(c["attention_mask"].sum()) for c in calls),
        "padded_wordpieces": sum(int(c["attention_mask"].numel()) for c in calls),
        "encoder_calls": len(calls),
        "sentences": n_sents,
        "load_s": load_s,
        **run,
        **extra,
    }


def stage_encoder(model: Optional[str], n_docs: int, capture: Path, grad_mode: str = "inference") -> Dict[str, Any]:
    """Replay the captured encoder calls through the HF model alone, under
    ``torch.inference_mode()`` (or ``torch.no_grad()``: ``grad_mode="no_grad"``)."""
    import torch

    t0 = time.perf_counter()
    nlp = _load(model)
    load_s = time.perf_counter() - t0
    hf = _hf_model(nlp)
    hf.eval()
    calls = torch.load(capture)
    if not calls:
        raise ValueError(Errors.E045)

    def context():
        return torch.inference_mode() if grad_mode == "inference" else torch.no_grad()

    def replay() -> None:
        with context():
            for call in calls:
                hf(**call)

    with context():  # warm-up: the first call's first 2 rows
        hf(**{k: v[:2] for k, v in calls[0].items()})
    run = _timed(replay)
    run.pop("value")
    return {
        "seconds": run.pop("seconds"),
        "docs": n_docs,
        "wordpieces": sum(int(c["attention_mask"].sum()) for c in calls),
        "padded_wordpieces": sum(int(c["attention_mask"].numel()) for c in calls),
        "encoder_calls": len(calls),
        "grad_mode": grad_mode,
        "load_s": load_s,
        **run,
    }


def _peer_stage(nlp, load_s: float, texts: List[str], batch_size: int, summary: Callable) -> Dict[str, Any]:
    for doc in nlp.pipe(texts[:2], batch_size=batch_size):
        summary(doc)

    def run() -> None:
        for doc in nlp.pipe(texts, batch_size=batch_size):
            summary(doc)

    figures = _timed(run)
    figures.pop("value")
    return {"docs": len(texts), "load_s": load_s, **figures}


def stage_lead3(texts: List[str], batch_size: int) -> Dict[str, Any]:
    """Lead-3: spaCy's sentencizer, first three sentences."""
    import spacy

    from .evaluate import lead_sentences

    t0 = time.perf_counter()
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    load_s = time.perf_counter() - t0
    return _peer_stage(nlp, load_s, texts, batch_size, lambda doc: " ".join(lead_sentences(doc)))


def stage_textrank(texts: List[str], batch_size: int, textrank_model: str) -> Dict[str, Any]:
    """PyTextRank's 3-sentence summary on ``textrank_model``."""
    import spacy
    import pytextrank  # noqa: F401  (registers the "textrank" factory)

    t0 = time.perf_counter()
    nlp = spacy.load(textrank_model)
    nlp.add_pipe("textrank")
    load_s = time.perf_counter() - t0

    def summary(doc):
        return " ".join(s.text.strip() for s in doc._.textrank.summary(limit_phrases=15, limit_sentences=3))

    return _peer_stage(nlp, load_s, texts, batch_size, summary)


def stage_long(model: Optional[str], texts: List[str], long_text: Path) -> Dict[str, Any]:
    """The full pipeline on the one document in ``long_text`` (``texts``: warm-up)."""
    text = long_text.read_text(encoding="utf8")
    t0 = time.perf_counter()
    nlp = _load(model)
    load_s = time.perf_counter() - t0
    nlp.max_length = max(nlp.max_length, len(text) + 1)
    for _ in nlp.pipe(texts[:2]):
        pass
    run = _timed(lambda: nlp(text))
    doc = run.pop("value")
    return {
        "seconds": run.pop("seconds"),
        "words": len(text.split()),
        "tokens": len(doc),
        "sentences": _sent_count(doc),
        "load_s": load_s,
        **run,
    }


STAGES: Dict[str, Callable[..., Dict[str, Any]]] = {
    "build": stage_build,
    "pipeline": stage_pipeline,
    "encoder": stage_encoder,
    "lead3": stage_lead3,
    "textrank": stage_textrank,
    "long": stage_long,
}
#: Stage options that are file paths (JSON has no Path).
PATH_OPTIONS = ("out_dir", "capture", "long_text")


def run_stage(stage: str, threads: int, options: Dict[str, Any]) -> Dict[str, Any]:
    """Run one stage in this process with ``threads`` torch threads and
    return its figures. ``options`` are the stage function's arguments, JSON
    values, except ``texts``: the path of a JSONL file with a ``text`` field."""
    import torch

    if stage not in STAGES:
        raise ValueError(Errors.E046.format(stage=stage, stages=", ".join(STAGES)))
    torch.set_num_threads(threads)
    kwargs = dict(options)
    for key in PATH_OPTIONS:
        if kwargs.get(key) is not None:
            kwargs[key] = Path(kwargs[key])
    if "texts" in kwargs:
        kwargs["texts"] = read_jsonl_texts(Path(kwargs["texts"]))
    result = STAGES[stage](**kwargs)
    result["torch_threads"] = torch.get_num_threads()
    return result


def run_stage_file(spec_path: Path) -> None:
    """Entry point of a stage child: run the stage the spec file names and
    write its figures, or ``{"error": ...}``, to the spec's ``result`` path."""
    spec = srsly.read_json(spec_path)
    try:
        result = run_stage(spec["stage"], spec["threads"], spec.get("options", {}))
    except Exception as e:  # reported by the parent in the stage's row
        result = {"error": f"{type(e).__name__}: {e}"}
    srsly.write_json(spec["result"], result)

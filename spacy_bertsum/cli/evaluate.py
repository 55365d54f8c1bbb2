"""Side-by-side evaluation: the model, Lead-3, TextRank and the oracle on the same docs.

Every row uses the same sentence splitting (the pipeline's own) and the same
ROUGE (rouge-score F1 with stemming; ROUGE-Lsum over newline-joined sentences).
TextRank (unsupervised: sentences ranked by lexical centrality,
``features.textrank``) selects with the component's own selection settings.
Next to the means: each system's paired difference to Lead-3 with a 95%
bootstrap confidence interval over documents (and the model's to TextRank), where its picks fall (sentence
positions, and the share at position ``LATE_POSITION`` or later), and the same
per value of a field kept by ``convert --keep-fields`` (``by``).
"""
import bisect
import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import numpy
import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.training import Example
from tqdm import tqdm
from wasabi import msg

from ..architectures import get_tokenizer
from ..errors import Errors
from ..features import lexical_features
from ..loading import load_model
from ..scorer import ROUGE_TYPES, example_rouge, reference_summary, rouge_f
from ..selection import lead, select_spans
from ..significance import paired_bootstrap
from ..util import FIELDS_KEY, SPANS_KEY, has_sentences
from ._util import app

#: Sentence positions >= this are lumped into one bin, "20+".
MAX_POSITION = 20
POSITION_BINS = [str(i) for i in range(MAX_POSITION)] + [f"{MAX_POSITION}+"]
#: Picks at this 0-based sentence position or later count as "late".
LATE_POSITION = 10


@dataclass
class RougeTotals:
    """Per-document ROUGE F1 (0-1) of one system, in document order."""

    scores: Dict[str, List[float]] = field(default_factory=lambda: {n: [] for n in ROUGE_TYPES})

    @property
    def n(self) -> int:
        return len(self.scores[ROUGE_TYPES[0]])

    def add(self, candidate: List[str], reference: List[str]) -> None:
        self.add_scores(rouge_f(candidate, reference))

    def add_scores(self, scores: Dict[str, float]) -> None:
        for name, value in scores.items():
            self.scores[name].append(value)

    def means(self, idx: Optional[List[int]] = None) -> Dict[str, float]:
        out = {}
        for name, values in self.scores.items():
            chosen = values if idx is None else [values[i] for i in idx]
            out[name] = 100 * sum(chosen) / max(len(chosen), 1)
        return out

    def diff(self, other: "RougeTotals", idx: Optional[List[int]] = None, seed: int = 0) -> Dict[str, List[float]]:
        """Paired difference to ``other`` (0-100) per ROUGE type: [mean, low, high]
        of the 95% bootstrap interval over documents."""
        out = {}
        for name in ROUGE_TYPES:
            a, b = self.scores[name], other.scores[name]
            if idx is not None:
                a, b = [a[i] for i in idx], [b[i] for i in idx]
            out[name] = [round(100 * x, 3) for x in paired_bootstrap(a, b, seed=seed)]
        return out


def lead_spans(doc: Doc, k: int = 3) -> List:
    """The sentences (spans) of Lead-k (``selection.lead``)."""
    sents = list(doc.sents) if len(doc) else []
    return [sents[i] for i in lead(len(sents), k)]


def lead_sentences(doc: Doc, k: int = 3) -> List[str]:
    """The texts of Lead-k's sentences."""
    return [span.text.strip() for span in lead_spans(doc, k)]


def textrank_spans(doc: Doc, pipe) -> List:
    """TextRank's summary of ``doc``: its sentences ranked by lexical
    centrality (``features``: PageRank on the word-overlap graph, in blocks of
    the model's block_size), selected by ``pipe``'s selection settings."""
    block_size = pipe.model.attrs.get("block_size", 128)
    return select_spans(doc, lexical_features(doc, block_size)[:, 0].tolist(), pipe.selection)


def sentence_positions(doc: Doc, spans: Iterable) -> List[int]:
    """0-based index, in ``doc.sents``, of the sentence each span starts in. The
    spans may come from another doc with the same text (e.g. the gold doc): they
    are matched by character offset."""
    starts = [sent.start_char for sent in doc.sents] if len(doc) and has_sentences(doc) else [0]
    return [max(bisect.bisect_right(starts, span.start_char) - 1, 0) for span in spans]


def position_bin(index: int) -> str:
    return str(index) if index < MAX_POSITION else POSITION_BINS[-1]


def position_counts(picks: List[List[int]]) -> Dict[str, int]:
    """How many picks (0-based sentence positions, one list per doc) fall in
    each bin of POSITION_BINS."""
    counts = {b: 0 for b in POSITION_BINS}
    for index in (p for doc in picks for p in doc):
        counts[position_bin(index)] += 1
    return counts


def n_words(sents: List[str]) -> int:
    return sum(len(s.split()) for s in sents)


def encoder_tokenizer(nlp: Language, pipe_name: str = "bertsum"):
    """The bertsum encoder's Hugging Face tokenizer, or None."""
    try:
        return get_tokenizer(nlp.get_pipe(pipe_name).model)
    except (KeyError, ValueError, AttributeError):
        return None


def evaluate(
    nlp: Language,
    gold_docs: Iterable[Doc],
    *,
    pipe_name: str = "bertsum",
    batch_size: int = 32,
    window: int = 512,
    show_progress: bool = True,
    total: Optional[int] = None,
    on_doc: Optional[Callable[[Doc, Doc], None]] = None,
    by: Optional[str] = None,
) -> Dict:
    """ROUGE (0-100) of the model, Lead-3 and the oracle on ``gold_docs``
    (reference docs as written by ``convert``), plus counts.

    Also returns, per system, ``positions[system]``: how many selected sentences
    were at each 0-based sentence position (keys ``"0"`` ... ``"19"``, ``"20+"``),
    and ``summary_words[system]``: the length in words of each summary (with
    ``"reference"`` for the reference summaries). ``on_doc(gold, predicted)`` is
    called for every doc, e.g. to keep a few for display.

    ``vs_lead3[system]``: the paired difference to Lead-3 per ROUGE type,
    ``[mean, low, high]`` with the 95% bootstrap interval (``vs_textrank["model"]``:
    the model's to TextRank); ``late_share[system]``:
    the share of its picks at position ``LATE_POSITION`` or later. With ``by``
    (a field kept by ``convert --keep-fields``), ``groups[value]`` repeats these
    for the docs with that value."""
    pipe = nlp.get_pipe(pipe_name)
    spans_key = pipe.cfg.get("spans_key", SPANS_KEY)
    tokenizer = encoder_tokenizer(nlp, pipe_name)
    rows = {"model": RougeTotals(), "lead3": RougeTotals(), "textrank": RougeTotals(), "oracle": RougeTotals()}
    picks: Dict[str, List[List[int]]] = {name: [] for name in rows}
    group_of: List[str] = []
    summary_words: Dict[str, List[int]] = {name: [] for name in list(rows) + ["reference"]}
    n_long = n_skipped = 0
    gold_list = [doc for doc in gold_docs]
    # The reference as the registered scorer (`spacy evaluate`) takes it.
    references = [reference_summary(doc, spans_key) for doc in gold_list]
    start = time.perf_counter()
    texts = (doc.text for doc in gold_list)
    progress = tqdm(total=total or len(gold_list), disable=not show_progress, unit="doc", desc="evaluate")
    for gold, reference, doc in zip(gold_list, references, nlp.pipe(texts, batch_size=batch_size)):
        progress.update(1)
        if on_doc is not None:
            on_doc(gold, doc)
        if reference is None:
            n_skipped += 1
            continue
        selections = {
            "model": list(doc.spans[spans_key]) if spans_key in doc.spans else [],
            "lead3": lead_spans(doc),
            "textrank": textrank_spans(doc, pipe),
        }
        if spans_key in gold.spans:
            selections["oracle"] = list(gold.spans[spans_key])
        for name, spans in selections.items():
            sents = [s.text.strip() for s in spans]
            if name == "model":  # the registered scorer's own per-doc ROUGE: `spacy evaluate` agrees
                rows[name].add_scores(example_rouge(Example(doc, gold), spans_key))
            else:
                rows[name].add(sents, reference)
            summary_words[name].append(n_words(sents))
            picks[name].append(sentence_positions(doc, spans))
        if by is not None:
            group_of.append(str((gold.user_data.get(FIELDS_KEY) or {}).get(by)))
        summary_words["reference"].append(n_words(reference))
        if tokenizer is not None and len(tokenizer(doc.text, verbose=False)["input_ids"]) > window:
            n_long += 1
    progress.close()
    seconds = time.perf_counter() - start
    n_all = rows["model"].n
    result = {
        **_summary(rows, picks, summary_words),
        "n_docs": n_all,
        "n_skipped_no_reference": n_skipped,
        "n_longer_than_window": n_long,
        "window_wordpieces": window,
        "seconds": round(seconds, 1),
        "docs_per_second": round(rows["model"].n / seconds, 2) if seconds else None,
        "positions": {name: position_counts(picks[name]) for name in rows if rows[name].n},
        "summary_words": {name: words for name, words in summary_words.items() if words},
        # Per-doc F1 (0-1) of every system scored on all docs, and a digest of
        # the docs: a later run on the same docs is compared with this one
        # pairwise (`--baseline`).
        "per_doc": {
            name: {n: [round(x, 6) for x in totals.scores[n]] for n in ROUGE_TYPES}
            for name, totals in rows.items() if totals.n and totals.n == n_all
        },
        "docs_digest": docs_digest(gold for gold, reference in zip(gold_list, references) if reference is not None),
    }
    result["vs_textrank"] = {"model": rows["model"].diff(rows["textrank"])} if rows["model"].n else {}
    if by is not None:
        result["by"] = by
        # the docs (indices into per_doc) of each value
        result["group_docs"] = {value: [i for i, g in enumerate(group_of) if g == value] for value in sorted(set(group_of))}
        result["groups"] = {
            value: _summary(rows, picks, summary_words, idx) for value, idx in result["group_docs"].items()
        }
    return result


def _summary(
    rows: Dict[str, RougeTotals],
    picks: Dict[str, List[List[int]]],
    summary_words: Dict[str, List[int]],
    idx: Optional[List[int]] = None,
) -> Dict:
    """ROUGE means, paired differences to Lead-3, late-pick shares and mean
    summary lengths in words (``mean_words``, with the references') of the
    systems on the docs ``idx`` (all when None). ROUGE F1 depends on length:
    where the references are much shorter than three sentences (CNN's
    highlights), a shorter summary gains F1 without being better."""
    # A system scored on fewer docs (the oracle, where some gold docs have no
    # oracle spans) has no per-doc pairing: its mean is shown overall only.
    n_all = rows["model"].n
    present = [name for name, totals in rows.items() if totals.n and (idx is None or totals.n == n_all)]
    out: Dict = {"n_docs": n_all if idx is None else len(idx)}
    out["rouge"] = {name: rows[name].means(idx) for name in present}
    if rows["lead3"].n:
        out["vs_lead3"] = {
            name: rows[name].diff(rows["lead3"], idx) for name in present if name != "lead3" and rows[name].n == n_all
        }
    out["late_share"] = {
        name: round(late_share(picks[name] if idx is None else [picks[name][i] for i in idx]), 4)
        for name in present
    }
    out["mean_words"] = {
        name: round(float(numpy.mean(words if idx is None else [words[i] for i in idx])), 1)
        for name, words in summary_words.items()
        if words and (idx is None or idx) and (name in present or name == "reference")
    }
    return out


def late_share(picks: List[List[int]], late: int = LATE_POSITION) -> float:
    """The share of picks (0-based sentence positions, one list per doc) at
    position ``late`` or later."""
    flat = [p for doc in picks for p in doc]
    return sum(p >= late for p in flat) / max(len(flat), 1)


def docs_digest(docs: Iterable[Doc]) -> str:
    """A digest of the texts of ``docs``, in order: two evaluations with the
    same digest scored the same documents."""
    digest = hashlib.sha1()
    for doc in docs:
        digest.update(doc.text.encode("utf8"))
        digest.update(b"\0")
    return digest.hexdigest()


def vs_baseline(result: Dict, baseline: Dict, name: str = "baseline") -> Dict:
    """The paired difference (0-100, ``[mean, low, high]`` with the 95%
    bootstrap interval) of ``result``'s model to ``baseline``'s model, per
    ROUGE type: two pipelines compared on the same docs (both results from
    ``evaluate``); per group too when ``result`` has groups."""
    for other, what in ((result, "this evaluation"), (baseline, name)):
        if "per_doc" not in other or "model" not in other["per_doc"]:
            raise ValueError(Errors.E078.format(name=what))
    if baseline.get("docs_digest") != result.get("docs_digest"):
        raise ValueError(Errors.E079.format(name=name, n=baseline.get("n_docs"), n_here=result.get("n_docs")))
    mine, theirs = RougeTotals(result["per_doc"]["model"]), RougeTotals(baseline["per_doc"]["model"])
    out = {"all": mine.diff(theirs)}
    for value, idx in result.get("group_docs", {}).items():
        out[value] = mine.diff(theirs, idx)
    return out


def _diff_text(diff: Dict[str, List[float]]) -> str:
    return ", ".join(f"{n} {diff[n][0]:+.2f} [{diff[n][1]:+.2f}, {diff[n][2]:+.2f}]" for n in ROUGE_TYPES)


def _rows(result: Dict) -> List[List[str]]:
    rows = []
    for system, scores in result["rouge"].items():
        row = [system] + [f"{scores[n]:.2f}" for n in ROUGE_TYPES]
        diff = result.get("vs_lead3", {}).get(system)
        row += [f"{diff[n][0]:+.2f} [{diff[n][1]:+.2f}, {diff[n][2]:+.2f}]" for n in ROUGE_TYPES[:2]] if diff else ["", ""]
        row.append(f"{100 * result['late_share'][system]:.1f}%" if "late_share" in result else "")
        words = result.get("mean_words", {}).get(system)
        row.append(f"{words:.1f}" if words is not None else "")
        rows.append(row)
    if "reference" in result.get("mean_words", {}):
        rows.append(["reference"] + [""] * (len(TABLE_HEADER) - 2) + [f"{result['mean_words']['reference']:.1f}"])
    return rows


TABLE_HEADER = ["system", "ROUGE-1", "ROUGE-2", "ROUGE-Lsum", "R1 - Lead-3 [95% CI]", "R2 - Lead-3 [95% CI]", f"picks at {LATE_POSITION}+", "words"]


def print_table(result: Dict) -> None:
    msg.table(_rows(result), header=TABLE_HEADER, divider=True)
    for value, group in result.get("groups", {}).items():
        msg.text(f"{result['by']} = {value} ({group['n_docs']} docs)")
        msg.table(_rows(group), header=TABLE_HEADER, divider=True)
    vs_textrank = result.get("vs_textrank", {}).get("model")
    if vs_textrank:
        msg.text("model - TextRank: " + _diff_text(vs_textrank))
    for group, diff in result.get("vs_baseline", {}).items():
        where = "" if group == "all" else f" ({result['by']} = {group})"
        msg.text(f"model - baseline ({result['baseline']}){where}: " + _diff_text(diff))
    msg.info(
        f"{result['n_docs']} docs; {result['n_longer_than_window']} longer than "
        f"{result['window_wordpieces']} wordpieces (scored in full, not truncated); "
        f"{result['docs_per_second']} docs/s" + (" (int8 encoder)" if result.get("int8") else "")
    )


def load_model_and_gold(
    model: Union[str, Path, Language], data_path: Union[str, Path], limit: int = 0
) -> Tuple[Language, Iterator[Doc], int]:
    """The pipeline, a stream of the gold docs in ``data_path`` (the first
    ``limit`` if set) and their number."""
    nlp = load_model(model)
    doc_bin = DocBin().from_disk(data_path)
    docs = doc_bin.get_docs(nlp.vocab)
    total = len(doc_bin)
    if limit:
        docs = (doc for _, doc in zip(range(limit), docs))
        total = min(limit, total)
    return nlp, docs, total


def evaluate_path(
    model: Union[str, Path, Language],
    data_path: Union[str, Path],
    output: Optional[Union[str, Path]] = None,
    *,
    limit: int = 0,
    batch_size: int = 32,
    show_progress: bool = True,
    int8: bool = False,
    by: Optional[str] = None,
    baseline: Optional[Union[str, Path]] = None,
) -> Dict:
    """Evaluate ``model`` on ``data_path``, print the table, write the JSON.
    int8: quantize the bertsum encoder to int8 first (CPU only; a
    ``Language`` passed in is quantized in place); recorded as ``"int8"``.
    baseline: the JSON of an earlier evaluation of another pipeline on the
    same docs: adds ``vs_baseline``, this model's paired difference to that
    one's."""
    base_result = None
    if baseline is not None:  # read it first: a wrong path fails before the long run
        base_result = json.loads(Path(baseline).read_text(encoding="utf8"))
    nlp, docs, total = load_model_and_gold(model, data_path, limit)
    if int8:
        from ..quantize import quantize_encoder

        quantize_encoder(nlp)
    result = evaluate(nlp, docs, batch_size=batch_size, show_progress=show_progress, total=total, by=by)
    result["model"] = str(model) if not isinstance(model, Language) else "<in-memory>"
    result["data"] = str(data_path)
    result["int8"] = int8
    if base_result is not None:
        result["baseline"] = str(baseline)
        result["vs_baseline"] = vs_baseline(result, base_result, str(baseline))
    print_table(result)
    if output:
        save_text(output, json.dumps(result, indent=2), "metrics")
    return result


def save_text(path: Union[str, Path], text: str, what: str) -> None:
    """Write ``text`` to ``path`` (making its directory) and say so."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text, encoding="utf8")
    msg.good(f"Saved {what} to {path}")


# -- command line ------------------------------------------------------------


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the metrics as JSON here"),
    limit: int = typer.Option(0, "--limit", min=0, help="Evaluate on the first N docs only (0: all)"),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Docs per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
    int8: bool = typer.Option(False, "--int8", help="Quantize the encoder to int8 (dynamic; CPU only) and record it in the metrics"),
    by: Optional[str] = typer.Option(None, "--by", help="Also report per value of this field (kept by `convert --keep-fields`), e.g. text_form"),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Metrics JSON of an earlier `evaluate -o` run of another pipeline on the same data: also report this model's paired difference to that one's", exists=True, dir_okay=False),
):
    """ROUGE of the model next to Lead-3 and the oracle on the same docs, with
    each system's paired difference to Lead-3 (95% bootstrap CI) and the share
    of its picks at late sentence positions."""
    from spacy.cli._util import setup_gpu

    if int8 and gpu_id >= 0:
        msg.fail(Errors.E038, exits=2)
    setup_gpu(gpu_id)
    try:
        evaluate_path(model, data_path, output, limit=limit, batch_size=batch_size, int8=int8, by=by, baseline=baseline)
    except ValueError as e:
        msg.fail(str(e), exits=1)

"""Targets, verdicts and printed tables of ``benchmark`` (figures in, text out)."""
from typing import Any, Callable, Dict, List, Optional

from wasabi import table

#: pipeline docs/s over encoder-alone docs/s must reach this.
TARGET_RATIO = 0.8
#: Peak RSS target (MB) for a 100k-word document, alone or inside a batch.
LONG_RSS_TARGET_MB = 2048
#: Word count from which the RSS target applies.
LONG_RSS_TARGET_WORDS = 100000
#: Time per word may grow this much over the long sizes and still count as flat.
LINEAR_TOLERANCE = 1.5

ROWS = (
    ("encoder", "(a) encoder forward only (floor)"),
    ("pipeline", "(b) nlp.pipe, full pipeline"),
    ("pipeline_int8", "(b) nlp.pipe, int8 encoder"),
    ("cli", "(c) CLI summarize, end to end"),
    ("lead3", "(d) Lead-3 (sentencizer)"),
    ("textrank", "(d) PyTextRank"),
)

PrintFn = Callable[[str], Any]


def with_rates(row: Dict[str, Any], wordpieces: Optional[int]) -> Dict[str, Any]:
    """Add docs/s (and wordpieces/s, given the pipeline's wordpiece count) to a row."""
    if "error" in row or not row.get("seconds"):
        return row
    row["docs_per_s"] = row["docs"] / row["seconds"]
    if wordpieces:
        row["wordpieces"] = wordpieces
        row["wordpieces_per_s"] = wordpieces / row["seconds"]
    return row


def rss_target(words: int) -> Optional[int]:
    """The peak RSS target for a document of ``words`` words, if one applies."""
    return LONG_RSS_TARGET_MB if words >= LONG_RSS_TARGET_WORDS else None


def scaling(long_rows: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Whether time per word stays flat over the long-document sizes, and the
    peak RSS of the largest one."""
    ok = [r for r in long_rows if r.get("us_per_word")]
    largest = max(ok, key=lambda r: r["words"]) if ok else None
    out: Dict[str, Any] = {
        "largest_words": largest["words"] if largest else None,
        "largest_peak_rss_mb": largest["peak_rss_mb"] if largest else None,
        "rss_target_mb": rss_target(largest["words"]) if largest else None,
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


def fmt(value: Optional[float], spec: str = ",.1f") -> str:
    return "-" if value is None else format(value, spec)


def _table(header: List[str], body: List[List[str]]) -> str:
    """wasabi's table: first column left-aligned, the figures right-aligned."""
    aligns = ["l"] + ["r"] * (len(header) - 1)
    return table(body, header=header, divider=True, aligns=aligns, spacing=2, max_col=60)


def print_header(header: Dict[str, Any], print_fn: PrintFn) -> None:
    print_fn("spacy-bertsum benchmark")
    print_fn(f"  date:    {header['date']}")
    print_fn(f"  cpu:     {header['cpu']}, {header['cores']} cores; torch threads: {header['torch_threads']}")
    print_fn(f"  python {header['python']}, torch {header['torch']}, spaCy {header['spacy']}, "
             f"spacy-transformers {header['spacy_transformers']}, transformers {header['transformers']}")
    print_fn(f"  model:   {header['model']}")
    print_fn(f"  data:    {header['docs']} docs from {header['data']} "
             f"({header['words_per_doc']:.0f} words/doc), batch size {header['batch_size']}")


def print_rows(rows: Dict[str, Dict[str, Any]], ratio: Optional[float], print_fn: PrintFn) -> None:
    """The throughput table, its notes and the pipeline / encoder verdict."""
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
        body.append([label, fmt(row.get("docs_per_s"), ",.2f"), fmt(row.get("wordpieces_per_s"), ",.0f"),
                     fmt(row.get("peak_rss_mb"), ",.0f"), fmt(row.get("run_peak_rss_mb"), ",.0f"),
                     fmt(row.get("seconds"), ",.2f")])
    print_fn(_table(["stage", "docs/s", "wordpieces/s", "peak RSS MB", "run peak MB", "seconds"], body))
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


def _rss_verdict(peak: Optional[float], target: int) -> str:
    status = "within" if peak is not None and peak < target else "OVER"
    return f"{fmt(peak, ',.0f')} MB (target < {target} MB: {status})"


def print_long(long_rows: List[Dict[str, Any]], scaled: Dict[str, Any], print_fn: PrintFn) -> None:
    """The long-document table and its scaling and RSS verdicts."""
    body = []
    notes = []
    for row in long_rows:
        if "error" in row:
            body.append([f"{row['words']:,}", "-", "-", "-", "-", "-", "-"])
            notes.append(f"{row['words']} words: {row['error']}")
            continue
        body.append([f"{row['words']:,}", fmt(row["seconds"], ",.2f"), fmt(row.get("words_per_s"), ",.0f"),
                     fmt(row.get("us_per_word"), ",.0f"), f"{row['sentences']:,}", fmt(row["peak_rss_mb"], ",.0f"),
                     fmt(row.get("run_peak_rss_mb"), ",.0f")])
    print_fn("")
    print_fn("long documents (one doc each, full pipeline):")
    print_fn(_table(["words", "seconds", "words/s", "us/word", "sentences", "peak RSS MB", "run peak MB"], body))
    for note in notes:
        print_fn(f"  note: {note}")
    print_fn(f"scaling: {scaled['verdict']}")
    if scaled.get("rss_target_mb"):
        print_fn(f"peak RSS at {scaled['largest_words']:,} words: "
                 f"{_rss_verdict(scaled['largest_peak_rss_mb'], scaled['rss_target_mb'])}")


def print_long_in_batch(row: Dict[str, Any], print_fn: PrintFn) -> None:
    """The CLI run with one long document among normal ones."""
    print_fn("")
    print_fn(f"CLI summarize, one {row['words']:,}-word doc at position {row['position']} of {row['docs']} docs, "
             f"batch size {row['batch_size']} (measured by {row.get('rss_measured_by', '-')}):")
    if "error" in row:
        print_fn(f"  note: {row['error']}")
        return
    line = f"  {fmt(row['seconds'], ',.2f')} s; peak RSS "
    if row.get("rss_target_mb"):
        line += _rss_verdict(row["peak_rss_mb"], row["rss_target_mb"])
    else:
        line += f"{fmt(row['peak_rss_mb'], ',.0f')} MB (the {LONG_RSS_TARGET_MB} MB target is for "
        line += f"{LONG_RSS_TARGET_WORDS:,} words or more)"
    print_fn(line)

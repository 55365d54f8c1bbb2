"""Command line: ``python -m spacy_bertsum COMMAND`` (also ``spacy-bertsum COMMAND``)."""
from pathlib import Path
from typing import Optional

import typer
from wasabi import msg

app = typer.Typer(
    name="spacy-bertsum",
    help="BertSum extractive summarization with spaCy: convert data, evaluate, summarize.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("convert")
def convert_cli(
    input_path: Path = typer.Argument(..., help="JSONL file (.jsonl, .jsonl.gz or .jsonl.xz)", exists=True, dir_okay=False),
    output_path: Path = typer.Argument(..., help="Output .spacy file (DocBin)"),
    text_field: str = typer.Option("article", "--text-field", help="Field with the document text"),
    summary_field: str = typer.Option("highlights", "--summary-field", help="Field with the reference summary (list of sentences or a string)"),
    id_field: str = typer.Option("id", "--id-field", help="Optional field with a document id"),
    segmenter: str = typer.Option("sentencizer", "--segmenter", help="'sentencizer' (rule-based) or a spaCy pipeline name/path that sets sentences"),
    max_oracle_sents: int = typer.Option(3, "--max-oracle-sents", help="Most sentences in the greedy ROUGE oracle"),
    limit: int = typer.Option(0, "--limit", help="Write at most this many docs (0: all)"),
    n_process: int = typer.Option(1, "--n-process", help="Processes for sentence segmentation"),
    on_error: str = typer.Option("skip", "--on-error", help="'skip' (report and skip malformed lines) or 'fail'"),
    keep_fields: str = typer.Option("", "--keep-fields", help="Comma-separated input fields to keep on each doc (e.g. text_form), for `evaluate --by`"),
):
    """Convert article/summary JSONL into a DocBin with oracle labels."""
    from .convert import convert

    if on_error not in ("skip", "fail"):
        msg.fail(f"--on-error must be 'skip' or 'fail', got '{on_error}'", exits=1)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    stats = convert(
        input_path,
        output_path,
        text_field=text_field,
        summary_field=summary_field,
        id_field=id_field,
        nlp_name_or_pipeline=segmenter,
        max_oracle_sents=max_oracle_sents,
        limit=limit or None,
        n_process=n_process,
        on_error=on_error,
        keep_fields=[f.strip() for f in keep_fields.split(",") if f.strip()],
    )
    if stats.written == 0:
        msg.fail(f"No docs written from {input_path}", exits=1)


@app.command("evaluate")
def evaluate_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the metrics as JSON here"),
    limit: int = typer.Option(0, "--limit", help="Evaluate on the first N docs only (0: all)"),
    batch_size: int = typer.Option(32, "--batch-size", help="Docs per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
    int8: bool = typer.Option(False, "--int8", help="Quantize the encoder to int8 (dynamic; CPU only) and record it in the metrics"),
    by: Optional[str] = typer.Option(None, "--by", help="Also report per value of this field (kept by `convert --keep-fields`), e.g. text_form"),
):
    """ROUGE of the model next to Lead-3 and the oracle on the same docs, with
    each system's paired difference to Lead-3 (95% bootstrap CI) and the share
    of its picks at late sentence positions."""
    from spacy.cli._util import setup_gpu

    from .evaluate import evaluate_path

    if int8 and gpu_id >= 0:
        msg.fail("--int8 runs on the CPU only: drop --gpu-id (or --int8)", exits=2)
    setup_gpu(gpu_id)
    evaluate_path(model, data_path, output, limit=limit, batch_size=batch_size, int8=int8, by=by)


@app.command("split-dev")
def split_dev_cli(
    input_path: Path = typer.Argument(..., help="Converted dev file (.spacy) with the field kept (`convert --keep-fields`)", exists=True, dir_okay=False),
    select_path: Path = typer.Argument(..., help="Output: the model-selection set (.spacy)"),
    holdout_path: Path = typer.Argument(..., help="Output: the held-back set, never used for selection (.spacy)"),
    field: str = typer.Option("text_form", "--field", help="Field that names each row's form"),
    holdout_prefix: str = typer.Option("RAW", "--holdout-prefix", help="Rows whose field starts with this are split between the two sets"),
    n_holdout: int = typer.Option(500, "--n-holdout", min=0, help="Rows (the last by id) held back"),
    n_other: int = typer.Option(1000, "--n-other", min=0, help="Rows of the other forms (first in file order) in the selection set"),
    keep_first: int = typer.Option(500, "--keep-first", min=0, help="The first N rows (used for selection before) are never held back"),
):
    """Split a dev file into a selection set and a held-back set (fixed rule: by id)."""
    from .devsplit import split_dev

    try:
        n_select, n_hold = split_dev(
            input_path, select_path, holdout_path, field=field,
            holdout_prefix=holdout_prefix, n_holdout=n_holdout, n_other=n_other,
            keep_first=keep_first,
        )  # fmt: skip
    except ValueError as e:
        msg.fail(str(e), exits=1)
    msg.good(f"{n_select} docs -> {select_path}, {n_hold} held back -> {holdout_path}")


@app.command("cache-vectors")
def cache_vectors_cli(
    model: str = typer.Argument(..., help="Trained pipeline whose encoder makes the vectors (path, package or en_bertsum_news)"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Directory for the cache (shards; a stopped run continues)"),
    limit: int = typer.Option(0, "--limit", min=0, help="Cache the first N docs only (0: all)"),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Docs per shard"),
    layer_inputs: int = typer.Option(0, "--layer-inputs", min=0, help="Also cache what the top N encoder layers receive, to train them with `train-top` (about 0.8 MB per article for MiniLM)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
):
    """Run the pipeline's encoder once over a corpus and cache the sentence
    vectors its head receives (for `train-head`), and with --layer-inputs
    what the top encoder layers receive (for `train-top`)."""
    from spacy.cli._util import setup_gpu
    from spacy.tokens import DocBin

    from .loading import load_model
    from .sentvecs import cache_sentence_vectors

    setup_gpu(gpu_id)
    n_docs = len(DocBin().from_disk(data_path))
    indices = range(min(limit, n_docs) if limit else n_docs)
    n = cache_sentence_vectors(
        load_model(model), data_path, output, indices=indices, shard_size=shard_size, layer_inputs=layer_inputs
    )
    msg.good(f"Cached the sentence vectors of {n} docs in {output}")


@app.command(
    "train-head",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train_head_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Head training config (e.g. configs/head.cfg)", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (model-best, log.jsonl, dev.json)"),
):
    """Train the scoring head on cached sentence vectors (encoder fixed) and
    save the pipeline with the best head by dev ROUGE. Config overrides as in
    `spacy train`, e.g. --training.max_steps 2000."""
    from spacy.cli._util import parse_config_overrides

    from .head_training import train_head_from_config

    try:
        train_head_from_config(config_path, output, parse_config_overrides(ctx.args))
    except ValueError as e:
        msg.fail(str(e), exits=1)


@app.command("compact")
def compact_cli(
    model: str = typer.Argument(..., help="Trained pipeline with a bertsum component (path or package)"),
    output: Path = typer.Argument(..., help="Directory for the compact copy"),
    name: Optional[str] = typer.Option(None, "--name", help="meta.json name of the copy"),
    meta_path: Optional[Path] = typer.Option(
        None, "--meta", help="JSON file whose keys override the copy's meta.json (description, version, ...)",
        exists=True, dir_okay=False,
    ),
):
    """Save a trained pipeline with only the trained encoder layers and the head
    (float16); the rest is rebuilt from the pretrained encoder when it loads."""
    from .loading import load_model

    nlp = load_model(model)
    for pipe_name, factory in ((n, nlp.get_pipe_meta(n).factory) for n in nlp.pipe_names):
        if factory == "bertsum":
            pipe = nlp.get_pipe(pipe_name)
            pipe.cfg["save_mode"] = "compact"
            nlp.config["components"][pipe_name]["save_mode"] = "compact"
    if name:
        nlp.meta["name"] = name
    if meta_path:
        import srsly

        nlp.meta.update(srsly.read_json(meta_path))
    # The vocab only holds strings seen in training; a blank English
    # tokenizer rebuilds what it needs, so leave it out (2+ MB saved).
    output.mkdir(parents=True, exist_ok=True)  # spaCy creates only the last level
    nlp.to_disk(output, exclude=["vocab"])
    size = sum(p.stat().st_size for p in Path(output).rglob("*") if p.is_file())
    msg.good(f"Saved compact pipeline to {output} ({size / 1e6:.1f} MB)")


@app.command("show")
def show_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    index: int = typer.Option(0, "--index", help="Which doc of the file to show"),
):
    """Print one article's model summary next to the reference and Lead-3."""
    from spacy.tokens import DocBin

    from .evaluate import lead_sentences
    from .loading import load_model
    from .scorer import rouge_f
    from .util import get_reference

    nlp = load_model(model)
    docs = DocBin().from_disk(data_path).get_docs(nlp.vocab)
    gold = next((d for i, d in enumerate(docs) if i == index), None)
    if gold is None:
        msg.fail(f"{data_path} has no doc at index {index}", exits=1)
    doc = nlp(gold.text)
    reference = get_reference(gold) or []
    text = doc.text if len(doc.text) <= 700 else doc.text[:700] + " ..."
    msg.divider("Article")
    print(_printable(text))
    systems = {
        "bertsum": [s.text.strip() for s in doc._.summary_sents],
        "lead-3": lead_sentences(doc),
    }
    for name, sents in systems.items():
        scores = rouge_f(sents, reference)
        msg.divider(f"{name} summary (R1 {100 * scores['rouge1']:.1f}, R2 {100 * scores['rouge2']:.1f}, RLsum {100 * scores['rougeLsum']:.1f})")
        print(_printable("\n".join(sents)))
    msg.divider("Reference")
    print(_printable("\n".join(reference)))


def _printable(text: str) -> str:
    """``text`` without terminal escape sequences and other control
    characters (an article must not drive the terminal); newlines and tabs stay."""
    import re
    import unicodedata

    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]", "", text)
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


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
    from .summarize import UsageError, summarize

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


@app.command("report")
def report_cli(
    model: str = typer.Argument(..., help="Trained pipeline: a path or package name"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Path = typer.Option(Path("report.html"), "--output", "-o", help="Write the HTML report here"),
    limit: int = typer.Option(0, "--limit", help="Evaluate on the first N docs only (0: all)"),
    html_docs: int = typer.Option(5, "--html-docs", help="Show the sentence view of the first N docs"),
    batch_size: int = typer.Option(32, "--batch-size", help="Docs per nlp.pipe batch"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
):
    """One HTML file: ROUGE table, sentence-position and summary-length charts, sentence view."""
    from spacy.cli._util import setup_gpu

    from .report import report_path

    setup_gpu(gpu_id)
    report_path(model, data_path, output, limit=limit, html_docs=html_docs, batch_size=batch_size)


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
    from .benchmark import DEFAULT_DATA, BenchmarkError, parse_sizes, run_benchmark

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()

"""``spacy-bertsum finetune``: adapt a trained pipeline to your own documents, on a CPU.

One command from JSONL files to a compact pipeline:

1. convert the training, dev (and test) files with greedy ROUGE oracle labels
   (summaries may be abstracts or extracted sentences: the oracle handles
   both), with the line-numbered errors of ``convert``;
2. run the base pipeline's encoder once over the training and dev docs and
   cache what its top layers receive (``cache_vectors``: whole documents,
   every sentence at its true position; resumable);
3. train the top encoder layers and the scoring head on the cache
   (``train_head.train_scorer``), starting from the base's weights, with early
   stopping on dev ROUGE and a wall-time budget; by default the head also
   gets lexical features (``spacy_bertsum.features``: TextRank centrality and
   sentence length), which new domains whose summaries keep the document's
   central sentences need and a few thousand docs do not teach an encoder;
4. save the best pipeline (compact; trigram blocking on or off, as dev ROUGE
   chose with the checkpoint) and evaluate it on the test file next to
   Lead-3 and the oracle.

``mix_path``/``mix_ratio`` add docs of another corpus (e.g. the CNN/DM
training file the base was trained on) to the training set, to keep the base's
domain while adapting to the new one.
"""
import json
import time
from pathlib import Path
from typing import Any, Dict, Optional, Union

import numpy
import typer
from wasabi import msg

from ..architectures import get_head_module, make_head_module
from ..errors import Errors
from ..loading import load_model
from ..selection import SelectionConfig
from ._util import app
from .cache_vectors import cache_sentence_vectors, load_cache, read_docs, source_features
from .convert import convert
from .train_head import (
    DevSet,
    build_scorer,
    evaluate_head,
    head_config,
    init_head_from,
    save_scorer,
    scorer_vectors,
    train_scorer,
)

#: Fewer dev docs than this cannot tell a real gain from noise (ROUGE-1 differences
#: of a few points have 95% intervals of +-1.5 or more on 100 docs).
MIN_DEV_DOCS = 100


def finetune(
    train_path: Union[str, Path],
    dev_path: Union[str, Path],
    output: Union[str, Path],
    *,
    base: str = "en_bertsum_news",
    test_path: Optional[Union[str, Path]] = None,
    text_field: str = "article",
    summary_field: str = "highlights",
    id_field: str = "id",
    max_minutes: float = 30.0,
    top_layers: int = 2,
    labels: str = "soft",
    learn_rate: float = 1e-3,
    layer_learn_rate: float = 5e-5,
    batch_size: int = 8,
    max_epochs: int = 10,
    evals_per_epoch: int = 2,
    patience: int = 4,
    max_train_docs: int = 0,
    mix_path: Optional[Union[str, Path]] = None,
    mix_ratio: float = 0.0,
    lexical_features: bool = True,
    seed: int = 0,
) -> Dict[str, Any]:
    """Fine-tune ``base`` on JSONL files and save ``output/model-best``.

    max_minutes: wall-time budget for everything up to the saved pipeline
        (conversion, caching, training); training stops at the last
        evaluation that fits. The test evaluation comes on top.
    top_layers: encoder layers trained with the head (0: the head alone).
    labels: "soft" (several near-optimal oracle summaries) or "oracle".
    max_epochs, evals_per_epoch, patience: at most this many passes over the
        training docs, dev ROUGE this many times per pass, stop after
        ``patience`` evaluations without a better dev score.
    mix_path, mix_ratio: also train on ``mix_ratio`` times as many docs of
        this JSONL file (the first ones) as there are training docs.
    lexical_features: give the head lexical features (a new part of the
        head, starting at zero, so training starts from the base's scores).
    Returns the best dev evaluation, the test metrics (if ``test_path``),
    the sizes and the minutes each stage took; also written to
    ``output/finetune.json``.
    """
    if labels not in ("oracle", "soft"):
        raise ValueError(Errors.E029.format(value=labels))
    if mix_ratio < 0 or (mix_ratio > 0 and mix_path is None):
        raise ValueError(Errors.E047.format(ratio=mix_ratio))
    start = time.time()
    output = Path(output)
    corpus, cache = output / "corpus", output / "cache"
    fields = {"text_field": text_field, "summary_field": summary_field, "id_field": id_field}
    timings: Dict[str, float] = {}

    msg.divider("1. Convert")
    sizes = {}
    for name, path, limit in (("train", train_path, max_train_docs or None), ("dev", dev_path, None),
                              ("test", test_path, None)):
        if path is not None:
            sizes[name] = convert(path, corpus / f"{name}.spacy", limit=limit, show_progress=False, **fields).written
    if sizes["train"] == 0 or sizes["dev"] == 0:
        raise ValueError(Errors.E048.format(train=sizes["train"], dev=sizes["dev"]))
    if sizes["dev"] < MIN_DEV_DOCS:
        msg.warn(f"The dev set has {sizes['dev']} docs: fewer than {MIN_DEV_DOCS} cannot tell a gain of a few "
                 "ROUGE points from noise, so the model chosen on it may not be the best. Use more dev docs if you can.")
    if mix_path is not None and mix_ratio > 0:
        n_mix = max(1, round(mix_ratio * sizes["train"]))
        sizes["mix"] = convert(mix_path, corpus / "mix.spacy", limit=n_mix, show_progress=False).written
    timings["convert"] = _minutes(start)

    msg.divider("2. Cache the encoder's output")
    nlp = load_model(base)
    for name in [n for n in ("train", "mix", "dev") if n in sizes]:
        cache_sentence_vectors(nlp, corpus / f"{name}.spacy", cache / name, layer_inputs=top_layers)
    timings["cache"] = _minutes(start) - timings["convert"]

    msg.divider("3. Train")
    hcfg = dict(head_config(nlp), lexical_features=lexical_features)
    base_head = get_head_module(nlp.get_pipe("bertsum").model)
    head = make_head_module(hcfg, base_head.width)
    try:
        init_head_from(head, base_head)  # a head that gains features starts from the base's scores
    except RuntimeError as err:
        raise ValueError(Errors.E086.format(base=base, base_cfg=head_config(nlp), cfg=hcfg)) from err

    def load(name: str):
        part = load_cache(cache / name, layer_inputs=bool(top_layers))
        if lexical_features:
            docs = read_docs(corpus / f"{name}.spacy", nlp.vocab)
            part = part.with_features(source_features(docs, part.index, hcfg["block_size"]))
        return part

    parts = [load(name) for name in ("train", "mix") if name in sizes]
    inputs = [x for part in parts for x in (part.layers if top_layers else part.vecs)]
    targets = [numpy.asarray(x, dtype="float32") for part in parts for x in (part.soft if labels == "soft" else part.labels)]
    dev = DevSet(cache / "dev", corpus / "dev.spacy", lexical_features=lexical_features,
                 block_size=hcfg["block_size"], vocab=nlp.vocab)
    scorer = build_scorer(nlp, head, top_layers)
    dev_inputs = None
    if top_layers:
        dev_layers = load_cache(cache / "dev", layer_inputs=True)
        dev_inputs = (dev_layers.with_features(dev.features) if lexical_features else dev_layers).layers
    if dev_inputs is not None:
        dev.vecs = scorer_vectors(scorer, dev_inputs)
    start_dev = evaluate_head(scorer.head, dev)
    msg.info(f"Dev R1 of {base} before fine-tuning: {start_dev['all']['rouge1']:.2f} "
             f"(Lead-3 {start_dev['all']['rouge1_diff'][0]:+.2f})")
    steps_per_epoch = max(1, len(inputs) // batch_size)
    budget = max_minutes - _minutes(start)
    if budget <= 0:
        raise ValueError(Errors.E049.format(minutes=max_minutes, spent=round(_minutes(start), 1)))
    msg.info(f"Training on {len(inputs)} docs ({steps_per_epoch} steps per epoch), dev {len(dev.docs)} docs, "
             f"{budget:.1f} of {max_minutes:g} min left")
    pipe = nlp.get_pipe("bertsum")
    # Trigram blocking is chosen with the checkpoint, by dev ROUGE: summaries that
    # repeat themselves (BBC's keep most of the article) do better without it.
    selections = [pipe.selection.updated(trigram_blocking=flag) for flag in (True, False)]

    def save_best(scorer, entry: Dict[str, Any]) -> None:  # model-best on disk from the first evaluation on
        pipe.selection = SelectionConfig(**entry["selection"])
        save_scorer(nlp, scorer, hcfg, output / "model-best")

    scorer, log = train_scorer(
        scorer, inputs, targets, dev, dev_inputs, learn_rate=learn_rate, layer_learn_rate=layer_learn_rate,
        warmup_steps=min(100, steps_per_epoch // 2), max_steps=max_epochs * steps_per_epoch, batch_size=batch_size,
        eval_frequency=max(1, steps_per_epoch // evals_per_epoch), patience=patience, max_minutes=budget,
        seed=seed, log_path=_fresh(output / "log.jsonl"), on_best=save_best, selections=selections,
    )
    timings["train"] = _minutes(start) - timings["convert"] - timings["cache"]
    best = max(log, key=lambda e: e["score"])
    timings["total_to_model"] = _minutes(start)
    blocking = "on" if best["selection"]["trigram_blocking"] else "off"
    msg.good(f"Saved {output / 'model-best'} after {timings['total_to_model']:.1f} min "
             f"(dev R1 {best['all']['rouge1']:.2f}, Lead-3 {best['all']['rouge1_diff'][0]:+.2f}; "
             f"trigram blocking {blocking})")
    result: Dict[str, Any] = {"base": base, "sizes": sizes, "minutes": {k: round(v, 2) for k, v in timings.items()},
                              "dev": best, "start_dev": start_dev}
    if test_path is not None:
        msg.divider("4. Test")
        from .evaluate import evaluate_path

        result["test"] = evaluate_path(output / "model-best", corpus / "test.spacy", output / "test.json")
    (output / "finetune.json").write_text(json.dumps(result, indent=2), encoding="utf8")
    return result


def _minutes(start: float) -> float:
    return (time.time() - start) / 60


def _fresh(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    return path


@app.command("finetune")
def finetune_cli(
    train_path: Path = typer.Argument(..., help="Training JSONL (.jsonl/.gz/.xz): a text and a summary per row", exists=True, dir_okay=False),
    dev_path: Path = typer.Argument(..., help="Dev JSONL, same format (model selection; 100+ rows)", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (model-best, log.jsonl, finetune.json, test.json)"),
    test_path: Optional[Path] = typer.Option(None, "--test", help="Test JSONL: evaluate the result next to Lead-3 and the oracle", exists=True, dir_okay=False),
    base: str = typer.Option("en_bertsum_news", "--base", help="Pipeline to start from (path, package or shipped name)"),
    minutes: float = typer.Option(30.0, "--minutes", min=1.0, help="Wall-time budget up to the saved pipeline"),
    top_layers: int = typer.Option(2, "--top-layers", min=0, help="Encoder layers trained with the head (0: the head alone)"),
    text_field: str = typer.Option("article", "--text-field", help="JSONL field with the text"),
    summary_field: str = typer.Option("highlights", "--summary-field", help="JSONL field with the summary (string or list of sentences)"),
    id_field: str = typer.Option("id", "--id-field", help="Optional JSONL field with an id"),
    max_train_docs: int = typer.Option(0, "--max-train-docs", min=0, help="Use the first N training rows only (0: all)"),
    mix_path: Optional[Path] = typer.Option(None, "--mix", help="Also train on rows of this JSONL (e.g. the base's own training data)", exists=True, dir_okay=False),
    mix_ratio: float = typer.Option(0.0, "--mix-ratio", min=0.0, help="Rows of --mix per training row"),
    lexical_features: bool = typer.Option(True, "--lexical-features/--no-lexical-features", help="Give the head TextRank centrality and sentence length features"),
    seed: int = typer.Option(0, "--seed", help="Random seed"),
):
    """Fine-tune a trained pipeline on your own documents: convert, cache the
    encoder's output once, train the top layers and the head with early
    stopping on dev ROUGE within a time budget, save a compact pipeline, and
    evaluate it on --test next to Lead-3 and the oracle."""
    try:
        finetune(train_path, dev_path, output, base=base, test_path=test_path, text_field=text_field,
                 summary_field=summary_field, id_field=id_field, max_minutes=minutes, top_layers=top_layers,
                 max_train_docs=max_train_docs, mix_path=mix_path, mix_ratio=mix_ratio,
                 lexical_features=lexical_features, seed=seed)
    except ValueError as e:
        msg.fail(str(e), exits=1)

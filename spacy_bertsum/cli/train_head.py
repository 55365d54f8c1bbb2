"""Train the bertsum scoring head (and optionally the top encoder layers) on a cache (``cache_vectors``).

With the encoder fixed, a training step is only the inter-sentence head over
whole documents: every sentence, its true position, every document of the
corpus many times, in minutes on a CPU. The head is the same
``InterSentenceEncoder`` the component runs, so the result drops into a
pipeline (``_scorers.install_head``, ``compact.save_compact_pipeline``) and is evaluated there
like any other.

Settings come from a config file (``configs/head/cnndm.cfg``) with a ``[head]``
block (the head's architecture, as ``spacy-bertsum.BertSumModel.v1`` takes
it) and a ``[training]`` block (optimizer, labels, evaluation).
"""

import copy
import json
import random
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy
import torch
import typer
from wasabi import msg

from ..architectures import get_head_module, make_head_module
from ..errors import Errors
from ..inter_sentence import InterSentenceEncoder
from ..scorer import ROUGE_TYPES
from ..selection import SelectionConfig
from ._dev_set import DevSet, compare, evaluate_head, predict  # noqa: F401  (part of this module's API)
from ._dev_set import _group
from ._scorers import (  # noqa: F401  (part of this module's API)
    TopLayerScorer,
    VectorScorer,
    _pad,
    build_scorer,
    head_config,
    init_head_from,
    install_head,
    install_layers,
    save_scorer,
    scorer_vectors,
    top_encoder_layers,
)
from ._util import app
from .cache_vectors import Cache, LayerInputs, cache_info, inputs_digest, load_cache, read_docs, source_features


# ---------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------


def _loss_sum(logits: torch.Tensor, Y: torch.Tensor, M: torch.Tensor, kind: str) -> torch.Tensor:
    """The summed loss of a batch: over its sentences ("bce") or over its
    docs that have a positive label ("softmax"); see :func:`_loss_count`."""
    if kind == "bce":
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, Y, reduction="none")
        return (loss * M).sum()
    logp = torch.log_softmax(logits.masked_fill(~M, -1e9), dim=-1)
    mass = (Y * M).sum(-1, keepdim=True)
    target = (Y * M) / mass.clamp(min=1e-6)
    per_doc = -(target * logp).sum(-1)
    has_label = (mass.squeeze(-1) > 0).to(per_doc.dtype)
    return (per_doc * has_label).sum()


def _loss_count(labels: Sequence[numpy.ndarray], max_sents: int, kind: str) -> int:
    """What :func:`_loss_sum` sums over for docs with these labels: the mean
    loss of a batch is the sum over its parts divided by this, however the
    batch is split."""
    if kind == "bce":
        return sum(min(len(y), max_sents) for y in labels)
    return sum(1 for y in labels if numpy.asarray(y[:max_sents]).sum() > 0)


def _split_by_windows(idx: Sequence[int], inputs: Sequence, max_windows: int) -> List[List[int]]:
    """Split a batch into parts whose docs have at most ``max_windows``
    encoder windows together (a doc with more is a part of its own): the top
    layers' activations grow with the windows of one forward pass, and a
    batch of long docs would otherwise take gigabytes."""
    parts: List[List[int]] = []
    used = 0
    for i in idx:
        n = len(inputs[i].wp_lengths) if isinstance(inputs[i], LayerInputs) else 0
        if parts and used + n <= max_windows:
            parts[-1].append(i)
            used += n
        else:
            parts.append([i])
            used = n
    return parts


def _length_buckets(lengths: Sequence[int], batch_size: int, rng: random.Random, pool: int = 50) -> List[List[int]]:
    """One epoch of batches: shuffled, then sorted by length within pools of
    ``pool`` batches so that a batch pads little, then the batches shuffled."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches = []
    for start in range(0, len(order), batch_size * pool):
        chunk = sorted(order[start : start + batch_size * pool], key=lambda i: lengths[i])
        batches.extend(chunk[b : b + batch_size] for b in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def average_states(
    states: Sequence[Dict[str, torch.Tensor]], weights: Optional[Sequence[float]] = None
) -> Dict[str, torch.Tensor]:
    """The (weighted) average of state dicts of one architecture; ``weights``
    (None: equal) are normalized to sum to 1."""
    weights = [1.0] * len(states) if weights is None else list(weights)
    if len(weights) != len(states) or min(weights) < 0 or sum(weights) <= 0:
        raise ValueError(f"Need one non-negative weight per state, not summing to 0: {weights}")
    total = sum(weights)
    return {k: sum(s[k] * (w / total) for s, w in zip(states, weights)) for k in states[0]}


def train_head(
    head: InterSentenceEncoder,
    train_vecs: Sequence[numpy.ndarray],
    train_labels: Sequence[numpy.ndarray],
    dev: DevSet,
    **settings,
) -> Tuple[InterSentenceEncoder, List[Dict]]:
    """Train ``head`` on cached sentence vectors (see :func:`train_scorer`);
    returns the head with the best dev score and the log."""
    scorer, log = train_scorer(VectorScorer(head), train_vecs, train_labels, dev, **settings)
    return scorer.head, log


def train_scorer(
    scorer: torch.nn.Module,
    train_inputs: Sequence,
    train_labels: Sequence[numpy.ndarray],
    dev: DevSet,
    dev_inputs: Optional[Sequence] = None,
    *,
    learn_rate: float = 1e-4,
    layer_learn_rate: float = 3e-5,
    warmup_steps: int = 200,
    max_steps: int = 5000,
    batch_size: int = 32,
    eval_frequency: int = 500,
    max_sents: int = 128,
    weight_decay: float = 0.01,
    average_last: int = 0,
    loss: str = "bce",
    seed: int = 0,
    patience: int = 0,
    max_minutes: Optional[float] = None,
    log_path: Optional[Path] = None,
    on_best: Optional[Callable[[torch.nn.Module, Dict], None]] = None,
    selections: Sequence[SelectionConfig] = (SelectionConfig(),),
    max_windows: int = 16,
) -> Tuple[torch.nn.Module, List[Dict]]:
    """Train ``scorer`` (a :class:`VectorScorer` or :class:`TopLayerScorer`)
    with BCE against ``train_labels`` (hard or soft), evaluating dev ROUGE
    every ``eval_frequency`` steps; returns the scorer with the best dev score
    (mean of the three ROUGE F1) and the log. ``dev_inputs``: the dev docs'
    inputs for the scorer (None: the dev set's cached vectors, for a scorer
    that does not change them). ``learn_rate`` is the head's,
    ``layer_learn_rate`` the encoder layers'. ``average_last``: also try the
    average of the last N evaluated checkpoints, kept if better. ``loss``:
    "bce" (per sentence, as BertSum) or "softmax" (per document: the
    cross-entropy of a softmax over its sentences against the labels
    normalized to sum to 1, a listwise loss that ranks sentences against each
    other, as top-k selection does). ``patience``: stop after this many
    evaluations without a better dev score (0: never). ``max_minutes``: a
    wall-time budget; training stops at the last evaluation that fits in it,
    and the learning rate decays to 0 there instead of at ``max_steps``.
    ``on_best(scorer, entry)``: called when an evaluation is the best so far
    (with the scorer in that state), e.g. to save it, so that a stopped run
    keeps its best model. ``selections``: the selection settings tried at
    each evaluation; the best one counts, and the log entry says which
    (``entry["selection"]``), e.g. trigram blocking on and off.
    ``max_windows``: with encoder layers, a batch runs through them in parts
    of at most this many encoder windows (the gradient is the same; peak
    memory stays bounded however long the batch's docs are)."""
    if loss not in ("bce", "softmax"):
        raise ValueError(Errors.E030.format(value=loss))
    loss_kind = loss
    rng = random.Random(seed)
    torch.manual_seed(seed)
    groups = [{"params": list(scorer.head.parameters()), "lr": learn_rate}]
    layer_params = [p for n, p in scorer.named_parameters() if not n.startswith("head.")]
    if layer_params:
        groups.append({"params": layer_params, "lr": layer_learn_rate})
    opt = torch.optim.AdamW(groups, weight_decay=weight_decay)
    # The lr decays linearly to 0 at `horizon`: max_steps, or with a time
    # budget the step that the budget is expected to reach (re-estimated at
    # every evaluation).
    horizon = [max_steps]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / max(warmup_steps, 1), max(0.0, (horizon[0] - s) / max(horizon[0] - warmup_steps, 1)))
    )
    lead = dev.rouge(dev.lead())
    log: List[Dict] = []
    best_score, best_state = -1.0, None
    recent: List[Dict[str, torch.Tensor]] = []
    start = time.time()
    deadline = start + 60 * max_minutes if max_minutes else None
    running = 0.0
    since_best = 0
    batches: List[List[int]] = []
    lengths = [len(x.vecs) if isinstance(x, LayerInputs) else len(x) for x in train_inputs]
    for step in range(1, max_steps + 1):
        if not batches:
            batches = _length_buckets(lengths, batch_size, rng)
        idx = batches.pop()
        scorer.train()
        count = max(_loss_count([train_labels[i] for i in idx], max_sents, loss_kind), 1)
        opt.zero_grad()
        for part in _split_by_windows(idx, train_inputs, max_windows):
            X, M = _pad(scorer.doc_vectors([train_inputs[i] for i in part]), max_sents)
            Y = torch.zeros(M.shape)
            for b, i in enumerate(part):
                k = int(M[b].sum())
                Y[b, :k] = torch.from_numpy(numpy.asarray(train_labels[i][:k], dtype="float32"))
            loss = _loss_sum(scorer.head(X, M), Y, M, loss_kind) / count
            loss.backward()
            running += float(loss.detach())
        torch.nn.utils.clip_grad_norm_(scorer.parameters(), 1.0)
        opt.step()
        sched.step()
        # With a time budget, the step that spends it is evaluated (and is the
        # last), however far the next regular evaluation is.
        out_of_time = deadline is not None and time.time() >= deadline
        if step % eval_frequency == 0 or step == max_steps or out_of_time:
            state = copy.deepcopy(scorer.state_dict())
            entries = [("step", state)]
            if average_last > 1:
                recent = (recent + [state])[-average_last:]
                if len(recent) == average_last:
                    entries.append(("average", average_states(recent)))
            improved = False
            for kind, st in entries:
                scorer.load_state_dict(st)
                if dev_inputs is not None:
                    dev.vecs = scorer_vectors(scorer, dev_inputs)
                score, result, selection = max(
                    ((sum(r["all"][n] for n in ROUGE_TYPES) / 3, r, k) for k, r in
                     enumerate(evaluate_head(scorer.head, dev, lead, sel) for sel in selections)),
                    key=lambda x: (x[0], -x[2]),
                )
                n_steps = step % eval_frequency or eval_frequency
                entry = {"step": step, "kind": kind, "loss": round(running / n_steps, 5),
                         "minutes": round((time.time() - start) / 60, 2), "score": round(score, 3),
                         "selection": asdict(selections[selection]), **result}
                log.append(entry)
                if log_path:
                    with Path(log_path).open("a") as f:
                        f.write(json.dumps(entry) + "\n")
                a = result["all"]
                left = f", {max(0.0, (deadline - time.time()) / 60):.1f} min left" if deadline else ""
                msg.text(
                    f"step {step} {kind} ({entry['minutes']:.1f} min{left}): loss {entry['loss']:.4f} R1 {a['rouge1']:.2f} "
                    f"(Lead-3 {a['rouge1_diff'][0]:+.2f} [{a['rouge1_diff'][1]:+.2f}, {a['rouge1_diff'][2]:+.2f}]) "
                    f"R2 {a['rouge2']:.2f} RL {a['rougeLsum']:.2f} late {a['late_share']:.3f}"
                    + ("" if selections[selection].trigram_blocking else " (no trigram blocking)"),
                    show=True,
                )
                if score > best_score:
                    best_score, best_state, improved = score, copy.deepcopy(st), True
                    if on_best is not None:
                        on_best(scorer, entry)
            scorer.load_state_dict(state)
            running = 0.0
            since_best = 0 if improved else since_best + 1
            if patience and since_best >= patience:
                msg.info(f"Stopping: no better dev score in {patience} evaluations")
                break
            if deadline is not None:
                cycle = (time.time() - start) / (step / eval_frequency)  # seconds per eval_frequency steps + eval
                cycles_left = int((deadline - time.time()) // cycle)
                if cycles_left < 1:
                    msg.info(f"Stopping: the time budget ({max_minutes:g} min) is spent")
                    break
                horizon[0] = min(max_steps, step + cycles_left * eval_frequency)
    if best_state is not None:
        scorer.load_state_dict(best_state)
    if dev_inputs is not None:
        dev.vecs = scorer_vectors(scorer, dev_inputs)
    return scorer, log


def train_head_from_config(config_path: Path, output: Path, overrides: Dict = {}) -> Dict:
    """Train a head as ``config_path`` says (see ``configs/head/cnndm.cfg``),
    with ``[training] top_layers`` > 0 also the top encoder layers (on a cache
    made with ``--layer-inputs``), and save ``output/model-best``: the base
    pipeline with the best head (and layers), compact. Also writes
    ``output/log.jsonl`` (one line per evaluation) and ``output/dev.json``
    (the best evaluation)."""
    from spacy.util import load_config

    from ..loading import load_model
    from .cache_vectors import encoder_digest

    config = load_config(config_path, overrides=overrides, interpolate=True)
    paths, hcfg, tcfg = config["paths"], dict(config["head"]), dict(config["training"])
    torch.set_num_threads(tcfg.pop("threads") or torch.get_num_threads())
    top_layers = tcfg.pop("top_layers")
    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    nlp = load_model(paths["base"])
    model = nlp.get_pipe("bertsum").model
    digest = encoder_digest(nlp)
    # Training top layers, the base may be a model-best trained on these caches
    # before (a run continued in stages): then only what lies below those
    # layers must be the encoder that made the caches.
    below = inputs_digest(nlp, top_layers) if top_layers else None
    for key in ("train_cache", "dev_cache", "extra_train_cache"):
        if key == "extra_train_cache" and not paths.get(key):
            continue
        info = cache_info(Path(paths[key]))
        if top_layers and not info.get("layer_inputs"):
            raise ValueError(Errors.E034.format(path=paths[key]))
        if top_layers and info["layer_inputs"] != top_layers:
            raise ValueError(Errors.E076.format(path=paths[key], cached=info["layer_inputs"], top_layers=top_layers))
        made_by = info.get("encoder")
        if made_by is not None and made_by != digest and (below is None or info.get("inputs_encoder") != below):
            raise ValueError(Errors.E035.format(path=paths[key], base=paths["base"]))
    attention_dropout = tcfg.pop("attention_dropout", None)
    if attention_dropout is not None and not 0.0 <= attention_dropout < 1.0:
        raise ValueError(Errors.E077.format(value=attention_dropout))
    lora_rank = tcfg.pop("lora_rank", 0)
    if not isinstance(lora_rank, int) or isinstance(lora_rank, bool) or lora_rank < 0 or (lora_rank and not top_layers):
        raise ValueError(Errors.E094.format(value=lora_rank))
    if lora_rank and tcfg.get("average_last", 0) > 1:
        raise ValueError(Errors.E089.format(value=tcfg["average_last"]))
    trainable = model.get_ref("encoder").attrs["trainable_layers"]
    # Through adapters, the layers below the trainable ones change by low-rank
    # updates, which the compact save stores as factors.
    if top_layers and 0 <= trainable < top_layers and not lora_rank:
        raise ValueError(Errors.E036.format(
            top_layers=top_layers, what="the base's trainable_layers", limit=trainable,
            fix="train the base with more trainable layers (its compact save stores only those in full) "
            "or train them through adapters ([training] lora_rank)"))
    lexical = bool(hcfg.get("lexical_features"))
    group_by = tcfg.pop("group_by")
    dev = DevSet(Path(paths["dev_cache"]), Path(paths["dev"]), group_by=group_by, lexical_features=lexical,
                 block_size=hcfg["block_size"], vocab=nlp.vocab, layer_inputs=bool(top_layers))
    cache = load_cache(Path(paths["train_cache"]), layer_inputs=bool(top_layers))
    if not len(cache):
        raise ValueError(Errors.E028.format(path=paths["train_cache"]))
    width = cache.vecs[0].shape[1]
    if lexical:
        docs = read_docs(_cache_source(Path(paths["train_cache"])), nlp.vocab)
        cache = cache.with_features(source_features(docs, cache.index, hcfg["block_size"]))
    limit = tcfg.pop("max_train_docs")
    cache = cache.head(limit) if limit else cache
    label_kind = tcfg.pop("labels")
    if label_kind not in ("oracle", "soft"):
        raise ValueError(Errors.E029.format(value=label_kind))
    labels = [numpy.asarray(x, dtype="float32") for x in (cache.soft if label_kind == "soft" else cache.labels)]
    extra_group, extra_repeat = tcfg.pop("extra_group", None), tcfg.pop("extra_repeat", 1)
    if not isinstance(extra_repeat, int) or extra_repeat < 1:
        raise ValueError(Errors.E091.format(value=extra_repeat))
    extra_inputs: List = []
    if paths.get("extra_train_cache"):
        extra_path = Path(paths["extra_train_cache"])
        extra = _extra_cache(extra_path, nlp.vocab, group_by, extra_group, lexical, hcfg["block_size"], bool(top_layers), dev)
        extra_inputs = (extra.layers if top_layers else extra.vecs) * extra_repeat  # type: ignore[operator]
        labels += [numpy.asarray(x, dtype="float32") for x in (extra.soft if label_kind == "soft" else extra.labels)] * extra_repeat
        if _cache_source(extra_path).resolve() == Path(paths["dev"]).resolve():
            # No checkpoint is chosen on docs the head trains on.
            dev = dev.without(extra.index)
            msg.info(f"Also training on {len(extra)} docs of the dev file (x{extra_repeat}); dev: the other {len(dev.docs)}")
    head = make_head_module(hcfg, width)
    if tcfg.pop("init_from_base"):
        try:
            init_head_from(head, get_head_module(model))
        except RuntimeError as err:
            raise ValueError(Errors.E032.format(base=paths["base"], base_cfg=head_config(nlp), cfg=hcfg)) from err
    log_path = output / "log.jsonl"
    log_path.unlink(missing_ok=True)
    scorer = build_scorer(nlp, head, top_layers, attention_dropout=attention_dropout, lora_rank=lora_rank)
    if top_layers:
        dev_inputs = dev.cache.layers  # without the dev docs it trains on, as dev
        train_inputs: Sequence = cache.layers + extra_inputs  # type: ignore[operator]
        what = f"the head and the top {top_layers} encoder layers"
    else:
        dev_inputs, train_inputs, what = None, cache.vecs + extra_inputs, "the head"
    msg.info(f"Training {what} on {len(train_inputs)} docs; dev: {len(dev.docs)} docs")

    def save_best(scorer: torch.nn.Module, entry: Dict) -> None:
        # As `spacy train` does: model-best is on disk from the first
        # evaluation on, so a stopped run keeps its best model.
        save_scorer(nlp, scorer, hcfg, output / "model-best")
        (output / "dev.json").write_text(json.dumps(entry, indent=2))

    train_scorer(scorer, train_inputs, labels, dev, dev_inputs, log_path=log_path, on_best=save_best, **tcfg)
    best = json.loads((output / "dev.json").read_text())
    msg.good(f"Saved {output / 'model-best'} (dev step {best['step']}, {best['kind']}: R1 {best['all']['rouge1']:.2f})")
    return best


def _extra_cache(
    path: Path, vocab, group_by: Optional[str], group: Optional[str], lexical: bool, block_size: int,
    layer_inputs: bool, dev: Optional[DevSet] = None,
) -> Cache:
    """The docs of a second train cache (``[paths] extra_train_cache``):
    those whose ``group_by`` group is ``group`` (all when None), with their
    lexical features when the head has them (and their layer inputs when top
    layers train). Where ``path`` is the cache of ``dev`` and ``dev`` was
    loaded with the same settings, its docs are taken from there rather than
    loaded again."""
    same = dev is not None and Path(path).resolve() == dev.cache_dir.resolve() and (
        (dev.cache.layers is not None) == layer_inputs and (dev.features is not None) == lexical)
    if same:
        cache = dev.group_cache(group)
    else:
        docs = read_docs(_cache_source(path), vocab)
        cache = load_cache(path, layer_inputs=layer_inputs)
        if group is not None:
            cache = cache.take([k for k, i in enumerate(cache.index) if _group(docs[i], i, None, group_by) == group])
        if lexical and len(cache):
            cache = cache.with_features(source_features(docs, cache.index, block_size))
    if not len(cache):
        raise ValueError(Errors.E090.format(path=path, group=group, group_by=group_by))
    return cache


def _cache_source(cache_dir: Path) -> Path:
    """The ``.spacy`` file a cache was made from (its docs give the lexical features)."""
    source = cache_info(cache_dir).get("source")
    if source is None or not Path(source).exists():
        raise ValueError(Errors.E085.format(path=cache_dir, source=source))
    return Path(source)


# -- command line ------------------------------------------------------------


@app.command(
    "train-head",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def train_head_cli(
    ctx: typer.Context,
    config_path: Path = typer.Argument(..., help="Head training config (e.g. configs/head.cfg)", exists=True, dir_okay=False),
    output: Path = typer.Option(..., "--output", "-o", help="Output directory (model-best, log.jsonl, dev.json)"),
):
    """Train the scoring head on cached sentence vectors (and with
    [training] top_layers the top encoder layers, on cached layer inputs) and
    save the pipeline with the best dev ROUGE. Config overrides as in `spacy
    train`, e.g. --training.max_steps 2000."""
    from spacy.cli._util import parse_config_overrides


    try:
        train_head_from_config(config_path, output, parse_config_overrides(ctx.args))
    except ValueError as e:
        msg.fail(str(e), exits=1)

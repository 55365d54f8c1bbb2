"""Cache the sentence vectors of a trained pipeline's encoder, to train the head on.

The encoder (all but the inter-sentence head) is the expensive part of a
training step. When the encoder is kept fixed, its output for a document never
changes, so it can be computed once: one forward pass over the corpus, with the
same sentence windows as prediction uses (every sentence of every document,
however long, with its true position), and the head can then be trained for
many epochs on the cached vectors in minutes (``spacy_bertsum.head_training``).

A cache is a directory of shards ``shard-00000.npz`` ... with, for the docs of
one shard (in the order of the ``.spacy`` file):

* ``vecs``: float16 ``(n_sentences, width)``, the sentence vectors (mean of the
  token vectors of each sentence) the head receives;
* ``lengths``: int32 ``(n_docs,)``, sentences per doc;
* ``labels``: int8 ``(n_sentences,)``, 1 for the oracle sentences;
* ``soft``: float32 ``(n_sentences,)``, soft labels from several near-optimal
  oracle summaries (``oracle.soft_labels``);
* ``doc_index``: int32 ``(n_docs,)``, each doc's index in the ``.spacy`` file.

With ``layer_inputs = k`` (``cache-vectors --layer-inputs k``) a shard also
holds what the top ``k`` encoder layers receive, so that those layers can be
trained on the cache too (``spacy_bertsum.top_training``):

* ``wp``: float16 ``(n_wordpieces, width)``, the hidden states entering the
  top ``k`` layers, for every encoder window of every doc (no padding);
* ``wp_lengths``: int32 ``(n_windows,)``, wordpieces per window;
* ``n_windows``: int32 ``(n_docs,)``, windows per doc;
* ``pool_wp``, ``pool_sent``, ``pool_w``: the pooling from the encoder's
  output to the sentence vectors as weighted sums: wordpiece ``pool_wp``
  (within its doc) adds ``pool_w`` times its output vector to sentence
  ``pool_sent`` (the mean over the sentence's tokens of the mean over each
  token's wordpieces, as the pipeline pools them);
* ``n_pool``: int32 ``(n_docs,)``, pooling entries per doc.

Shards are written atomically, so a stopped run continues where it stopped.
"""

import typer

from ._util import app
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab
from wasabi import msg

from ..architectures import get_encoder_layers, get_hf_model, get_window_size
from ..long_docs import encode_sentences, encoder_pieces, piece_calls, piece_doc
from ..errors import Errors
from ..features import lexical_features
from ..oracle import soft_labels
from ..util import SPANS_KEY, get_reference, sentence_lengths


# The layer-input fields of a shard and their dtypes.
LAYER_FIELDS = {
    "wp": "float16",
    "wp_lengths": "int32",
    "n_windows": "int32",
    "pool_wp": "int32",
    "pool_sent": "int32",
    "pool_w": "float32",
    "n_pool": "int32",
}


def doc_soft_labels(doc: Doc, min_sents: int = 1) -> List[float]:
    """``oracle.soft_labels`` of ``doc``'s sentences against its reference
    (``min_sents = 3``: from three-sentence summaries only, as top-3 makes)."""
    return soft_labels([s.text.strip() for s in doc.sents], get_reference(doc) or [], min_sents=min_sents)


def oracle_labels(doc: Doc, spans_key: str = SPANS_KEY) -> List[int]:
    """1 for each sentence of ``doc`` inside an oracle span, else 0."""
    starts = {span.start for span in doc.spans.get(spans_key, [])}
    return [1 if sent.start in starts else 0 for sent in doc.sents]


def doc_sentence_vectors(nlp: Language, docs: Sequence[Doc], pipe_name: str = "bertsum") -> List[numpy.ndarray]:
    """The vectors the bertsum head receives for each doc (n_sents, width), from
    the same encoder calls as prediction makes."""
    model = nlp.get_pipe(pipe_name).model
    sentvecs, _ = encode_sentences(model.get_ref("encoder"), list(docs), model.attrs["max_tokens_per_call"], False)
    return [model.ops.to_numpy(vecs) for vecs in sentvecs]


@dataclass
class LayerInputs:
    """What the top encoder layers receive for one doc, and how their output
    pools into its sentence vectors (see the module docstring)."""

    vecs: numpy.ndarray  # (n_sents, width) float32: the sentence vectors
    wp: numpy.ndarray  # (n_wordpieces, width) float32
    wp_lengths: numpy.ndarray  # (n_windows,) int32
    pool_wp: numpy.ndarray  # int32
    pool_sent: numpy.ndarray  # int32
    pool_w: numpy.ndarray  # float32
    #: (n_sents, n_features) float32: appended to the pooled sentence vectors
    #: (the inputs of a head with ``lexical_features``), or None.
    features: Optional[numpy.ndarray] = None


def pool_sentences(out: numpy.ndarray, pool_wp, pool_sent, pool_w, n_sents: int) -> numpy.ndarray:
    """Sentence vectors (n_sents, width) from the encoder output ``out`` of a
    doc's wordpieces (numpy; ``top_training`` does the same in torch)."""
    vecs = numpy.zeros((n_sents, out.shape[1]), dtype="float32")
    numpy.add.at(vecs, pool_sent, out[pool_wp] * pool_w[:, None])
    return vecs


def doc_layer_inputs(nlp: Language, docs: Sequence[Doc], top_layers: int, pipe_name: str = "bertsum") -> List[LayerInputs]:
    """For each doc: the hidden states entering the top ``top_layers`` encoder
    layers, for the same windows and encoder calls as prediction makes, the
    pooling of the encoder output into sentence vectors, and the sentence
    vectors themselves (pooled from the output of that same pass)."""
    import torch

    model = nlp.get_pipe(pipe_name).model
    encoder = model.get_ref("encoder")
    transformer = encoder.get_ref("transformer")
    layers = get_encoder_layers(model)
    if not 1 <= top_layers <= len(layers):
        raise ValueError(Errors.E015.format(name="layer_inputs", value=top_layers))
    captured: List = []

    def hook(module, args, kwargs):
        captured.append((args[0] if args else kwargs["hidden_states"]).detach())

    max_tokens = model.attrs["max_tokens_per_call"]
    pieces = encoder_pieces(docs, max_tokens, get_window_size(model))
    results: List[Optional[tuple]] = [None] * len(pieces)
    handle = layers[len(layers) - top_layers].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            for call in piece_calls([end - start for _, start, end in pieces], max_tokens):
                captured.clear()
                trf = transformer.predict([piece_doc(docs[i], start, end) for i, start, end in (pieces[p] for p in call)])
                hidden_in = captured[0].to(torch.float32).cpu().numpy()
                mask = encoder.ops.to_numpy(trf.wordpieces.attention_mask)
                for r, (p, data) in enumerate(zip(call, trf.split_by_doc())):
                    n = int(mask[r].sum())
                    last = encoder.ops.to_numpy(data.model_output.last_hidden_state)[0, :n]
                    align = data.align
                    results[p] = (hidden_in[r, :n], last, encoder.ops.to_numpy(align.lengths), encoder.ops.to_numpy(align.dataXd))
    finally:
        handle.remove()
    out: List[LayerInputs] = []
    by_doc: List[List[int]] = [[] for _ in docs]
    for p, (i, _, _) in enumerate(pieces):
        by_doc[i].append(p)
    for doc, ps in zip(docs, by_doc):
        sent_lengths = numpy.asarray(sentence_lengths(doc), dtype="int32")
        sent_of_token = numpy.repeat(numpy.arange(len(sent_lengths), dtype="int32"), sent_lengths)
        token_weight = 1.0 / sent_lengths[sent_of_token]
        wp, lasts, wp_lengths, pool = [], [], [], []
        token_offset = wp_offset = 0
        for p in ps:
            hidden, last, tok_lengths, indices = results[p]
            tokens = token_offset + numpy.repeat(numpy.arange(len(tok_lengths)), tok_lengths)
            weights = token_weight[tokens] / numpy.repeat(tok_lengths, tok_lengths)
            pool.append((wp_offset + indices.astype("int64"), sent_of_token[tokens], weights))
            wp.append(hidden)
            lasts.append(last)
            wp_lengths.append(len(hidden))
            token_offset += pieces[p][2] - pieces[p][1]
            wp_offset += len(hidden)
        pool_wp = numpy.concatenate([x[0] for x in pool]).astype("int32")
        pool_sent = numpy.concatenate([x[1] for x in pool]).astype("int32")
        pool_w = numpy.concatenate([x[2] for x in pool]).astype("float32")
        out.append(
            LayerInputs(
                vecs=pool_sentences(numpy.concatenate(lasts), pool_wp, pool_sent, pool_w, len(sent_lengths)),
                wp=numpy.concatenate(wp),
                wp_lengths=numpy.asarray(wp_lengths, dtype="int32"),
                pool_wp=pool_wp,
                pool_sent=pool_sent,
                pool_w=pool_w,
            )
        )
    return out


def encoder_digest(nlp: Language, pipe_name: str = "bertsum") -> str:
    """sha256 over the encoder's name and trained parameters: which encoder
    made a cache."""
    from ..compact import params_digest

    model = nlp.get_pipe(pipe_name).model
    return params_digest(model, trained=True, salt=str(model.get_ref("encoder").attrs["encoder_name"]))


def inputs_digest(nlp: Language, top_layers: int, pipe_name: str = "bertsum") -> str:
    """sha256 over the encoder's name and all its parameters except those of
    the top ``top_layers`` layers: what made the layer inputs of a cache. A
    pipeline whose top layers were trained on the cache since (a run that
    continues from its own model-best) still has the same digest."""
    from ..compact import params_digest

    model = nlp.get_pipe(pipe_name).model
    top = {id(p) for layer in list(get_encoder_layers(model))[-top_layers:] for p in layer.parameters()}
    skip = [name for name, p in get_hf_model(model).named_parameters() if id(p) in top]
    return params_digest(model, trained=None, salt=str(model.get_ref("encoder").attrs["encoder_name"]), skip=skip)


def cache_sentence_vectors(
    nlp: Language,
    docbin_path: Path,
    out_dir: Path,
    *,
    indices: Optional[Iterable[int]] = None,
    shard_size: int = 1000,
    batch_size: int = 32,
    pipe_name: str = "bertsum",
    spans_key: str = SPANS_KEY,
    layer_inputs: int = 0,
) -> int:
    """Write the sentence-vector cache of the docs of ``docbin_path`` (all, or
    those at ``indices``) to ``out_dir``; shards already there are kept.
    ``layer_inputs``: also store what the top N encoder layers receive (0:
    sentence vectors only). Returns the number of docs in the cache."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = read_docs(docbin_path, nlp.vocab)
    wanted = list(range(len(docs))) if indices is None else sorted(set(indices))
    info = {
        "source": str(docbin_path),
        "n_docs": len(wanted),
        "shard_size": shard_size,
        "encoder": encoder_digest(nlp, pipe_name),
        "layer_inputs": layer_inputs,
    }
    if layer_inputs:
        info["inputs_encoder"] = inputs_digest(nlp, layer_inputs, pipe_name)
    info_path = out_dir / "cache.json"
    if info_path.exists() and any(out_dir.glob("shard-*[0-9].npz")):
        # Shards of another model, data or shard size must not be continued.
        old = json.loads(info_path.read_text(encoding="utf8"))
        for key in ("source", "shard_size", "encoder", "layer_inputs"):
            if key in old and old[key] != info[key]:
                raise ValueError(Errors.E033.format(path=out_dir, key=key, old=old[key], new=info[key]))
    info_path.write_text(json.dumps(info, indent=2), encoding="utf8")
    start_time = time.time()
    done = 0
    for shard_no, first in enumerate(range(0, len(wanted), shard_size)):
        shard_idx = wanted[first : first + shard_size]
        path = out_dir / f"shard-{shard_no:05d}.npz"
        if path.exists():
            done += len(shard_idx)
            continue
        vecs, lengths, labels, soft = [], [], [], []
        extra: Dict[str, list] = {key: [] for key in LAYER_FIELDS}
        for b in range(0, len(shard_idx), batch_size):
            batch = [docs[i] for i in shard_idx[b : b + batch_size]]
            if layer_inputs:
                inputs = doc_layer_inputs(nlp, batch, layer_inputs, pipe_name)
                batch_vecs = [x.vecs for x in inputs]
                for x in inputs:
                    extra["wp"].append(x.wp.astype("float16"))
                    extra["wp_lengths"].append(x.wp_lengths)
                    extra["n_windows"].append([len(x.wp_lengths)])
                    for key in ("pool_wp", "pool_sent", "pool_w"):
                        extra[key].append(getattr(x, key))
                    extra["n_pool"].append([len(x.pool_wp)])
            else:
                batch_vecs = doc_sentence_vectors(nlp, batch, pipe_name)
            for doc, v in zip(batch, batch_vecs):
                vecs.append(v.astype("float16"))
                lengths.append(len(v))
                labels.extend(oracle_labels(doc, spans_key))
                soft.extend(doc_soft_labels(doc))
        arrays = {key: numpy.concatenate(parts).astype(LAYER_FIELDS[key]) for key, parts in extra.items() if parts}
        tmp = path.with_suffix(".tmp.npz")
        numpy.savez(
            tmp,
            vecs=numpy.concatenate(vecs) if vecs else numpy.zeros((0, 0), "float16"),
            lengths=numpy.asarray(lengths, dtype="int32"),
            labels=numpy.asarray(labels, dtype="int8"),
            soft=numpy.asarray(soft, dtype="float32"),
            doc_index=numpy.asarray(shard_idx, dtype="int32"),
            **arrays,
        )
        os.replace(tmp, path)
        done += len(shard_idx)
        elapsed = time.time() - start_time
        msg.text(f"{out_dir.name}: {done}/{len(wanted)} docs, {elapsed / 60:.1f} min", show=True)
    return len(wanted)


@dataclass
class Cache:
    """A loaded cache: per doc, its sentence vectors, oracle labels and soft
    labels, and its index in the ``.spacy`` file; with ``layer_inputs``, per
    doc a :class:`LayerInputs` (its ``vecs`` are those of ``vecs``)."""

    vecs: List[numpy.ndarray]
    labels: List[numpy.ndarray]
    soft: List[numpy.ndarray]
    index: List[int]
    layers: Optional[List[LayerInputs]] = None

    def __len__(self) -> int:
        return len(self.vecs)

    def head(self, n: int) -> "Cache":
        return self.take(range(min(n, len(self))))

    def take(self, positions: Sequence[int]) -> "Cache":
        """The docs at ``positions`` (in this cache's order)."""
        layers = None if self.layers is None else [self.layers[k] for k in positions]
        return Cache(*([x[k] for k in positions] for x in (self.vecs, self.labels, self.soft, self.index)), layers)

    def with_features(self, features: Sequence[numpy.ndarray]) -> "Cache":
        """A copy whose sentence vectors (and layer inputs) carry ``features``
        (one ``(n_sents, k)`` array per doc, e.g. from :func:`source_features`)
        as extra columns: the inputs of a head with ``lexical_features``."""
        vecs = [numpy.hstack([v.astype("float32"), f]) for v, f in zip(self.vecs, features)]
        layers = None
        if self.layers is not None:
            layers = [replace(x, features=f) for x, f in zip(self.layers, features)]
        return Cache(vecs, self.labels, self.soft, self.index, layers)


def source_features(docs: Sequence[Doc], index: Sequence[int], block_size: int = 128) -> List[numpy.ndarray]:
    """The lexical features (``spacy_bertsum.features``) of the docs of a
    cache: ``docs`` are those of the ``.spacy`` file it was made from,
    ``index`` the cache's ``index``."""
    return [lexical_features(docs[i], block_size) for i in index]


def read_docs(docbin_path: Path, vocab: Vocab) -> List[Doc]:
    """The docs of a ``.spacy`` file, read with ``vocab`` (whose language's
    stop words the lexical features use)."""
    return list(DocBin().from_disk(docbin_path).get_docs(vocab))


def cache_info(cache_dir: Path) -> Dict:
    """The ``cache.json`` of a cache: source, encoder digest, layer inputs."""
    path = Path(cache_dir) / "cache.json"
    return json.loads(path.read_text(encoding="utf8")) if path.exists() else {}


def load_cache(cache_dir: Path, layer_inputs: bool = False) -> Cache:
    """All shards of a cache, in order; with ``layer_inputs``, also what the
    top encoder layers receive (the cache must have been made with them)."""
    cache = Cache([], [], [], [], [] if layer_inputs else None)
    for path in sorted(Path(cache_dir).glob("shard-*[0-9].npz")):
        data = numpy.load(path)
        bounds = numpy.cumsum(data["lengths"])[:-1]
        vecs = numpy.split(data["vecs"], bounds)
        cache.vecs.extend(vecs)
        cache.labels.extend(numpy.split(data["labels"], bounds))
        cache.soft.extend(numpy.split(data["soft"], bounds))
        cache.index.extend(data["doc_index"].tolist())
        if layer_inputs:
            if "wp" not in data.files:
                raise ValueError(Errors.E034.format(path=cache_dir))
            win_bounds = numpy.cumsum(data["n_windows"])[:-1]
            wp_lengths = numpy.split(data["wp_lengths"], win_bounds)
            wp = numpy.split(data["wp"], numpy.cumsum([x.sum() for x in wp_lengths])[:-1])
            pool_bounds = numpy.cumsum(data["n_pool"])[:-1]
            pools = [numpy.split(data[key], pool_bounds) for key in ("pool_wp", "pool_sent", "pool_w")]
            for d, v in enumerate(vecs):
                cache.layers.append(  # type: ignore[union-attr]
                    LayerInputs(v, wp[d], wp_lengths[d], pools[0][d], pools[1][d], pools[2][d])
                )
    return cache


# -- command line ------------------------------------------------------------


@app.command("cache-vectors")
def cache_vectors_cli(
    model: str = typer.Argument(..., help="Trained pipeline whose encoder makes the vectors (path, package or en_bertsum_news)"),
    data_path: Path = typer.Argument(..., help="Gold .spacy file from `convert`", exists=True, dir_okay=False),
    output: Path = typer.Argument(..., help="Directory for the cache (shards; a stopped run continues)"),
    limit: int = typer.Option(0, "--limit", min=0, help="Cache the first N docs only (0: all)"),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Docs per shard"),
    layer_inputs: int = typer.Option(0, "--layer-inputs", min=0, help="Also cache what the top N encoder layers receive, to train them with `train-head` (top_layers; about 0.5 MB per article for MiniLM)"),
    gpu_id: int = typer.Option(-1, "--gpu-id", help="GPU id, or -1 for CPU"),
):
    """Run the pipeline's encoder once over a corpus and cache the sentence
    vectors its head receives (for `train-head`), and with --layer-inputs
    what the top encoder layers receive (for `train-head` with top_layers)."""
    from spacy.cli._util import setup_gpu
    from spacy.tokens import DocBin

    from ..loading import load_model

    setup_gpu(gpu_id)
    n_docs = len(DocBin().from_disk(data_path))
    indices = range(min(limit, n_docs) if limit else n_docs)
    n = cache_sentence_vectors(
        load_model(model), data_path, output, indices=indices, shard_size=shard_size, layer_inputs=layer_inputs
    )
    msg.good(f"Cached the sentence vectors of {n} docs in {output}")

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

Shards are written atomically, so a stopped run continues where it stopped.
"""
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, List, Optional, Sequence

import numpy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from wasabi import msg

from .architectures import _encode_in_pieces
from .errors import Errors
from .oracle import soft_labels
from .util import SPANS_KEY, get_reference, sentence_lengths


def oracle_labels(doc: Doc, spans_key: str = SPANS_KEY) -> List[int]:
    """1 for each sentence of ``doc`` inside an oracle span, else 0."""
    starts = {span.start for span in doc.spans.get(spans_key, [])}
    return [1 if sent.start in starts else 0 for sent in doc.sents]


def doc_sentence_vectors(nlp: Language, docs: Sequence[Doc], pipe_name: str = "bertsum") -> List[numpy.ndarray]:
    """The vectors the bertsum head receives for each doc (n_sents, width), from
    the same encoder calls as prediction makes."""
    model = nlp.get_pipe(pipe_name).model
    encoder = model.get_ref("encoder")
    tokvecs, _ = _encode_in_pieces(encoder, list(docs), model.attrs["max_tokens_per_call"], False)
    ops = model.ops
    out = []
    for doc, vecs in zip(docs, tokvecs):
        lengths = ops.asarray1i(sentence_lengths(doc))
        out.append(ops.to_numpy(ops.reduce_mean(ops.asarray2f(vecs), lengths)))
    return out


def encoder_digest(nlp: Language, pipe_name: str = "bertsum") -> str:
    """sha256 over the encoder's name and trained parameters: which encoder
    made a cache."""
    from .compact import params_digest

    model = nlp.get_pipe(pipe_name).model
    return params_digest(model, trained=True, salt=str(model.get_ref("encoder").attrs["encoder_name"]))


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
) -> int:
    """Write the sentence-vector cache of the docs of ``docbin_path`` (all, or
    those at ``indices``) to ``out_dir``; shards already there are kept.
    Returns the number of docs in the cache."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    docs = list(DocBin().from_disk(docbin_path).get_docs(nlp.vocab))
    wanted = list(range(len(docs))) if indices is None else sorted(set(indices))
    info = {
        "source": str(docbin_path),
        "n_docs": len(wanted),
        "shard_size": shard_size,
        "encoder": encoder_digest(nlp, pipe_name),
    }
    info_path = out_dir / "cache.json"
    if info_path.exists() and any(out_dir.glob("shard-*[0-9].npz")):
        # Shards of another model, data or shard size must not be continued.
        old = json.loads(info_path.read_text(encoding="utf8"))
        for key in ("source", "shard_size", "encoder"):
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
        for b in range(0, len(shard_idx), batch_size):
            batch = [docs[i] for i in shard_idx[b : b + batch_size]]
            for doc, v in zip(batch, doc_sentence_vectors(nlp, batch, pipe_name)):
                vecs.append(v.astype("float16"))
                lengths.append(len(v))
                labels.extend(oracle_labels(doc, spans_key))
                soft.extend(soft_labels([s.text.strip() for s in doc.sents], get_reference(doc) or []))
        tmp = path.with_suffix(".tmp.npz")
        numpy.savez(
            tmp,
            vecs=numpy.concatenate(vecs) if vecs else numpy.zeros((0, 0), "float16"),
            lengths=numpy.asarray(lengths, dtype="int32"),
            labels=numpy.asarray(labels, dtype="int8"),
            soft=numpy.asarray(soft, dtype="float32"),
            doc_index=numpy.asarray(shard_idx, dtype="int32"),
        )
        os.replace(tmp, path)
        done += len(shard_idx)
        elapsed = time.time() - start_time
        msg.text(f"{out_dir.name}: {done}/{len(wanted)} docs, {elapsed / 60:.1f} min", show=True)
    return len(wanted)


@dataclass
class Cache:
    """A loaded cache: per doc, its sentence vectors, oracle labels and soft
    labels, and its index in the ``.spacy`` file."""

    vecs: List[numpy.ndarray]
    labels: List[numpy.ndarray]
    soft: List[numpy.ndarray]
    index: List[int]

    def __len__(self) -> int:
        return len(self.vecs)

    def head(self, n: int) -> "Cache":
        return Cache(self.vecs[:n], self.labels[:n], self.soft[:n], self.index[:n])


def load_cache(cache_dir: Path) -> Cache:
    """All shards of a cache, in order."""
    cache = Cache([], [], [], [])
    for path in sorted(Path(cache_dir).glob("shard-*[0-9].npz")):
        data = numpy.load(path)
        bounds = numpy.cumsum(data["lengths"])[:-1]
        cache.vecs.extend(numpy.split(data["vecs"], bounds))
        cache.labels.extend(numpy.split(data["labels"], bounds))
        cache.soft.extend(numpy.split(data["soft"], bounds))
        cache.index.extend(data["doc_index"].tolist())
    return cache

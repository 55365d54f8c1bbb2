"""The set-up shared by the session-10 head experiments (head_labels.py,
head_raw_rows.py): the shipped pipeline and its head, the selection set over
its sentence-vector cache (training/cache/dev, with lexical features), and the
cache of the first 8,000 training articles (training/cache/train) with theirs,
kept in training/cache/train_lex.pkl once computed.

The rows of session 10 started from 0.3.1's head, then the shipped one; since
0.3.2 ships, BASE names a copy of 0.3.1 to run them again (e.g. its
spacy_bertsum/pipelines/en_bertsum_news from commit e626de6)."""
import os
import pickle
from pathlib import Path

from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli.cache_vectors import Cache, load_cache, read_docs, source_features
from spacy_bertsum.cli.train_head import DevSet
from spacy_bertsum.loading import load_model


def shipped_and_dev():
    """(pipeline, its head module, the selection set)."""
    base = load_model(os.environ.get("BASE", "en_bertsum_news"))
    dev = DevSet(Path("training/cache/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
                 lexical_features=True, block_size=128, vocab=base.vocab)
    return base, get_head_module(base.get_pipe("bertsum").model), dev


def train_cache(vocab, docs=None) -> Cache:
    """The training cache with its docs' lexical features (``docs``: the docs
    of corpus/train8k.spacy, when the caller has read them already)."""
    cache = load_cache(Path("training/cache/train"))
    feat_pkl = Path("training/cache/train_lex.pkl")
    if not feat_pkl.exists():
        docs = docs if docs is not None else read_docs(Path("corpus/train8k.spacy"), vocab)
        feat_pkl.write_bytes(pickle.dumps(source_features(docs, cache.index, 128)))
    return cache.with_features(pickle.loads(feat_pkl.read_bytes()))

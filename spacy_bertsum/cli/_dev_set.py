"""The dev set of head training: cached sentence vectors plus the sentence
texts and references of their docs, to score any head's selections with ROUGE
next to Lead-3 (paired 95% intervals, late-pick shares, per group)."""
import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy
import torch
from spacy.vocab import Vocab

from ..inter_sentence import InterSentenceEncoder
from ..scorer import ROUGE_TYPES, rouge_f
from ..selection import SelectionConfig, lead, select_sentences
from ..significance import paired_bootstrap
from ..util import FIELDS_KEY, get_reference
from .cache_vectors import Cache, load_cache, read_docs, source_features
from .evaluate import late_share


@dataclass
class DevDoc:
    sents: List[str]
    words: List[List[str]]
    reference: List[str]
    oracle: List[int]
    group: str


class DevSet:
    """Cached dev vectors plus the sentence texts and references of their docs,
    for ROUGE of any head's selections (memoized per doc and selection)."""

    def __init__(
        self,
        cache_dir: Path,
        docbin_path: Path,
        groups: Optional[Dict[int, str]] = None,
        group_by: Optional[str] = None,
        lexical_features: bool = False,
        block_size: int = 128,
        vocab: Optional[Vocab] = None,
        layer_inputs: bool = False,
    ):
        """groups: a group name per doc index of ``docbin_path``; or group_by:
        the field (kept by ``convert --keep-fields``) whose first word names
        each doc's group (e.g. ``text_form``: LOWERCASED or RAW).
        lexical_features: append each sentence's lexical features to its
        cached vector (for a head with ``lexical_features``; see
        ``Cache.with_features``); they are kept in ``self.features`` for
        other inputs of the same docs (e.g. their layer inputs). vocab: to
        read the docs with (its language's stop words count for the
        features); default English. layer_inputs: also load the docs' cached
        layer inputs (a cache made with ``--layer-inputs``), for scoring
        them through encoder layers. ``self.cache`` keeps the loaded cache
        (with the features), one entry per doc of ``self.docs``."""
        import spacy

        vocab = vocab if vocab is not None else spacy.blank("en").vocab
        self.cache_dir = Path(cache_dir)
        cache = load_cache(cache_dir, layer_inputs=layer_inputs)
        all_docs = read_docs(docbin_path, vocab)
        self.features: Optional[List[numpy.ndarray]] = None
        if lexical_features:
            self.features = source_features(all_docs, cache.index, block_size)
            cache = cache.with_features(self.features)
        self.cache: Cache = cache
        self.vecs, labels, index = cache.vecs, cache.labels, cache.index
        # each doc's index in the .spacy file
        self.index: List[int] = list(index)
        self.docs: List[DevDoc] = []
        for i, lab in zip(index, labels):
            doc = all_docs[i]
            sents = list(doc.sents)
            self.docs.append(
                DevDoc(
                    sents=[s.text.strip() for s in sents],
                    words=[[t.lower_ for t in s if not t.is_space] for s in sents],
                    reference=get_reference(doc) or [],
                    oracle=[j for j, x in enumerate(lab) if x],
                    group=_group(doc, i, groups, group_by),
                )
            )
        self._memo: Dict[Tuple[int, Tuple[int, ...]], Tuple[float, ...]] = {}

    def rouge(self, selections: Sequence[Sequence[int]]) -> numpy.ndarray:
        """(n_docs, 3) ROUGE-1/2/Lsum F1 (0-100) of one selection per doc."""
        out = numpy.zeros((len(self.docs), len(ROUGE_TYPES)))
        for d, (doc, chosen) in enumerate(zip(self.docs, selections)):
            key = (d, tuple(chosen))
            if key not in self._memo:
                scores = rouge_f([doc.sents[j] for j in chosen], doc.reference)
                self._memo[key] = tuple(100 * scores[n] for n in ROUGE_TYPES)
            out[d] = self._memo[key]
        return out

    def select(self, scores: Sequence[Sequence[float]], config: SelectionConfig = SelectionConfig()) -> List[List[int]]:
        return [select_sentences(list(s), doc.words, config) for s, doc in zip(scores, self.docs)]

    def lead(self, k: int = 3) -> List[List[int]]:
        return [lead(len(doc.sents), k) for doc in self.docs]

    def group_cache(self, group: Optional[str]) -> Cache:
        """The cache entries of the docs of ``group`` (None: all docs)."""
        return self.cache.take([k for k, doc in enumerate(self.docs) if group is None or doc.group == group])

    def without(self, indices: Iterable[int]) -> "DevSet":
        """A copy without the docs whose index in the .spacy file is in
        ``indices`` (e.g. docs a head also trains on)."""
        drop = set(indices)
        keep = [k for k, i in enumerate(self.index) if i not in drop]
        part = copy.copy(self)
        part.docs, part.vecs, part.index = [self.docs[k] for k in keep], [self.vecs[k] for k in keep], [self.index[k] for k in keep]
        if self.features is not None:
            part.features = [self.features[k] for k in keep]
        part.cache = self.cache.take(keep)
        part._memo = {}
        return part


def _group(doc, i: int, groups: Optional[Dict[int, str]], group_by: Optional[str]) -> str:
    if groups is not None:
        return groups.get(i, "all")
    if group_by:
        value = (doc.user_data.get(FIELDS_KEY) or {}).get(group_by)
        return str(value).split()[0].rstrip(",") if value else "none"
    return "all"


def compare(dev: DevSet, system: numpy.ndarray, baseline: numpy.ndarray, selections, seed: int = 0) -> Dict:
    """ROUGE means, paired difference to ``baseline`` with its 95% CI, and the
    late-pick share, overall and per group of the dev docs."""
    out: Dict[str, Dict] = {}
    groups = sorted({d.group for d in dev.docs})
    for group in ["all"] + ([g for g in groups if g != "all"] if len(groups) > 1 else []):
        idx = [i for i, d in enumerate(dev.docs) if group == "all" or d.group == group]
        row = {"n_docs": len(idx)}
        for k, name in enumerate(ROUGE_TYPES):
            row[name] = round(float(system[idx, k].mean()), 3)
            diff, lo, hi = paired_bootstrap(system[idx, k], baseline[idx, k], seed=seed)
            row[f"{name}_diff"] = [round(diff, 3), round(lo, 3), round(hi, 3)]
        row["late_share"] = round(late_share([selections[i] for i in idx]), 4)
        row["oracle_late_share"] = round(late_share([dev.docs[i].oracle for i in idx]), 4)
        out[group] = row
    return out


def _batch(vecs, labels, idx, max_sents: int):
    """Padded (X, Y, M) for the docs ``idx``; Y is None without ``labels``."""
    n = [min(len(vecs[i]), max_sents) for i in idx]
    width = vecs[idx[0]].shape[1]
    X = numpy.zeros((len(idx), max(n), width), dtype="float32")
    Y = numpy.zeros((len(idx), max(n)), dtype="float32")
    M = numpy.zeros((len(idx), max(n)), dtype=bool)
    for b, (i, k) in enumerate(zip(idx, n)):
        X[b, :k] = vecs[i][:k]
        if labels is not None:
            Y[b, :k] = labels[i][:k]
        M[b, :k] = True
    return torch.from_numpy(X), torch.from_numpy(Y) if labels is not None else None, torch.from_numpy(M)


@torch.no_grad()
def predict(head: InterSentenceEncoder, vecs: Sequence[numpy.ndarray], batch_size: int = 64) -> List[numpy.ndarray]:
    head.eval()
    order = sorted(range(len(vecs)), key=lambda i: len(vecs[i]))
    out: List[Optional[numpy.ndarray]] = [None] * len(vecs)
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        X, _, M = _batch(vecs, None, idx, 10**9)
        logits = head(X, M).numpy()
        for r, i in enumerate(idx):
            out[i] = logits[r, : len(vecs[i])]
    return out  # type: ignore[return-value]


def evaluate_head(
    head: InterSentenceEncoder,
    dev: DevSet,
    lead: Optional[numpy.ndarray] = None,
    selection: SelectionConfig = SelectionConfig(),
) -> Dict:
    """Dev ROUGE of ``head``'s selections (by default top-3, trigram-blocked)
    next to Lead-3: per group, means, paired differences with 95% CIs and
    late-pick shares."""
    lead = dev.rouge(dev.lead()) if lead is None else lead
    sel = dev.select(predict(head, dev.vecs), selection)
    return compare(dev, dev.rouge(sel), lead, sel)

"""The ``bertsum`` pipeline component: score sentences, select a summary."""
import os
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Union

import numpy
import srsly
from spacy import util as spacy_util
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model, Optimizer, set_dropout_rate

from .architectures import get_listener, has_head, n_docs_without_upstream_output, upstream_name
from .errors import Errors
from .extensions import install_extensions
from .selection import SelectionConfig, select_spans
from .serialization import load_model_dir, load_trained, rebuild_head, save_model
from .training import gold_labels, sentence_loss, training_window, window_labels
from .util import SENT_OFFSET_KEY, SPANS_KEY, get_sent_scores, has_sentences, sentence_lengths, set_sent_scores

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-bertsum.BertSumModel.v1"
inter_sentence_layers = 2
heads = 8
ff_size = 1024
dropout = 0.1
block_size = 128
max_tokens_per_call = 4096
max_position = 12

[model.encoder]
@architectures = "spacy-bertsum.TransformerEncoder.v1"
name = "sentence-transformers/all-MiniLM-L6-v2"
trainable_layers = 2
tokenizer_config = {"use_fast": true}
transformer_config = {}
mixed_precision = false
grad_scaler_config = {}

[model.encoder.get_spans]
@span_getters = "spacy-bertsum.sentence_windows.v1"
max_tokens = 320
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "bertsum",
    requires=["token.is_sent_start"],
    assigns=["doc.spans", "doc._.sent_scores", "doc._.summary", "doc._.summary_sents"],
    default_config={
        "model": DEFAULT_MODEL,
        "spans_key": SPANS_KEY,
        "top_k": 3,
        "ratio": None,
        "max_words": None,
        "trigram_blocking": True,
        "min_words": 0,
        "train_max_tokens": 0,
        "train_late_windows": 0.0,
        "save_mode": "full",
        "extensions": {},
        "scorer": {"@scorers": "spacy-bertsum.rouge_scorer.v1"},
    },
    default_score_weights={
        "bertsum_rouge1_f": 0.34,
        "bertsum_rouge2_f": 0.33,
        "bertsum_rougeLsum_f": 0.33,
        "bertsum_sents_f": None,
    },
)
def make_bertsum(
    nlp: Language,
    name: str,
    model: Model,
    spans_key: str,
    top_k: Optional[int],
    ratio: Optional[float],
    max_words: Optional[int],
    trigram_blocking: bool,
    min_words: int,
    train_max_tokens: int,
    train_late_windows: float,
    save_mode: str,
    extensions: Dict[str, str],
    scorer: Optional[Callable],
) -> "BertSum":
    """Score each sentence with a BertSum model and keep the best as a summary.

    model: scores each sentence of a doc (spacy-bertsum.BertSumModel.v1),
        with its own encoder (embedded, the default) or with token vectors
        from an upstream ``transformer`` component through a
        TransformerListener (listener mode; see spacy_bertsum.architectures).
    spans_key: the span group holding the selected sentences (and, on
        reference docs, the gold sentences); also the prefix of the score
        keys (``{spans_key}_rouge1_f`` ..., see spacy_bertsum.scorer), so the
        default score weights fit the default key.
    top_k, ratio, max_words, trigram_blocking, min_words: how sentences are
        selected; see spacy_bertsum.selection.SelectionConfig. Each can be
        overridden per call: ``nlp(text, component_cfg={"bertsum": {"top_k": 5}})``
        or ``nlp.get_pipe("bertsum").summarize(doc, top_k=5)``.
    train_max_tokens: in training, only the sentences within the first this
        many tokens are encoded and scored (0: whole docs). Saves time where
        the oracle sentences are near the start, as in news. Embedded
        encoder only (E083 in listener mode).
    train_late_windows: with train_max_tokens set, the share of training docs
        for which the window starts at a random later sentence instead of the
        first one (its sentences keep their true positions). Prediction
        encodes long docs window by window; these examples show the model
        windows that do not start a document, which are rarely summary-worthy.
    save_mode: "full" saves the whole encoder with the pipeline; "compact"
        saves only the trained top encoder layers and the head (float16) and
        rebuilds the rest from the pretrained encoder at load time (see
        spacy_bertsum.compact). Embedded encoder only (E082 in listener mode).
    extensions: rename the Doc/Span extensions, e.g. {"summary": "bertsum_summary"}
        when another package already owns ``Doc._.summary``.
    """
    return BertSum(
        nlp.vocab,
        model,
        name,
        spans_key=spans_key,
        selection=SelectionConfig(
            top_k=top_k,
            ratio=ratio,
            max_words=max_words,
            trigram_blocking=trigram_blocking,
            min_words=min_words,
        ),
        train_max_tokens=train_max_tokens,
        train_late_windows=train_late_windows,
        save_mode=save_mode,
        extensions=extensions,
        scorer=scorer,
    )


class BertSum(TrainablePipe):
    """Extractive summarizer: one score per sentence, a summary in span group
    ``doc.spans[spans_key]`` and the extensions ``doc._.sent_scores``,
    ``doc._.summary_sents``, ``doc._.summary`` and ``span._.bertsum_score``."""

    #: Set by spacy_bertsum.quantize.quantize_encoder: the encoder is int8, so
    #: the component can predict but not be updated (E023) or saved (E024).
    int8: bool = False

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "bertsum",
        *,
        spans_key: str = SPANS_KEY,
        selection: SelectionConfig = SelectionConfig(),
        train_max_tokens: int = 0,
        train_late_windows: float = 0.0,
        save_mode: str = "full",
        extensions: Optional[Dict[str, str]] = None,
        scorer: Optional[Callable] = None,
    ) -> None:
        if save_mode not in ("full", "compact"):
            raise ValueError(Errors.E019.format(value=save_mode))
        if not 0.0 <= train_late_windows <= 1.0:
            raise ValueError(Errors.E021.format(value=train_late_windows))
        listener = get_listener(model)
        if listener is not None and save_mode == "compact":
            raise ValueError(Errors.E082.format(upstream=upstream_name(listener)))
        if listener is not None and train_max_tokens:
            raise ValueError(Errors.E083.format(value=train_max_tokens, upstream=upstream_name(listener)))
        self.vocab = vocab
        self.model = model
        self.name = name
        self._pid = os.getpid()
        self.scorer = scorer
        self.selection = selection
        self.extension_names = install_extensions(extensions or {}, spans_key)
        self.cfg = {
            "spans_key": spans_key,
            "train_max_tokens": train_max_tokens,
            "train_late_windows": train_late_windows,
            "save_mode": save_mode,
            "extensions": dict(self.extension_names),
            "width": None,
        }

    @property
    def spans_key(self) -> str:
        return self.cfg["spans_key"]

    # -- prediction ---------------------------------------------------------

    def __call__(self, doc: Doc, *, batch_size: Optional[int] = None, **selection_overrides) -> Doc:
        """Score and summarize one doc. An error goes to the component's error
        handler (``nlp.set_error_handler``), as in spaCy's TrainablePipe."""
        # batch_size: ignored; nlp.pipe writes it into the caller's
        # component_cfg dict, which may then be reused with nlp(text).
        error_handler = self.get_error_handler()
        try:
            self._annotate([doc], selection_overrides)
            return doc
        except Exception as e:
            error_handler(self.name, self, [doc], e)
        return None  # type: ignore[return-value]  # as TrainablePipe.__call__

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128, **selection_overrides) -> Iterator[Doc]:
        """Score and summarize a stream of docs in batches. A batch that fails
        is retried doc by doc, so one bad doc does not take its batch with it;
        each doc that still fails goes to the error handler
        (``nlp.set_error_handler``) and, if the handler does not raise, is
        left out of the stream, as spaCy's TrainablePipe.pipe does (with
        ``nlp.pipe(..., as_tuples=True)`` the contexts stay paired)."""
        error_handler = self.get_error_handler()
        for docs in spacy_util.minibatch(stream, size=batch_size):
            try:
                self._annotate(docs, selection_overrides)
            except Exception as e:
                if len(docs) == 1:
                    error_handler(self.name, self, docs, e)
                    continue
                for doc in docs:
                    try:
                        self._annotate([doc], selection_overrides)
                    except Exception as doc_error:
                        error_handler(self.name, self, [doc], doc_error)
                        continue
                    yield doc
                continue
            yield from docs

    def _annotate(self, docs: Sequence[Doc], selection_overrides: Dict[str, Any]) -> None:
        self._check_sentences(docs)
        self.set_annotations(docs, self.predict(docs), **selection_overrides)

    def predict(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """One array of sentence probabilities per doc; docs are not changed."""
        docs = list(docs)
        if not has_head(self.model):
            raise ValueError(Errors.E005)
        self._check_process()
        if not any(len(doc) for doc in docs):
            return [numpy.zeros((0,), dtype="f") for _ in docs]
        n_missing = n_docs_without_upstream_output(self.model, docs)
        if n_missing:
            upstream = upstream_name(get_listener(self.model))
            raise ValueError(Errors.E081.format(name=self.name, upstream=upstream, n=n_missing))
        logits = [self.model.ops.to_numpy(x) for x in self.model.predict(docs)]
        for doc_logits in logits:
            if not numpy.isfinite(doc_logits).all():
                raise ValueError(Errors.E031.format(name=self.name))
        return [_sigmoid(x) for x in logits]

    def _check_process(self) -> None:
        """On the first prediction in another process than the one that made
        the component (the workers of ``nlp.pipe(n_process=2)``), use one
        torch thread. spaCy forks those workers on Linux, and a forked child
        that runs torch ops on the OpenMP thread pool it inherited from a
        parent that already used it deadlocks (libgomp is not fork-safe); one
        thread per worker avoids that, as torch's DataLoader workers do, and
        matches one worker per core. Other children of the program are left
        alone."""
        pid = os.getpid()
        if pid != getattr(self, "_pid", None):
            import torch

            torch.set_num_threads(1)
            self._pid = pid

    def set_annotations(self, docs: Iterable[Doc], scores: Sequence, **selection_overrides) -> None:
        config = self.selection.updated(**selection_overrides) if selection_overrides else self.selection
        for doc, doc_scores in zip(docs, scores):
            doc_scores = [float(s) for s in doc_scores]
            n_sents = len(sentence_lengths(doc))
            if len(doc_scores) != n_sents:
                raise ValueError(Errors.E009.format(n_scores=len(doc_scores), n_sents=n_sents))
            set_sent_scores(doc, doc_scores, self.spans_key)
            doc.spans[self.spans_key] = self._select(doc, doc_scores, config)

    def summarize(self, doc: Doc, **selection_overrides) -> SpanGroup:
        """The summary sentences of ``doc`` under other selection settings
        (top_k, ratio, max_words, trigram_blocking, min_words), in document
        order. Uses the scores already on the doc, or runs the model; the
        doc's stored summary is left as it is."""
        scores = get_sent_scores(doc, self.spans_key)
        if scores is None:
            self._check_sentences([doc])
            scores = [float(s) for s in self.predict([doc])[0]]
        config = self.selection.updated(**selection_overrides)
        return self._select(doc, scores, config)

    def _select(self, doc: Doc, scores: List[float], config: SelectionConfig) -> SpanGroup:
        return SpanGroup(doc, name=self.spans_key, spans=select_spans(doc, scores, config))

    def _check_sentences(self, docs: Sequence[Doc]) -> None:
        for doc in docs:
            if not has_sentences(doc):
                raise ValueError(Errors.E001.format(name=self.name))

    # -- training -----------------------------------------------------------

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        init_from: Optional[Union[str, Path]] = None,
    ) -> None:
        """Load the pretrained encoder and create the scoring head.

        init_from: a trained pipeline directory (e.g. ``training/model-last``)
            whose bertsum weights to start from instead: how a CPU run continues
            from an earlier one (``[initialize.components.bertsum]``). The
            architecture comes from the current config and must have the same
            weights (encoder, trainable layers, head sizes).
        """
        validate_get_examples(get_examples, "BertSum.initialize")
        self.model.initialize()
        self.cfg["width"] = self.model.get_dim("nI")
        if init_from:
            self._load_weights_from(Path(init_from))

    def _load_weights_from(self, path: Path) -> None:
        load_trained(self.model, path, self.name, self.cfg.get("width"))

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd: Optional[Optimizer] = None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        if self.int8:
            raise ValueError(Errors.E023.format(name=self.name))
        if losses is None:
            losses = {}
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        validate_examples(examples, "BertSum.update")
        for eg in examples:
            if not has_sentences(eg.predicted):
                raise ValueError(Errors.E002)
        docs = [self._training_doc(eg.predicted) for eg in examples]
        if not any(len(doc) for doc in docs):
            return losses
        set_dropout_rate(self.model, drop)
        logits, backprop = self.model.begin_update(docs)
        offsets = [doc.user_data.get(SENT_OFFSET_KEY, 0) for doc in docs]
        loss, d_logits = self.get_loss(examples, logits, offsets)
        backprop(d_logits)
        if sgd is not None:
            self.finish_update(sgd)
        losses[self.name] += loss
        return losses

    def _training_doc(self, doc: Doc) -> Doc:
        """The training window of ``doc`` under train_max_tokens and
        train_late_windows (see spacy_bertsum.training.training_window)."""
        return training_window(doc, self.cfg["train_max_tokens"], self.cfg.get("train_late_windows", 0.0))

    def get_loss(
        self, examples: Iterable[Example], logits: List, offsets: Optional[List[int]] = None
    ) -> tuple:
        """Binary cross-entropy between sentence logits and gold labels (a
        sentence is positive when most of its tokens are in a gold span),
        averaged over all sentences in the batch. ``offsets[i]``: the index of
        the first sentence scored in ``logits[i]`` (training windows)."""
        labels = window_labels(examples, logits, self.spans_key, offsets)
        return sentence_loss(self.model.ops, logits, labels)

    def gold_labels(self, eg: Example, i: int = 0) -> List[float]:
        """1.0 for each predicted sentence covered (by majority of its tokens)
        by the gold spans in ``eg.reference.spans[spans_key]``, else 0.0."""
        return gold_labels(eg, self.spans_key, i)

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, Optional[float]]:
        validate_examples(examples, "BertSum.score")
        kwargs.setdefault("spans_key", self.spans_key)
        return self.scorer(examples, **kwargs) if self.scorer else {}

    def add_label(self, label: str) -> int:
        raise NotImplementedError("The bertsum component has no labels.")

    # -- serialization ------------------------------------------------------

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        if self.int8:
            raise ValueError(Errors.E024.format(name=self.name))
        serialize = {
            "cfg": lambda: srsly.json_dumps(self.cfg),
            "model": lambda: self.model.to_bytes(),
        }
        return spacy_util.to_bytes(serialize, exclude)

    def from_bytes(self, bytes_data: bytes, *, exclude=tuple()) -> "BertSum":
        msg = srsly.msgpack_loads(bytes_data)
        if "cfg" in msg and "cfg" not in exclude:
            self.cfg.update(srsly.json_loads(msg["cfg"]))
        rebuild_head(self.model, self.cfg.get("width"))
        if "model" in msg and "model" not in exclude:
            self.model.from_bytes(msg["model"])
        return self

    def to_disk(self, path, *, exclude=tuple()) -> None:
        if self.int8:
            raise ValueError(Errors.E024.format(name=self.name))
        serialize = {
            "cfg": lambda p: srsly.write_json(p, self.cfg),
            "model": lambda p: save_model(self.model, p, compact=self.cfg.get("save_mode") == "compact"),
        }
        spacy_util.to_disk(path, serialize, exclude)

    def from_disk(self, path, *, exclude=tuple()) -> "BertSum":
        path = Path(path)
        if "cfg" not in exclude and (path / "cfg").exists():
            self.cfg.update(srsly.read_json(path / "cfg"))
        if "model" not in exclude:
            load_model_dir(self.model, path / "model", self.cfg.get("width"))
        return self


def _sigmoid(x: numpy.ndarray) -> numpy.ndarray:
    return 1.0 / (1.0 + numpy.exp(-x))

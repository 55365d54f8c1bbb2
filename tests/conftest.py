"""Shared fixtures. Nothing here touches the network or ../shared."""
import re

import pytest
import spacy
from spacy.tokens import SpanGroup
from spacy.training import Example

from spacy_bertsum.util import REFERENCE_KEY, SPANS_KEY

TEXTS = [
    "The storm hit the coast on Monday. Thousands of homes lost power. "
    "Officials said repairs would take a week. A local bakery gave away free bread. "
    "Schools will reopen on Thursday.",
    "The team won the cup after a late goal. The striker scored in the final minute. "
    "Fans celebrated in the streets until dawn. The coach praised the defence. "
    "The next match is in two weeks.",
    "Scientists found water on a distant planet. The planet orbits a small star. "
    "The discovery was made with a new telescope. More studies are planned next year. "
    "The results were published on Friday.",
    "The city council approved a new budget. Taxes will rise by two percent. "
    "The mayor said the money will fund new buses. Critics called the plan wasteful. "
    "A vote on parks was delayed.",
]


def _words():
    words = set()
    for text in TEXTS:
        words.update(re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", text.lower()))
    return sorted(words)


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights and a vocab built from the
    test texts, saved like a Hugging Face model directory."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + _words()
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf8")
    tokenizer = BertTokenizerFast(vocab_file=str(path / "vocab.txt"), do_lower_case=True)
    tokenizer.model_max_length = 128
    tokenizer.save_pretrained(str(path))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(str(path))
    return str(path)


def tiny_config(encoder_path: str, **overrides) -> dict:
    """A bertsum config using the tiny encoder, small and fast."""
    config = {
        "model": {
            "@architectures": "spacy-bertsum.BertSumModel.v1",
            "inter_sentence_layers": 1,
            "heads": 2,
            "ff_size": 32,
            "dropout": 0.0,
            "block_size": 128,
            "max_tokens_per_call": 4096,
            "encoder": {
                "@architectures": "spacy-bertsum.TransformerEncoder.v1",
                "name": encoder_path,
                "trainable_layers": -1,
                "tokenizer_config": {"use_fast": True},
                "transformer_config": {},
                "mixed_precision": False,
                "grad_scaler_config": {},
                "get_spans": {"@span_getters": "spacy-bertsum.sentence_windows.v1", "max_tokens": 40},
            },
        }
    }
    for key, value in overrides.items():
        target = config
        *parents, last = key.split(".")
        for part in parents:
            target = target[part]
        target[last] = value
    return config


@pytest.fixture
def make_nlp(tiny_encoder):
    def make(**overrides):
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        nlp.add_pipe("bertsum", config=tiny_config(tiny_encoder, **overrides))
        return nlp

    return make


@pytest.fixture
def nlp(make_nlp):
    nlp = make_nlp()
    nlp.initialize()
    return nlp


def make_examples(nlp, gold_ids=(1, 2)):
    """Examples whose gold summary is the sentences ``gold_ids`` of each text."""
    sentencizer = nlp.get_pipe("sentencizer")
    examples = []
    for text in TEXTS:
        reference = sentencizer(nlp.make_doc(text))
        sents = list(reference.sents)
        gold = [sents[i] for i in gold_ids if i < len(sents)]
        reference.spans[SPANS_KEY] = SpanGroup(reference, name=SPANS_KEY, spans=gold)
        reference.user_data[REFERENCE_KEY] = [s.text for s in gold]
        predicted = sentencizer(nlp.make_doc(text))
        examples.append(Example(predicted, reference))
    return examples

"""Helpers shared by the tests: texts, a tiny encoder config, gold examples.
Nothing here touches the network or ../shared."""
import re

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


def words():
    """The vocabulary of TEXTS (for the tiny encoder)."""
    words = set()
    for text in TEXTS:
        words.update(re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", text.lower()))
    return sorted(words)


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

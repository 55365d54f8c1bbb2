"""Helpers shared by the tests: texts, a tiny encoder config and pipeline,
gold examples, training overrides, JSONL rows in and out. Nothing here
touches the network or ../shared."""
import gzip
import json
import lzma
import re
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import SpanGroup
from spacy.training import Example

from spacy_bertsum.util import REFERENCE_KEY, SPANS_KEY

#: The CPU training config, with absolute path (tests may change directory).
CPU_CONFIG = Path(__file__).parent.parent / "configs" / "bertsum_cpu.cfg"

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


def build_nlp(encoder_path: str, **overrides) -> Language:
    """A blank English pipeline with a sentencizer and a tiny bertsum
    component (``tiny_config``), initialized."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("bertsum", config=tiny_config(encoder_path, **overrides))
    nlp.initialize()
    return nlp


def save_tiny_pipeline(encoder_path: str, directory: Path) -> Path:
    """``build_nlp(encoder_path)`` saved to ``directory / "model"``."""
    path = directory / "model"
    build_nlp(encoder_path).to_disk(path)
    return path


def tiny_training_overrides(encoder_path: str, corpus: Path) -> Dict[str, Any]:
    """Overrides that train CPU_CONFIG with the tiny encoder on ``corpus``
    (train and dev); callers add the training steps."""
    return {
        "paths.train": str(corpus),
        "paths.dev": str(corpus),
        "components.bertsum.model.encoder.name": encoder_path,
        "components.bertsum.model.encoder.trainable_layers": -1,
        "components.bertsum.model.encoder.get_spans.max_tokens": 40,
        "components.bertsum.model.heads": 2,
        "components.bertsum.model.ff_size": 32,
        "components.bertsum.top_k": 2,
    }


# -- JSONL rows ----------------------------------------------------------------

GERMAN = "Der Sturm traf die Küste am Montag. Tausende Häuser verloren den Strom. Die Schulen bleiben zu."
CHINESE = "台风周一袭击了海岸。数千户家庭停电。学校将在周四重新开放。"
#: Input lines for `summarize`, good and bad; blank lines are not rows.
BAD_AND_GOOD = [
    json.dumps({"id": "first", "text": TEXTS[0]}),  # 1
    "{not json",  # 2
    "",  # 3: blank, skipped
    json.dumps([1, 2, 3]),  # 4
    json.dumps({"id": "no-text", "body": "x"}),  # 5
    json.dumps({"id": "int-text", "text": 42}),  # 6
    json.dumps({"id": "empty", "text": "  \n "}),  # 7: not an error
    json.dumps({"text": TEXTS[1]}),  # 8: id = line number
    b'{"id": "garbage", "text": "Bad \xff\xfe bytes \xc3. More text."}',  # 9: invalid UTF-8 in a string
    b"\x00\x01\xff\xfe binary \x7f garbage",  # 10
    json.dumps({"id": "de", "text": GERMAN}),  # 11
    json.dumps({"id": "zh", "text": CHINESE}, ensure_ascii=False),  # 12
    json.dumps({"id": "surrogate", "text": "Lone \ud800 half. Then more."}),  # 13
]
#: The rows of BAD_AND_GOOD: (id, expected error prefix or None for a summary).
EXPECTED = [
    ("first", None),
    (2, "line 2: invalid JSON"),
    (4, "line 4: expected a JSON object, got list"),
    ("no-text", "line 5: missing field 'text'"),
    ("int-text", "line 6: field 'text' must be a string, got int"),
    ("empty", None),
    (8, None),
    ("garbage", None),
    (10, "line 10: invalid JSON"),
    ("de", None),
    ("zh", None),
    ("surrogate", None),
]


def write_jsonl(path: Path, lines: Sequence[Union[str, bytes]]) -> Path:
    """Write ``lines`` (text or bytes), one a line, plain or compressed by
    the suffix (.gz, .xz)."""
    data = b"".join((line if isinstance(line, bytes) else line.encode("utf8")) + b"\n" for line in lines)
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    with opener(path, "wb") as f:
        f.write(data)
    return path


def jsonl_rows(text: str) -> List[Dict[str, Any]]:
    """The JSON objects of the non-blank lines of ``text``."""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def read_rows(path: Union[str, Path]) -> List[Dict[str, Any]]:
    return jsonl_rows(Path(path).read_text(encoding="utf8"))


def assert_same_rows(got: List[Dict[str, Any]], expected: List[Dict[str, Any]]) -> None:
    """Equal rows; scores equal up to float rounding (a doc's scores can
    differ in the last bits with the docs it is batched with)."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert {k: v for k, v in a.items() if k != "scores"} == {k: v for k, v in b.items() if k != "scores"}
        assert a["scores"] == pytest.approx(b["scores"], abs=1e-6)

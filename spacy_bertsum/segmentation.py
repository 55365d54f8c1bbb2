"""Sentence boundary repairs for raw news text, run after spaCy's segmenter.

spaCy's rule-based ``sentencizer`` ends a sentence after its final
punctuation *and every punctuation token that follows*, so in raw text with
straight quotes the opening quote of the next sentence stays behind:

    ... to helm the film. "  |  Independence Day 2" is set for release ...

In the raw CNN/DailyMail rows of our validation selection set 14% of the
sentences end that way (docs/benchmarks.md). The ``quote_boundaries`` component moves such a quote
to the sentence it opens, so a summary shows whole quoted sentences.
"""
from typing import Callable

from spacy.language import Language
from spacy.tokens import Doc, Token

#: Tokens that always open a quotation: curly and angle opening quotes, and
#: PTB's opening quote. A straight quote (``STRAIGHT_QUOTES``) opens one when
#: it stands after a space and right before the next word.
OPENING_QUOTES = ("\u201c", "\u2018", "\u00ab", "``")
STRAIGHT_QUOTES = ('"',)


def is_opening_quote(token: Token) -> bool:
    """Whether ``token`` opens a quotation (see ``OPENING_QUOTES``); a
    straight quote at the end of the doc opens nothing."""
    if token.text in OPENING_QUOTES:
        return True
    if token.text not in STRAIGHT_QUOTES or token.whitespace_ or token.i + 1 >= len(token.doc):
        return False
    return token.i == 0 or bool(token.doc[token.i - 1].whitespace_)


def fix_quote_boundaries(doc: Doc) -> Doc:
    """Move an opening quote that ends a sentence to the start of the next
    one. Needs sentence boundaries; a doc without them is returned as is."""
    if not len(doc) or not doc.has_annotation("SENT_START"):
        return doc
    for sent in list(doc.sents):
        last = sent[-1]
        if sent.end < len(doc) and len(sent) > 1 and is_opening_quote(last):
            last.is_sent_start = True
            doc[last.i + 1].is_sent_start = False
    return doc


@Language.factory(
    "quote_boundaries",
    requires=["doc.sents"],
    assigns=["token.is_sent_start"],
)
def make_quote_boundaries(nlp: Language, name: str) -> Callable[[Doc], Doc]:
    """Pipeline component: ``fix_quote_boundaries`` on every doc. Add it
    right after the segmenter: ``nlp.add_pipe("quote_boundaries",
    after="sentencizer")``. It has no settings and no data."""
    return fix_quote_boundaries

"""quote_boundaries: opening quotes left at a sentence end by the sentencizer."""
import pytest
import spacy

import spacy_bertsum  # noqa: F401  (registers the factory)
from spacy_bertsum.segmentation import fix_quote_boundaries


@pytest.fixture
def nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("quote_boundaries")
    return nlp


def sents(doc):
    return [s.text for s in doc.sents]


def test_the_sentencizer_leaves_an_opening_quote_behind():
    """The defect the component is for (raw CNN text, docs/benchmarks.md)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    doc = nlp('He will return to helm the film. "Independence Day 2" is set for release.')
    assert sents(doc) == ['He will return to helm the film. "', 'Independence Day 2" is set for release.']


def test_opening_quote_moves_to_the_sentence_it_opens(nlp):
    doc = nlp('He will return to helm the film. "Independence Day 2" is set for release. Then he left.')
    assert sents(doc) == ["He will return to helm the film.", '"Independence Day 2" is set for release.', "Then he left."]


def test_closing_quotes_and_quote_first_docs_stay(nlp):
    assert sents(nlp('He said: "It is great." Then he left.')) == ['He said: "It is great."', "Then he left."]
    assert sents(nlp('"Quote first." Then text.')) == ['"Quote first."', "Then text."]
    # A quote that ends the doc opens nothing.
    assert sents(nlp('It ends with a quote. "')) == ['It ends with a quote. "']


def test_curly_opening_quote(nlp):
    assert sents(nlp("Curly. \u201cOpen it,\u201d he said.")) == ["Curly.", "\u201cOpen it,\u201d he said."]


def test_several_in_one_doc_and_tokens_unchanged(nlp):
    text = 'One. "Two." Three. "Four," he said. "Five.'
    doc = nlp(text)
    assert sents(doc) == ["One.", '"Two."', "Three.", '"Four," he said.', '"Five.']
    assert doc.text == text


def test_doc_without_sentences_or_tokens_is_returned_as_is():
    nlp = spacy.blank("en")
    doc = nlp('No boundaries. "Here')
    assert fix_quote_boundaries(doc) is doc
    assert not doc.has_annotation("SENT_START")
    assert len(fix_quote_boundaries(nlp(""))) == 0


def test_saved_pipeline_keeps_the_component(nlp, tmp_path):
    nlp.to_disk(tmp_path / "p")
    loaded = spacy.load(tmp_path / "p")
    assert loaded.pipe_names == ["sentencizer", "quote_boundaries"]
    assert sents(loaded('It rains. "Be" it.')) == ["It rains.", '"Be" it.']


def test_convert_segments_as_the_shipped_pipeline_does():
    """Training data and the shipped pipeline split sentences alike."""
    from spacy_bertsum.cli.convert import load_segmenter
    from spacy_bertsum.loading import pipeline_path

    nlp = load_segmenter("sentencizer")
    shipped = spacy.util.load_config(pipeline_path() / "config.cfg")
    assert nlp.pipe_names == [p for p in shipped["nlp"]["pipeline"] if p != "bertsum"]
    assert sents(nlp('It rains. "Be" it.')) == ["It rains.", '"Be" it.']


def test_straight_quote_glued_to_the_word_before_is_a_closing_quote(nlp):
    # `said."` then a new sentence: the quote closes the first sentence.
    assert sents(nlp('He said "stop." Then he left.')) == ['He said "stop."', "Then he left."]
    # PTB's closing quote is never moved; its opening quote always is.
    assert sents(nlp("It rains . `` Be it . ''")) == ["It rains .", "`` Be it . ''"]

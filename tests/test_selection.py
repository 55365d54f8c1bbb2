"""Pure tests of the sentence selection rules (no model, no spaCy pipeline)."""
import math

import pytest

from spacy_bertsum.selection import SelectionConfig, count_words, select_sentences


def _sents(*texts):
    """Lowercased word lists, as the component passes them."""
    return [text.lower().split() for text in texts]


# Distinct sentences sharing no trigram, with known word counts.
SENTS = _sents(
    "alpha one two three four",  # 5 words
    "bravo a b c d e f g h i",  # 10 words
    "charlie x y",  # 3 words
    "delta p q r",  # 4 words
    "echo m n o s t",  # 6 words
)


def cfg(**kwargs):
    kwargs.setdefault("trigram_blocking", False)
    return SelectionConfig(**kwargs)


# -- count-based selection ----------------------------------------------------


def test_default_config_values():
    config = SelectionConfig()
    assert config.top_k == 3
    assert config.ratio is None
    assert config.max_words is None
    assert config.trigram_blocking is True
    assert config.min_words == 0


@pytest.mark.parametrize(
    "top_k,expected",
    [(0, []), (1, [1]), (2, [1, 3]), (3, [1, 3, 4]), (5, [0, 1, 2, 3, 4]), (50, [0, 1, 2, 3, 4])],
)
def test_top_k(top_k, expected):
    scores = [0.1, 0.9, 0.2, 0.8, 0.5]
    assert select_sentences(scores, SENTS, cfg(top_k=top_k)) == expected


def test_top_k_none_selects_everything():
    scores = [0.1, 0.9, 0.2, 0.8, 0.5]
    assert select_sentences(scores, SENTS, cfg(top_k=None)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize(
    "ratio,n_sents,expected_n",
    [(0.25, 10, 3), (0.3, 10, 3), (0.31, 10, 4), (0.01, 10, 1), (0.5, 1, 1), (1.0, 7, 7), (0.1, 3, 1)],
)
def test_ratio_is_ceil_and_at_least_one(ratio, n_sents, expected_n):
    scores = [float(i % 5) + i / 100 for i in range(n_sents)]
    words = [[f"w{i}", f"x{i}", f"y{i}"] for i in range(n_sents)]
    # top_k is ignored when ratio is set.
    chosen = select_sentences(scores, words, cfg(top_k=1, ratio=ratio))
    assert len(chosen) == expected_n == max(1, math.ceil(ratio * n_sents))
    best = sorted(range(n_sents), key=lambda i: (-scores[i], i))[:expected_n]
    assert chosen == sorted(best)


# -- word budget --------------------------------------------------------------


def test_max_words_skips_what_does_not_fit_and_takes_later_shorter_ones():
    # Ranking: 1 (10 words), 0 (5), 4 (6), 2 (3), 3 (4).
    scores = [0.8, 0.9, 0.6, 0.5, 0.7]
    chosen = select_sentences(scores, SENTS, cfg(top_k=None, max_words=8))
    # 1 does not fit; 0 fits (5); 4 would make 11: skipped; 2 fits (8); 3 would make 12.
    assert chosen == [0, 2]


@pytest.mark.parametrize("budget", [0, 1, 3, 4, 7, 8, 9, 12, 15, 20, 28, 100])
@pytest.mark.parametrize("top_k", [None, 2, 3])
def test_max_words_never_exceeded(budget, top_k):
    scores = [0.8, 0.9, 0.6, 0.5, 0.7]
    chosen = select_sentences(scores, SENTS, cfg(top_k=top_k, max_words=budget))
    assert sum(count_words(SENTS[i]) for i in chosen) <= budget
    if top_k is not None:
        assert len(chosen) <= top_k
    assert chosen == sorted(chosen)


def test_max_words_zero_selects_nothing():
    assert select_sentences([0.5, 0.4], _sents("a b", "c d"), cfg(max_words=0)) == []


def test_punctuation_is_free_in_the_word_budget():
    words = [["hello", ",", "world", "!"], ["big", "news"]]
    assert count_words(words[0]) == 2
    assert select_sentences([0.9, 0.1], words, cfg(top_k=None, max_words=2)) == [0]
    assert select_sentences([0.9, 0.1], words, cfg(top_k=None, max_words=4)) == [0, 1]


# -- trigram blocking ---------------------------------------------------------


def test_trigram_blocking_skips_near_duplicates_only_when_on():
    words = _sents(
        "the storm hit the coast on monday",
        "the storm hit the coast on monday night",  # near-duplicate of 0
        "thousands of homes lost power",
        "schools will reopen on thursday",
    )
    scores = [0.9, 0.8, 0.7, 0.1]
    assert select_sentences(scores, words, SelectionConfig(top_k=2, trigram_blocking=True)) == [0, 2]
    assert select_sentences(scores, words, SelectionConfig(top_k=2, trigram_blocking=False)) == [0, 1]
    # With blocking the next sentence in the ranking fills the slot.
    assert select_sentences(scores, words, SelectionConfig(top_k=3, trigram_blocking=True)) == [0, 2, 3]


def test_trigram_blocking_keeps_sentences_sharing_only_bigrams():
    words = _sents("the storm hit hard", "the storm was bad")
    assert select_sentences([0.9, 0.8], words, SelectionConfig(top_k=2, trigram_blocking=True)) == [0, 1]


def test_trigram_blocking_with_short_sentences():
    # Sentences under 3 tokens have no trigram and are never blocked.
    words = _sents("yes", "yes", "no no")
    assert select_sentences([0.9, 0.8, 0.7], words, SelectionConfig(top_k=3)) == [0, 1, 2]


# -- min_words ----------------------------------------------------------------


def test_min_words_makes_short_sentences_ineligible():
    scores = [0.1, 0.2, 0.9, 0.8, 0.3]  # 2 (3 words) and 3 (4 words) rank highest
    assert select_sentences(scores, SENTS, cfg(top_k=2, min_words=5)) == [1, 4]
    assert select_sentences(scores, SENTS, cfg(top_k=2, min_words=4)) == [3, 4]
    assert select_sentences(scores, SENTS, cfg(top_k=2, min_words=0)) == [2, 3]


def test_min_words_falls_back_to_all_sentences_when_none_is_eligible():
    scores = [0.1, 0.2, 0.9, 0.8, 0.3]
    assert select_sentences(scores, SENTS, cfg(top_k=2, min_words=50)) == [2, 3]


def test_min_words_eligible_set_smaller_than_top_k():
    scores = [0.1, 0.2, 0.9, 0.8, 0.3]
    # Only sentence 1 has >= 10 words; short ones are not used to fill up.
    assert select_sentences(scores, SENTS, cfg(top_k=3, min_words=10)) == [1]


# -- ordering, ties and edge cases --------------------------------------------


def test_ties_keep_document_order():
    words = [[f"w{i}", "x", f"y{i}"] for i in range(6)]
    assert select_sentences([0.5] * 6, words, cfg(top_k=3)) == [0, 1, 2]
    scores = [0.2, 0.7, 0.2, 0.7, 0.7, 0.2]
    assert select_sentences(scores, words, cfg(top_k=2)) == [1, 3]
    assert select_sentences(scores, words, cfg(top_k=4)) == [0, 1, 3, 4]


def test_output_is_always_in_document_order():
    import random

    rng = random.Random(0)
    for _ in range(200):
        n = rng.randint(0, 12)
        scores = [rng.random() for _ in range(n)]
        words = [[rng.choice("abcdef") for _ in range(rng.randint(1, 8))] for _ in range(n)]
        config = SelectionConfig(
            top_k=rng.choice([None, 0, 1, 3, 20]),
            ratio=rng.choice([None, 0.2, 1.0]),
            max_words=rng.choice([None, 0, 5, 30]),
            trigram_blocking=rng.random() < 0.5,
            min_words=rng.choice([0, 2, 5]),
        )
        chosen = select_sentences(scores, words, config)
        assert chosen == sorted(set(chosen))
        assert all(0 <= i < n for i in chosen)
        assert len(chosen) <= config.n_wanted(n)
        if config.max_words is not None:
            assert sum(count_words(words[i]) for i in chosen) <= config.max_words


def test_empty_input():
    assert select_sentences([], []) == []
    assert select_sentences([], [], SelectionConfig(ratio=0.5, max_words=3, min_words=2)) == []


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match=r"\[E013\]"):
        select_sentences([0.1, 0.2], [["a"]])
    with pytest.raises(ValueError, match=r"\[E013\]"):
        select_sentences([], [["a"]])


def test_scores_may_be_numpy():
    numpy = pytest.importorskip("numpy")
    scores = numpy.asarray([0.1, 0.9, 0.2, 0.8, 0.5], dtype="f")
    assert select_sentences(scores, SENTS, cfg(top_k=2)) == [1, 3]


# -- settings validation ------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,code",
    [
        ({"top_k": -1}, "E010"),
        ({"ratio": 0}, "E011"),
        ({"ratio": 0.0}, "E011"),
        ({"ratio": -0.5}, "E011"),
        ({"ratio": 1.01}, "E011"),
        ({"ratio": 2}, "E011"),
        ({"max_words": -1}, "E010"),
        ({"min_words": -2}, "E010"),
    ],
)
def test_invalid_settings_raise(kwargs, code):
    with pytest.raises(ValueError, match=rf"\[{code}\]"):
        SelectionConfig(**kwargs)


@pytest.mark.parametrize("kwargs", [{"top_k": 0}, {"top_k": None}, {"ratio": 1.0}, {"ratio": 1e-6}, {"max_words": 0}])
def test_valid_boundary_settings(kwargs):
    SelectionConfig(**kwargs)


def test_updated_returns_a_validated_copy():
    base = SelectionConfig()
    new = base.updated(top_k=1, trigram_blocking=False)
    assert (new.top_k, new.trigram_blocking) == (1, False)
    assert (base.top_k, base.trigram_blocking) == (3, True)
    assert base.updated() == base
    with pytest.raises(ValueError, match=r"\[E010\]"):
        base.updated(top_k=-3)
    with pytest.raises(ValueError, match=r"\[E011\]"):
        base.updated(ratio=0)


def test_updated_unknown_key_raises_type_error_naming_allowed_keys():
    with pytest.raises(TypeError, match=r"\[E012\]") as excinfo:
        SelectionConfig().updated(top_n=2)
    message = str(excinfo.value)
    assert "top_n" in message
    for key in ("top_k", "ratio", "max_words", "trigram_blocking", "min_words"):
        assert key in message


def test_lead_k():
    from spacy_bertsum.selection import lead

    assert lead(5) == [0, 1, 2] and lead(2) == [0, 1] and lead(0) == [] and lead(5, k=1) == [0]

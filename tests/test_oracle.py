import random

import pytest
from rouge_score import tokenizers

from spacy_bertsum.oracle import greedy_oracle, ngrams, rouge_f, rouge_tokens


def _presumm_greedy(sents, reference, summary_size):
    """A literal port of PreSumm's greedy_selection/cal_rouge, with rouge-score tokens."""

    def cal_rouge(evaluated, ref):
        overlap = len(evaluated & ref)
        p = overlap / len(evaluated) if evaluated else 0.0
        r = overlap / len(ref) if ref else 0.0
        return 2.0 * ((p * r) / (p + r + 1e-8))

    abstract = [t for s in reference for t in rouge_tokens(s)]
    toks = [rouge_tokens(s) for s in sents]
    e1 = [set(ngrams(t, 1)) for t in toks]
    e2 = [set(ngrams(t, 2)) for t in toks]
    r1, r2 = set(ngrams(abstract, 1)), set(ngrams(abstract, 2))
    max_rouge, selected = 0.0, []
    for _ in range(summary_size):
        cur_max, cur_id = max_rouge, -1
        for i in range(len(sents)):
            if i in selected:
                continue
            c = selected + [i]
            score = cal_rouge(set.union(*[e1[j] for j in c]), r1) + cal_rouge(
                set.union(*[e2[j] for j in c]), r2
            )
            if score > cur_max:
                cur_max, cur_id = score, i
        if cur_id == -1:
            break
        selected.append(cur_id)
        max_rouge = cur_max
    return sorted(selected)


SENTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply on Monday amid inflation fears.",
    "Scientists discovered a new species of frog in the rainforest.",
    "The weather tomorrow will be sunny with light winds.",
]


def test_reference_copies_sentences():
    assert greedy_oracle(SENTS, [SENTS[2], SENTS[0]]) == [0, 2]


def test_single_copied_sentence_and_irrelevant_never_added():
    # Only sentence 1 shares anything with the reference: the oracle stops after it.
    assert greedy_oracle(SENTS, ["Stock markets fell sharply on Monday."]) == [1]


def test_stops_when_nothing_gains():
    # Sentence 3 shares only "the" with the reference: adding it lowers precision.
    sents = [SENTS[0], "Nothing in common here at all.", "The end."]
    assert greedy_oracle(sents, [SENTS[0]]) == [0]


def test_no_overlap_selects_nothing():
    assert greedy_oracle(SENTS, ["Zebra xylophone quartz."]) == []


def test_respects_max_sents():
    ref = list(SENTS)
    assert greedy_oracle(SENTS, ref, max_sents=2) == sorted(greedy_oracle(SENTS, ref, 2))
    assert len(greedy_oracle(SENTS, ref, max_sents=2)) == 2
    assert len(greedy_oracle(SENTS, ref, max_sents=1)) == 1
    assert greedy_oracle(SENTS, ref, max_sents=4) == [0, 1, 2, 3]
    assert greedy_oracle(SENTS, ref, max_sents=0) == []


def test_default_max_sents_is_three():
    assert len(greedy_oracle(SENTS, list(SENTS))) == 3


@pytest.mark.parametrize(
    "sents,ref",
    [
        ([], ["a reference"]),
        (SENTS, []),
        (SENTS, ""),
        (SENTS, ["", "  "]),
        ([], []),
        (["", "!!"], ["x y"]),
    ],
)
def test_empty_inputs(sents, ref):
    assert greedy_oracle(sents, ref) == []


def test_string_vs_list_reference():
    ref_list = ["Scientists found a new frog species.", "Markets fell on Monday."]
    assert greedy_oracle(SENTS, ref_list) == greedy_oracle(SENTS, " ".join(ref_list))
    assert greedy_oracle(SENTS, ref_list) == [1, 2]


def test_stemming_and_punctuation_matter():
    # "running"/"runs" and "Cats"/"cat" only match after Porter stemming; case and
    # punctuation are ignored.
    sents = ["Dogs were sleeping quietly.", "The CATS, running!"]
    assert greedy_oracle(sents, ["a cat runs"]) == [1]


@pytest.mark.parametrize(
    "text",
    [
        "Hello, World! It's 2024-01-01; prices rose 3.5% (to $1,000).",
        "The runners were running quickly; they've ran.  Generously\tgenerous\n",
        "Ünïcödé café naïve — “quotes” and émojis 🙂 e-mail U.S.A.",
        "",
        "   ",
        "a an the is was be been being abcd ABCD Abcd",
    ],
)
def test_tokens_match_rouge_score(text):
    expected = tokenizers.DefaultTokenizer(use_stemmer=True).tokenize(text)
    assert rouge_tokens(text) == expected


def test_tokens_examples():
    assert rouge_tokens("The Runners, running!") == ["the", "runner", "run"]
    assert rouge_tokens("cats dogs ran") == ["cat", "dog", "ran"]


def test_rouge_f():
    assert rouge_f(0, 0, 0) == 0.0
    assert rouge_f(2, 4, 4) == pytest.approx(0.5)
    assert rouge_f(4, 4, 4) == pytest.approx(1.0)


def test_matches_presumm_port_on_random_documents():
    rng = random.Random(0)
    vocab = [f"w{i}" for i in range(30)] + ["running", "runs", "the", "a", "cats", "cat"]
    for _ in range(200):
        n = rng.randint(0, 12)
        sents = [" ".join(rng.choices(vocab, k=rng.randint(0, 15))) for _ in range(n)]
        n_ref = rng.randint(1, 4)
        ref = [" ".join(rng.choices(vocab, k=rng.randint(1, 10))) for _ in range(n_ref)]
        k = rng.randint(1, 5)
        assert greedy_oracle(sents, ref, k) == _presumm_greedy(sents, ref, k)

"""The inter-sentence head: position encodings, their cap and offsets."""
import pytest
import torch

from spacy_bertsum.inter_sentence import InterSentenceEncoder, sinusoidal_positions


def test_positions_without_cap_are_sinusoidal():
    head = InterSentenceEncoder(8, n_layers=0)
    assert torch.allclose(head.positions(5)[0], sinusoidal_positions(5, 8))


def test_positions_from_the_cap_on_are_shared():
    head = InterSentenceEncoder(8, n_layers=0, max_position=2)
    pe = head.positions(6)[0]
    table = sinusoidal_positions(3, 8)
    assert torch.allclose(pe[:3], table)
    for i in range(3, 6):
        assert torch.equal(pe[i], pe[2])


def test_offsets_shift_positions_per_row():
    head = InterSentenceEncoder(8, n_layers=0, max_position=4)
    pe = head.positions(3, torch.tensor([0, 1, 3]))
    table = sinusoidal_positions(5, 8)
    assert torch.allclose(pe[0], table[[0, 1, 2]])
    assert torch.allclose(pe[1], table[[1, 2, 3]])
    assert torch.allclose(pe[2], table[[3, 4, 4]])


@pytest.mark.parametrize("n_layers", [0, 1])
def test_cap_changes_scores_of_late_sentences_only(n_layers):
    torch.manual_seed(0)
    capped = InterSentenceEncoder(8, n_layers=n_layers, heads=2, ff_size=16, dropout=0.0, max_position=3).eval()
    free = InterSentenceEncoder(8, n_layers=n_layers, heads=2, ff_size=16, dropout=0.0).eval()
    free.load_state_dict(capped.state_dict())
    x = torch.randn(1, 6, 8)
    mask = torch.ones(1, 6, dtype=torch.bool)
    a, b = capped(x, mask), free(x, mask)
    if n_layers == 0:  # no attention: the first 4 sentences are unaffected
        assert torch.allclose(a[0, :4], b[0, :4])
    assert not torch.allclose(a[0, 4:], b[0, 4:])

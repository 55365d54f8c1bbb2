"""Shared fixtures (helpers are in tests/util.py). Nothing here touches the
network or ../shared."""
import pytest
import spacy

from .util import tiny_config, words


@pytest.fixture(scope="session")
def tiny_encoder(tmp_path_factory):
    """A 2-layer, 32-wide BERT with random weights and a vocab built from the
    test texts, saved like a Hugging Face model directory."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words()
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

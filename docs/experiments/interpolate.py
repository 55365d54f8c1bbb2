"""Issue #12, session 12 (row 28): a weight interpolation of two pipelines of
one lineage (WiSE-FT, Wortsman et al. 2022): every weight of the encoder's
top N layers and of the head is (1 - WEIGHT) * A + WEIGHT * B. B must have
been trained from A (the same start, the same head settings); the result is
A's pipeline with the interpolated weights, saved compact.

    python docs/experiments/interpolate.py en_bertsum_news training/lora/model-best 0.5 \
        training/wise05/model-best [--layers 6]

Where B adapted frozen layers of A through low-rank adapters (train-head with
lora_rank), the interpolation of those layers is A + WEIGHT * (B - A), an
update of the same rank, which the compact save stores as its factors.
"""
import argparse
import copy
from pathlib import Path

from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli._scorers import build_scorer, head_config, save_scorer
from spacy_bertsum.cli.train_head import average_states
from spacy_bertsum.loading import load_model

parser = argparse.ArgumentParser()
parser.add_argument("a")
parser.add_argument("b")
parser.add_argument("weight", type=float, help="the weight of B (0: A, 1: B)")
parser.add_argument("output", type=Path)
parser.add_argument("--layers", type=int, default=6, help="how many top encoder layers to interpolate")
args = parser.parse_args()
if not 0.0 <= args.weight <= 1.0:
    parser.error(f"weight must be in [0, 1], not {args.weight}")
nlp_a, nlp_b = load_model(args.a), load_model(args.b)
if head_config(nlp_a) != head_config(nlp_b):
    parser.error(f"the heads differ: {head_config(nlp_a)} vs {head_config(nlp_b)}")
scorers = [build_scorer(n, copy.deepcopy(get_head_module(n.get_pipe("bertsum").model)), args.layers)
           for n in (nlp_a, nlp_b)]
soup = scorers[0]
soup.load_state_dict(average_states([s.state_dict() for s in scorers], [1 - args.weight, args.weight]))
save_scorer(nlp_a, soup, head_config(nlp_a), args.output)
print(f"saved {args.output}: {1 - args.weight:g} x {args.a} + {args.weight:g} x {args.b} ({args.layers} layers and the head)")

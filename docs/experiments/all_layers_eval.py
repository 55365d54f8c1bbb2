"""Issue #12, session 9: row 24 (docs/experiments/all_layers.py) in the pipeline, evaluated.

The shipped pipeline with its six encoder layers and head replaced, in memory,
by row 24's best state (OUT/best.pt), evaluated with `evaluate` as the shipped
model is (the pipeline's own segmentation, Lead-3 on the same sentences):

    python docs/experiments/all_layers_eval.py training/all6 corpus/dev_heldout.spacy metrics/row24_heldout.json text_form
    python docs/experiments/all_layers_eval.py training/all6 corpus/test.spacy metrics/row24_test.json

(A compact save of the pipeline stores only the top 2 layers, so this model
cannot be saved as the shipped one is; see docs/benchmarks.md.)
"""
import sys
from pathlib import Path

import torch
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli._scorers import top_encoder_layers
from spacy_bertsum.cli.evaluate import evaluate_path
from spacy_bertsum.loading import load_model

run, data, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
by = sys.argv[4] if len(sys.argv) > 4 else None
torch.set_num_threads(2)
nlp = load_model("en_bertsum_news")
state = torch.load(run / "best.pt")
layers = top_encoder_layers(nlp, 6)
for i, layer in enumerate(layers):
    layer.load_state_dict({k[len(f"layers.{i}."):]: v for k, v in state.items() if k.startswith(f"layers.{i}.")})
get_head_module(nlp.get_pipe("bertsum").model).load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("head.")})
evaluate_path(nlp, data, out, by=by, show_progress=False)

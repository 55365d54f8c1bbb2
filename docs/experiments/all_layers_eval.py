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
from spacy_bertsum.cli._scorers import build_scorer, install_layers
from spacy_bertsum.cli.evaluate import evaluate_path
from spacy_bertsum.loading import load_model

run, data, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
by = sys.argv[4] if len(sys.argv) > 4 else None
torch.set_num_threads(2)
nlp = load_model("en_bertsum_news")
# The scorer row 24 trained (copies of the six layers, and the pipeline's own
# head module), loaded with its state; then its layers go into the pipeline.
scorer = build_scorer(nlp, get_head_module(nlp.get_pipe("bertsum").model), 6)
scorer.load_state_dict(torch.load(run / "best.pt"))
install_layers(nlp, scorer.layers)
evaluate_path(nlp, data, out, by=by, show_progress=False)

"""A model trained on the six-layer caches against the shipped pipeline, paired, on the selection set.

`train-head` prints each evaluation's margin over Lead-3; this gives the
paired difference of its model-best to the shipped pipeline on the same
selection docs (the 1,000 lowercased rows: the raw ones were trained on),
through the cached inputs of layer 1 (training/lcache6/dev), as train-head
scored them:

    python docs/experiments/select_paired.py training/lora/model-best [training/lora/select.json]

Prints per text form R1, R2, RLsum, the difference to Lead-3 and to the
shipped pipeline (95% CI, paired bootstrap over docs), the late share and
the share of docs whose choices changed.
"""
import json, sys
from pathlib import Path

import torch
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli._scorers import TopLayerScorer, scorer_vectors, top_encoder_layers
from spacy_bertsum.cli.train_head import DevSet, compare, predict
from spacy_bertsum.loading import load_model
from spacy_bertsum.scorer import ROUGE_TYPES

torch.set_num_threads(2)
model_path = sys.argv[1]
shipped = load_model("en_bertsum_news")
trained = load_model(model_path)
# with the layer-1 inputs of every selection doc, and their lexical features
dev = DevSet(Path("training/lcache6/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
             lexical_features=True, block_size=128, vocab=shipped.vocab, layer_inputs=True)
dev = dev.without([i for d, i in zip(dev.docs, dev.index) if d.group == "RAW"])  # trained on
inputs = dev.cache.layers
sel0 = dev.select(predict(get_head_module(shipped.get_pipe("bertsum").model), dev.vecs))
model = trained.get_pipe("bertsum").model
scorer = TopLayerScorer(top_encoder_layers(trained, 6), get_head_module(model))
vecs = scorer_vectors(scorer, inputs)
sel = dev.select(predict(scorer.head, vecs))
lead, r0, r = dev.rouge(dev.lead()), dev.rouge(sel0), dev.rouge(sel)
res = compare(dev, r, lead, sel)
vs = compare(dev, r, r0, sel)
for g in res:
    res[g]["vs_shipped"] = {n: vs[g][f"{n}_diff"] for n in ROUGE_TYPES}
res["all"]["changed_share"] = round(sum(a != b for a, b in zip(sel, sel0)) / len(sel), 4)
res["shipped"] = compare(dev, r0, lead, sel0)["all"]
print(json.dumps(res, indent=1))
if len(sys.argv) > 2:
    Path(sys.argv[2]).write_text(json.dumps(res, indent=1))

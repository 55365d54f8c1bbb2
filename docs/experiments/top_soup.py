"""Issue #12, session 8 (row 22): the weight average (a "model soup") and the
logit ensemble of train-top models of one lineage (the same start, so their
weights can be averaged), each next to the first model, on the selection
set's cached layer inputs (training/lcache/dev).

    python docs/experiments/top_soup.py /tmp/soup en_bertsum_news \
        training/top_s1/model-best training/top_s2/model-best

Writes OUT.npy (per-doc ROUGE of every row); SAVE=path also saves the soup as
a pipeline."""
import sys, json, copy, os
import numpy, torch
from pathlib import Path
from spacy_bertsum.loading import load_model
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli.train_head import (DevSet, compare, evaluate_head, predict, build_scorer, scorer_vectors,
    average_states, save_scorer, head_config)
from spacy_bertsum.cli.cache_vectors import load_cache
from spacy_bertsum.significance import paired_bootstrap
torch.set_num_threads(int(os.environ.get("THREADS", 1)))
out = sys.argv[1]; paths = sys.argv[2:]
nlps = [load_model(p) for p in paths]
dev = DevSet(Path("training/lcache/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
             lexical_features=True, block_size=128, vocab=nlps[0].vocab)
dev_cache = load_cache(Path("training/lcache/dev"), layer_inputs=True).with_features(dev.features)
inputs = dev_cache.layers
scorers = [build_scorer(n, copy.deepcopy(get_head_module(n.get_pipe("bertsum").model)), 2) for n in nlps]
lead = dev.rouge(dev.lead())
groups = {"all": list(range(len(dev.docs)))}
for g in sorted({d.group for d in dev.docs}): groups[g] = [i for i, d in enumerate(dev.docs) if d.group == g]
res = {}
def run(name, logits):
    sel = dev.select(logits); r = dev.rouge(sel)
    res[name] = r
    line = [name]
    for g, idx in groups.items():
        d = paired_bootstrap(r[idx, 0], lead[idx, 0])
        line.append(f"{g[:3]} {r[idx,0].mean():.2f} ({d[0]:+.2f} [{d[1]:+.2f},{d[2]:+.2f}])")
    if "m0" in res and name != "m0":
        d = paired_bootstrap(r[:, 0], res["m0"][:, 0]); line.append(f"vs m0 {d[0]:+.2f} [{d[1]:+.2f},{d[2]:+.2f}]")
        for g, idx in groups.items():
            if g != "all":
                d = paired_bootstrap(r[idx, 0], res["m0"][idx, 0]); line.append(f"{g[:3]} {d[0]:+.2f}")
    line.append(f"R2 {r[:,1].mean():.2f} RL {r[:,2].mean():.2f}")
    print(" | ".join(line), flush=True)
all_logits = []
for k, s in enumerate(scorers):
    vecs = scorer_vectors(s, inputs)
    s.head.eval()
    lg = predict(s.head, vecs); all_logits.append(lg)
    run(f"m{k}", lg)
run("ens_logits", [numpy.mean([l[i] for l in all_logits], 0) for i in range(len(dev.docs))])
soup = copy.deepcopy(scorers[0])
soup.load_state_dict(average_states([s.state_dict() for s in scorers]))
lg = predict(soup.head, scorer_vectors(soup, inputs))
run("soup", lg)
numpy.save(f"{out}.npy", numpy.stack([res[k] for k in res]))
if os.environ.get("SAVE"):
    save_scorer(nlps[0], soup, head_config(nlps[0]), Path(os.environ["SAVE"]))
    print("saved", os.environ["SAVE"])

"""Issue #12, session 7: summary length and ROUGE F1 on the selection set.
The shipped head's scores (cached vectors) selected as top-3 (shipped), top-2,
top-3 with a probability threshold for the 2nd and 3rd sentence, and under
word budgets; Lead-1/2/3 and Lead under the same word budgets (the first
sentences that fit, at most 3) as length-matched baselines. Per text form,
each row's R1 difference to Lead-3 with its 95% CI, R2 and RLsum differences.

    python docs/experiments/length_and_selection.py
"""
import numpy, json
from pathlib import Path
from spacy_bertsum.loading import load_model
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli.train_head import DevSet, predict
from spacy_bertsum.selection import SelectionConfig, select_sentences, count_words
from spacy_bertsum.significance import paired_bootstrap
base = load_model("en_bertsum_news")
head = get_head_module(base.get_pipe("bertsum").model)
dev = DevSet(Path("training/lcache/dev"), Path("corpus/dev_select.spacy"), group_by="text_form", lexical_features=True, vocab=base.vocab)
logits = predict(head, dev.vecs)
probs = [1 / (1 + numpy.exp(-l)) for l in logits]
lead3 = dev.rouge(dev.lead(3))
groups = {"all": list(range(len(dev.docs)))}
for g in ["LOWERCASED", "RAW"]:
    groups[g] = [i for i, d in enumerate(dev.docs) if d.group == g]
def report(name, sel):
    r = dev.rouge(sel)
    words = numpy.mean([sum(count_words(dev.docs[i].words[p]) for p in s) for i, s in enumerate(sel)])
    out = [name, f"{words:5.1f}w"]
    for g, idx in groups.items():
        d, lo, hi = paired_bootstrap(r[idx, 0], lead3[idx, 0])
        out.append(f"{g[:3]} R1 {r[idx,0].mean():.2f} {d:+.2f} [{lo:+.2f},{hi:+.2f}] R2 {r[idx,1].mean()-lead3[idx,1].mean():+.2f} RL {r[idx,2].mean()-lead3[idx,2].mean():+.2f}")
    print(" | ".join(out), flush=True)
    return r
for k in (1, 2, 3):
    report(f"lead{k}", dev.lead(k))
top3 = dev.select(logits)
report("top3", top3)
report("top2", dev.select(logits, SelectionConfig(top_k=2)))
for t in (0.1, 0.15, 0.2, 0.25, 0.3):
    sel = []
    for s, p in zip(top3, probs):
        ranked = sorted(s, key=lambda i: -p[i])
        keep = [ranked[0]] + [i for i in ranked[1:] if p[i] >= t]
        sel.append(sorted(keep))
    report(f"thr{t}", sel)
for mw in (50, 60, 70, 80):
    report(f"maxw{mw}", dev.select(logits, SelectionConfig(max_words=mw)))
print("--- length-matched lead (same word budget, first sentences that fit, up to 3)")
for mw in (70, 80):
    leadb = [select_sentences([-j for j in range(len(d.sents))], d.words, SelectionConfig(max_words=mw, trigram_blocking=False)) for d in dev.docs]
    rl = report(f"lead3_maxw{mw}", leadb)
    rm = dev.rouge(dev.select(logits, SelectionConfig(max_words=mw)))
    for g, idx in groups.items():
        print("  model maxw vs lead maxw", mw, g, [round(x, 2) for x in paired_bootstrap(rm[idx, 0], rl[idx, 0])])

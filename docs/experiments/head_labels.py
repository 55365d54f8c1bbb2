"""Issue #12, session 10 (row 25): soft labels from top-3 summaries only.

The soft labels of the shipped head (`oracle.soft_labels`) weight the 8 best
oracle summaries of 1 to 3 sentences. Where the reference is short (CNN's
highlights: 34.5 words on the raw selection rows, against 50.7 on the
lowercased ones), the best summaries have one or two sentences, so the labels
say nothing about the third sentence a top-3 selection always adds. With
``min_sents = 3`` every labelled summary has three sentences, as the ones the
pipeline makes, and the labels also rank the third. Both variants train the
shipped head as row 16 did (from its weights, lr 1e-3, 2,000 steps of 32
cached articles, the best of 8 evaluations and their averages), on the same
sentence-vector cache of the first 8,000 training articles:

    python -m spacy_bertsum convert ../shared/data/cnndm/train.jsonl.xz corpus/train8k.spacy --limit 8000
    python -m spacy_bertsum cache-vectors en_bertsum_news corpus/dev_select.spacy training/cache/dev --shard-size 500
    python -m spacy_bertsum cache-vectors en_bertsum_news corpus/train8k.spacy training/cache/train --shard-size 500
    LABELS=soft python docs/experiments/head_labels.py training/labels_soft     # the control (row 16's recipe)
    LABELS=top3 CONTROL=training/labels_soft python docs/experiments/head_labels.py training/labels_top3

Prints, per text form, R1 and its difference to Lead-3, to the shipped head
and (with CONTROL, a finished run of this script) to the control, all paired
bootstraps over the same docs; writes OUT/result.json, OUT/rouge.npy,
OUT/head.pt (the trained head's state dict).
Both started from the shipped head when it was 0.3.1's; to run them again
now that 0.3.2 ships, set BASE to a copy of 0.3.1 (`_head_setup.py`): the
results are then the same to the byte (checked with THREADS=1, as they ran).
"""
import json, os, sys, time
from pathlib import Path

import numpy, torch
from _head_setup import shipped_and_dev, train_cache
from spacy_bertsum.cli.cache_vectors import doc_soft_labels, read_docs
from spacy_bertsum.cli.train_head import compare, predict, train_head
from spacy_bertsum.inter_sentence import InterSentenceEncoder

kind, out_dir = os.environ.get("LABELS", "soft"), Path(sys.argv[1])
out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(int(os.environ.get("THREADS", 2)))
t0 = time.time()
base, base_head, dev = shipped_and_dev()
docs = read_docs(Path("corpus/train8k.spacy"), base.vocab)
cache = train_cache(base.vocab, docs)
if kind == "soft":
    labels = [numpy.asarray(x, dtype="float32") for x in cache.soft]
else:
    labels = [numpy.asarray(doc_soft_labels(docs[i], min_sents=3), dtype="float32") for i in cache.index]
    assert all(len(x) == len(v) for x, v in zip(labels, cache.vecs)), "the cache's sentences should be the .spacy file's"
print("data", len(labels), kind, round(time.time() - t0), flush=True)
head = InterSentenceEncoder(384, n_layers=0, heads=8, ff_size=1024, dropout=0.1, block_size=128, max_position=40,
                            n_features=cache.vecs[0].shape[1] - 384)
head.load_state_dict(base_head.state_dict())
lead = dev.rouge(dev.lead())
sel0 = dev.select(predict(base_head, dev.vecs))
r0 = dev.rouge(sel0)
head, log = train_head(head, cache.vecs, labels, dev, learn_rate=1e-3, warmup_steps=100, max_steps=2000,
                       batch_size=32, eval_frequency=250, max_sents=128, weight_decay=0.01, average_last=3,
                       loss="bce", seed=0, log_path=out_dir / "log.jsonl")
sel = dev.select(predict(head, dev.vecs))
r = dev.rouge(sel)
numpy.save(out_dir / "rouge.npy", r)
torch.save(head.state_dict(), out_dir / "head.pt")
res = {"labels": kind, "n_train": len(labels), "vs_lead3": compare(dev, r, lead, sel), "vs_shipped": compare(dev, r, r0, sel)}
if os.environ.get("CONTROL"):
    res["vs_control"] = compare(dev, r, numpy.load(Path(os.environ["CONTROL"]) / "rouge.npy"), sel)
(out_dir / "result.json").write_text(json.dumps(res, indent=1))
words = numpy.mean([sum(len(dev.docs[i].sents[j].split()) for j in s) for i, s in enumerate(sel)])
print(f"mean summary words {words:.1f}")
for group in res["vs_lead3"]:
    print(group, *(f"{key} {res[key][group]['rouge1']} {res[key][group]['rouge1_diff']}" for key in res if key.startswith("vs_")), flush=True)
print("minutes", round((time.time() - t0) / 60, 1))

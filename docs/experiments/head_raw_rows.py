"""Issue #12, session 10 (row 26): the head also trained on raw, cased pages.

No training row is a raw page (the training split has 39,060 lowercased
rows and 100 cased ones); the raw rows are 1,000 validation rows, 500 in the
selection set and 500 held back. Does supervision on raw pages help the raw
rows? Cross-fitted on the selection set, so that no doc is scored by a head
that saw it: its 500 raw rows are cut in two folds (by position in the file);
for each fold a head is trained as row 16' (0.3's head, lr 1e-3, 2,000 steps
of 32) on the 8,000 cached training articles plus that fold's raw rows
(repeated REPEAT times), its checkpoints chosen on the selection docs outside
the fold. Each raw row is then scored by the head of the other fold; each
lowercased row by both heads (their ROUGE averaged). Compared, paired, with
row 16' (`head_labels.py`, the same recipe without raw rows):

    LABELS=soft python docs/experiments/head_labels.py training/labels_soft
    REPEAT=4 python docs/experiments/head_raw_rows.py training/raw_rows_4
    REPEAT=8 python docs/experiments/head_raw_rows.py training/raw_rows
    REPEAT=16 python docs/experiments/head_raw_rows.py training/raw_rows_16   # chosen

Needs the caches of `head_labels.py` (training/cache/{train,dev}). Prints
per text form R1, its difference to Lead-3 and to row 16'; writes
OUT/result.json and OUT/rouge.npy.
Both started from the shipped head when it was 0.3.1's; to run them again
now that 0.3.2 ships, set BASE to a copy of 0.3.1 (`_head_setup.py`): the
results are then the same to the byte (checked with THREADS=1, as they ran).
"""
import json, os, sys, time
from pathlib import Path

import numpy, torch
from _head_setup import shipped_and_dev, train_cache
from spacy_bertsum.cli.cache_vectors import load_cache
from spacy_bertsum.cli.train_head import compare, predict, train_head
from spacy_bertsum.inter_sentence import InterSentenceEncoder

out_dir = Path(sys.argv[1])
out_dir.mkdir(parents=True, exist_ok=True)
repeat = int(os.environ.get("REPEAT", 8))
torch.set_num_threads(int(os.environ.get("THREADS", 2)))
t0 = time.time()
base, base_head, dev = shipped_and_dev()
dev_soft = [numpy.asarray(x, dtype="float32") for x in load_cache(Path("training/cache/dev")).soft]
cache = train_cache(base.vocab)
train_vecs, train_labels = list(cache.vecs), [numpy.asarray(x, dtype="float32") for x in cache.soft]
raw = [i for i, d in enumerate(dev.docs) if d.group == "RAW"]
folds = [raw[: len(raw) // 2], raw[len(raw) // 2 :]]
lead = dev.rouge(dev.lead())



scores = numpy.zeros((len(dev.docs), 3))
for k, fold in enumerate(folds):
    held = set(fold)
    outside = [i for i in range(len(dev.docs)) if i not in held]
    head = InterSentenceEncoder(384, n_layers=0, heads=8, ff_size=1024, dropout=0.1, block_size=128, max_position=40,
                                n_features=train_vecs[0].shape[1] - 384)
    head.load_state_dict(base_head.state_dict())
    vecs = train_vecs + [dev.vecs[i] for i in fold] * repeat
    labels = train_labels + [dev_soft[i] for i in fold] * repeat
    head, log = train_head(head, vecs, labels, dev.without(dev.index[i] for i in fold), learn_rate=1e-3, warmup_steps=100, max_steps=2000,
                           batch_size=32, eval_frequency=250, max_sents=128, weight_decay=0.01, average_last=3,
                           loss="bce", seed=0, log_path=out_dir / f"log{k}.jsonl")
    r = dev.rouge(dev.select(predict(head, dev.vecs)))
    other = folds[1 - k]
    scores[other] = r[other]  # raw rows: the head that did not see them
    lowercased = [i for i in outside if dev.docs[i].group != "RAW"]
    scores[lowercased] += r[lowercased] / 2  # lowercased rows: both heads
    print("fold", k, "trained on", len(fold), "raw rows x", repeat, round(time.time() - t0), "s", flush=True)
numpy.save(out_dir / "rouge.npy", scores)
control = numpy.load(Path("training/labels_soft/rouge.npy"))
dummy = [[] for _ in dev.docs]  # selections differ per head: no late share here
res = {"repeat": repeat, "vs_lead3": compare(dev, scores, lead, dummy), "vs_control": compare(dev, scores, control, dummy)}
(out_dir / "result.json").write_text(json.dumps(res, indent=1))
for group in res["vs_lead3"]:
    print(group, *(f"{key} {res[key][group]['rouge1']} {res[key][group]['rouge1_diff']}" for key in ("vs_lead3", "vs_control")), flush=True)
print("minutes", round((time.time() - t0) / 60, 1))

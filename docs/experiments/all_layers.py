"""Issue #12, session 9 (row 24): all six encoder layers trained, against the top two.

The issue's "deeper adaptation" lever. Rows 19-21 trained layers 5-6 and the
head on cached layer inputs (12,000 article passes, level with 0.3); here the
cache holds what layer 1 receives (the embedding output: `cache-vectors
--layer-inputs 6`), so the same `TopLayerScorer` runs and trains all six
layers and the head over whole documents, with the same recipe as
`configs/head/cnndm_top.cfg` (soft labels, BCE, batch 8 articles, head lr
1e-4, attention dropout 0), starting from the shipped 0.3.1 (its head with
lexical features). `train-head` itself refuses this base (E036: its compact
save stores only the top 2 layers); this script keeps the trained weights as
a state dict instead.

    python -m spacy_bertsum cache-vectors en_bertsum_news corpus/dev_select.spacy \
        training/lcache6/dev --layer-inputs 6 --shard-size 500
    python -m spacy_bertsum cache-vectors en_bertsum_news corpus/train8k.spacy \
        training/lcache6/train --layer-inputs 6 --shard-size 500 --limit 8000
    LAYER_LR=5e-5 MINUTES=95 EVAL=300 python docs/experiments/all_layers.py training/all6

Environment: LAYER_LR (5e-5), MINUTES (time budget; the lr decays to 0 there),
EVAL (evaluation every N steps, 250), INIT (a best.pt to continue from, for a
second stage; the paired difference stays against 0.3.1), THREADS (2), SMOKE
(N: a quick check on N train and dev docs).
Prints every evaluation, then per text form R1 against Lead-3 and against 0.3
(paired bootstrap); writes OUT/log.jsonl, OUT/result.json, OUT/best.pt.
"""
import copy, json, os, pickle, sys, time
from pathlib import Path

import numpy, torch
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli._scorers import build_scorer
from spacy_bertsum.cli.cache_vectors import load_cache
from spacy_bertsum.cli.train_head import DevSet, compare, predict, train_scorer
from spacy_bertsum.loading import load_model
from spacy_bertsum.scorer import ROUGE_TYPES

out_dir = Path(sys.argv[1])
out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(int(os.environ.get("THREADS", 2)))
t0 = time.time()
base = load_model("en_bertsum_news")
base_head = get_head_module(base.get_pipe("bertsum").model)
dev = DevSet(Path("training/lcache6/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
             lexical_features=True, block_size=128, vocab=base.vocab)
sel0 = dev.select(predict(base_head, dev.vecs))
lead, r0 = dev.rouge(dev.lead()), dev.rouge(sel0)
cache = load_cache(Path("training/lcache6/train"), layer_inputs=True)
lex = pickle.loads(Path("training/lcache/train_lex.pkl").read_bytes())  # features of train8k's docs, in order
assert cache.index == list(range(len(cache))), "the train cache should hold the first docs of train8k"
cache = cache.with_features(lex[: len(cache)])
labels = [numpy.asarray(x, dtype="float32") for x in cache.soft]
dev_inputs = load_cache(Path("training/lcache6/dev"), layer_inputs=True).with_features(dev.features).layers
smoke = int(os.environ.get("SMOKE", 0))  # a quick check of the script: this many train and dev docs
if smoke:
    dev.docs, dev.vecs, dev_inputs, lead, r0, sel0 = dev.docs[:smoke], dev.vecs[:smoke], dev_inputs[:smoke], lead[:smoke], r0[:smoke], sel0[:smoke]
    cache.layers, labels = cache.layers[:smoke], labels[:smoke]
scorer = build_scorer(base, copy.deepcopy(base_head), 6, attention_dropout=0.0)  # copies of all six layers
if os.environ.get("INIT"):  # continue a stopped run from its best.pt (a second stage)
    scorer.load_state_dict(torch.load(os.environ["INIT"]))
print("data", len(cache), "docs; start", round(time.time() - t0), "s", flush=True)


def save_best(scorer, entry):
    torch.save(scorer.state_dict(), out_dir / "best.pt")
    (out_dir / "best.json").write_text(json.dumps(entry, indent=1))


(out_dir / "log.jsonl").unlink(missing_ok=True)
scorer, log = train_scorer(
    scorer, cache.layers, labels, dev, dev_inputs, learn_rate=1e-4,
    layer_learn_rate=float(os.environ.get("LAYER_LR", 5e-5)), warmup_steps=100, max_steps=100000,
    batch_size=8, eval_frequency=int(os.environ.get("EVAL", 250)), max_sents=128, weight_decay=0.01,
    loss="bce", seed=0, max_minutes=float(os.environ.get("MINUTES", 80)), log_path=out_dir / "log.jsonl",
    on_best=save_best)
sel = dev.select(predict(scorer.head, dev.vecs))  # dev.vecs: the best scorer's vectors
r = dev.rouge(sel)
res = {"layer_lr": os.environ.get("LAYER_LR", "5e-5"), "n_train": len(cache), "steps": log[-1]["step"] if log else 0,
       "new": compare(dev, r, lead, sel), "base": compare(dev, r0, lead, sel0)}
vs_base = compare(dev, r, r0, sel)  # the same paired bootstrap, against 0.3.1 instead of Lead-3
for g in res["new"]:
    res["new"][g]["vs_base"] = {n: vs_base[g][f"{n}_diff"] for n in ROUGE_TYPES}
numpy.save(out_dir / "rouge.npy", r)
(out_dir / "result.json").write_text(json.dumps(res, indent=1))
for g in res["new"]:
    x = res["new"][g]
    print(g, x["rouge1"], x["rouge1_diff"], "vs 0.3.1", x["vs_base"]["rouge1"], "late", x["late_share"], flush=True)
print("minutes", round((time.time() - t0) / 60, 1))

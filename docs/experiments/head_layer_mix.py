"""Issue #12, session 7: a head on two layers' sentence vectors: the
encoder's output (layer 6) and the output of layer 4 (the cached input of
layer 5), each mean-pooled per sentence, concatenated (768 columns) with the
5 lexical features; a linear head from scratch, trained as
`configs/head/cnndm.cfg` trains one (2,000 steps, best of 8 evaluations).

    python docs/experiments/head_layer_mix.py training/experiments/l4

Needs training/lcache (layer inputs of the 8,000 training docs and of the
selection set), corpus/dev_select.spacy and the lexical features written by
head_context.py (training/experiments/train_lex.pkl).
"""
import json, sys, time, pickle, os
import numpy, torch
from pathlib import Path
from spacy_bertsum.loading import load_model
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.inter_sentence import InterSentenceEncoder
from spacy_bertsum.cli.train_head import DevSet, compare, predict, train_head
from spacy_bertsum.cli.cache_vectors import load_cache, pool_sentences
from spacy_bertsum.significance import paired_bootstrap
from spacy_bertsum.scorer import ROUGE_TYPES

out_dir = Path(sys.argv[1]); out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(1)
W = 384
def l4(cache_dir, pkl):
    """The layer-4 sentence vectors of a cache: its cached layer inputs,
    pooled per sentence as the pipeline pools the encoder output."""
    pkl = Path(pkl)
    if pkl.exists():
        return pickle.loads(pkl.read_bytes())
    out = [
        pool_sentences(x.wp.astype("float32"), x.pool_wp, x.pool_sent, x.pool_w, len(x.vecs)).astype("float16")
        for x in load_cache(Path(cache_dir), layer_inputs=True).layers
    ]
    pkl.parent.mkdir(parents=True, exist_ok=True)
    pkl.write_bytes(pickle.dumps(out))
    return out
t0 = time.time()
base = load_model("en_bertsum_news")
base_head = get_head_module(base.get_pipe("bertsum").model)
dev = DevSet(Path("training/lcache/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
             lexical_features=True, block_size=128, vocab=base.vocab)
dev_l4 = l4("training/lcache/dev", "training/experiments/dev_l4.pkl")
tr_l4 = l4("training/lcache/train", "training/experiments/train_l4.pkl")
cache = load_cache(Path("training/lcache/train"))
lex = pickle.loads(Path("training/experiments/train_lex.pkl").read_bytes())
print("data", time.time() - t0, flush=True)
# layout: [L6 vec (384) | L4 vec (384) | 5 lexical]: the head's width is 768
train = [numpy.hstack([v.astype("float32"), a.astype("float32"), f]) for v, a, f in zip(cache.vecs, tr_l4, lex)]
dev.vecs = [numpy.hstack([x[:, :W], a.astype("float32"), x[:, W:]]) for x, a in zip(dev.vecs, dev_l4)]
labels = [numpy.asarray(x, dtype="float32") for x in cache.soft]
head = InterSentenceEncoder(2 * W, n_layers=0, heads=8, ff_size=1024, dropout=0.1, block_size=128, max_position=40, n_features=5)
lead = dev.rouge(dev.lead())
base_sel = dev.select(predict(base_head, [numpy.hstack([x[:, :W], x[:, 2 * W:]]) for x in dev.vecs]))
r0 = dev.rouge(base_sel)
head, log = train_head(head, train, labels, dev, learn_rate=float(os.environ.get("LR", 1e-3)), warmup_steps=100,
                       max_steps=int(os.environ.get("STEPS", 2000)), batch_size=32, eval_frequency=250, max_sents=128,
                       weight_decay=0.01, average_last=3, loss="bce", seed=0, log_path=out_dir / "log.jsonl")
sel = dev.select(predict(head, dev.vecs)); r = dev.rouge(sel)
numpy.save(out_dir / "rouge.npy", r)
res = {"new": compare(dev, r, lead, sel), "base03": compare(dev, r0, lead, base_sel)}
for g in res["new"]:
    idx = [i for i, d in enumerate(dev.docs) if g == "all" or d.group == g]
    res["new"][g]["vs_03"] = {n: [round(x, 3) for x in paired_bootstrap(r[idx, k], r0[idx, k])] for k, n in enumerate(ROUGE_TYPES)}
(out_dir / "result.json").write_text(json.dumps(res, indent=1))
print(json.dumps({g: (res["new"][g]["rouge1"], res["new"][g]["rouge1_diff"], res["new"][g]["vs_03"]["rouge1"]) for g in res["new"]}), time.time() - t0)

"""Issue #12, session 7: head levers on the cached sentence vectors of the
shipped encoder, each started from the shipped 0.3 head and trained 2,000
steps as `configs/head/cnndm.cfg` trains it (lr 1e-3, batch 32, soft labels,
best of 8 evaluations on the selection set):

- ``cont``: the 0.3 head and its 5 lexical features, trained on (the control:
  what more training and picking the best evaluation alone give);
- ``ctx``: plus 8 context features from the sentence vectors themselves
  (cosine to the document's mean vector and to the lead's, standardized and
  ranked; the highest cosine to another sentence; relative position; log of
  the document's length), their MLP weights starting at zero.

    python docs/experiments/head_context.py ctx training/experiments/ctx

Needs the layer-input cache of row 14 (training/lcache, 8,000 training docs)
and corpus/{train8k,dev_select}.spacy. Prints and writes result.json: ROUGE
on the selection set next to Lead-3 and the paired difference to 0.3.
"""
import json, sys, time, pickle, os
import numpy, torch
from pathlib import Path
from spacy_bertsum.loading import load_model
from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.inter_sentence import InterSentenceEncoder
from spacy_bertsum.cli.train_head import DevSet, compare, predict, train_head
from spacy_bertsum.cli.cache_vectors import load_cache, read_docs, source_features
from spacy_bertsum.significance import paired_bootstrap
from spacy_bertsum.scorer import ROUGE_TYPES

variant, out_dir = sys.argv[1], Path(sys.argv[2])
steps = int(os.environ.get("STEPS", 2000))
seed = int(os.environ.get("SEED", 0))
out_dir.mkdir(parents=True, exist_ok=True)
torch.set_num_threads(int(os.environ.get("THREADS", 1)))
W = 384

def ctx_features(v):
    v = v[:, :W].astype("float32")
    n = len(v)
    u = v / (numpy.linalg.norm(v, axis=1, keepdims=True) + 1e-6)
    mean = u.mean(0); mean /= numpy.linalg.norm(mean) + 1e-6
    lead = u[:3].mean(0); lead /= numpy.linalg.norm(lead) + 1e-6
    c_mean = u @ mean
    c_lead = u @ lead
    S = u @ u.T
    numpy.fill_diagonal(S, -1)
    c_max = S.max(1) if n > 1 else numpy.zeros(n)
    std = lambda x: (x - x.mean()) / (x.std() + 1e-6)
    rank = numpy.argsort(numpy.argsort(-c_mean, kind="stable")) / max(n - 1, 1)
    i = numpy.arange(n)
    f = numpy.stack([c_mean, std(c_mean), rank, c_lead, std(c_lead), c_max, i / max(n - 1, 1), numpy.full(n, numpy.log1p(n) / 4)], 1)
    return f.astype("float32")

t0 = time.time()
base = load_model("en_bertsum_news")
base_head = get_head_module(base.get_pipe("bertsum").model)
dev = DevSet(Path("training/lcache/dev"), Path("corpus/dev_select.spacy"), group_by="text_form",
             lexical_features=True, block_size=128, vocab=base.vocab)
feat_pkl = Path("training/experiments/train_lex.pkl")
feat_pkl.parent.mkdir(parents=True, exist_ok=True)
cache = load_cache(Path("training/lcache/train"))
if feat_pkl.exists():
    lex = pickle.loads(feat_pkl.read_bytes())
else:
    docs = read_docs(Path("corpus/train8k.spacy"), base.vocab)
    lex = source_features(docs, cache.index, 128)
    feat_pkl.write_bytes(pickle.dumps(lex))
print("data", time.time() - t0, flush=True)
train = [numpy.hstack([v.astype("float32"), f]) for v, f in zip(cache.vecs, lex)]
labels = [numpy.asarray(x, dtype="float32") for x in cache.soft]
if variant in ("ctx", "ctx_h64"):
    train = [numpy.hstack([x, ctx_features(x)]) for x in train]
    dev.vecs = [numpy.hstack([x, ctx_features(x)]) for x in dev.vecs]
n_feat = train[0].shape[1] - W
hidden = 64 if variant.endswith("h64") else 32
head = InterSentenceEncoder(W, n_layers=0, heads=8, ff_size=1024, dropout=0.1, block_size=128, max_position=40,
                            n_features=n_feat, feature_hidden=hidden)
# start from the shipped 0.3 head; new feature columns / hidden units start at zero
sd = base_head.state_dict()
own = head.state_dict()
for k, v in sd.items():
    t = own[k]
    if t.shape == v.shape:
        own[k] = v.clone()
    else:
        t = torch.zeros_like(t)
        t[tuple(slice(0, s) for s in v.shape)] = v
        own[k] = t
head.load_state_dict(own)
lead = dev.rouge(dev.lead())
sel0 = dev.select(predict(base_head, dev.vecs if n_feat == 5 else [x[:, :W + 5] for x in dev.vecs]))
r0 = dev.rouge(sel0)
head, log = train_head(head, train, labels, dev, learn_rate=float(os.environ.get("LR", 1e-3)), warmup_steps=100,
                       max_steps=steps, batch_size=32, eval_frequency=250, max_sents=128, weight_decay=0.01,
                       average_last=3, loss="bce", seed=seed, log_path=out_dir / "log.jsonl")
sel = dev.select(predict(head, dev.vecs))
r = dev.rouge(sel)
numpy.save(out_dir / "rouge.npy", r)
numpy.save(out_dir / "rouge_base03.npy", r0)
res = {"variant": variant, "new": compare(dev, r, lead, sel), "base03": compare(dev, r0, lead, sel0)}
for g in res["new"]:
    idx = [i for i, d in enumerate(dev.docs) if g == "all" or d.group == g]
    res["new"][g]["vs_03"] = {n: [round(x, 3) for x in paired_bootstrap(r[idx, k], r0[idx, k])] for k, n in enumerate(ROUGE_TYPES)}
torch.save(head.state_dict(), out_dir / "head.pt")
(out_dir / "result.json").write_text(json.dumps(res, indent=1))
print(json.dumps({g: (res["new"][g]["rouge1"], res["new"][g]["rouge1_diff"], res["new"][g]["vs_03"]["rouge1"]) for g in res["new"]}), time.time() - t0)

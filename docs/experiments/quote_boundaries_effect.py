"""Session 8: the shipped pipeline with and without `quote_boundaries` on a
.spacy file (`convert --keep-fields text_form`): per-doc ROUGE of the model
and of Lead-3 under each segmentation, the margins and the paired difference.

    python docs/experiments/quote_boundaries_effect.py corpus/dev_select.spacy /tmp/quotes_sel
"""
import sys, numpy, spacy, torch
from spacy.tokens import DocBin
from spacy_bertsum.loading import load_model
from spacy_bertsum.cli.evaluate import lead_spans, reference_summary
from spacy_bertsum.scorer import rouge_f, ROUGE_TYPES
from spacy_bertsum.util import FIELDS_KEY, SPANS_KEY
path, out = sys.argv[1], sys.argv[2]
res = {}
for variant in ("plain", "quotes"):
    nlp = load_model("en_bertsum_news")
    if variant == "plain" and "quote_boundaries" in nlp.pipe_names:
        nlp.remove_pipe("quote_boundaries")
    elif variant == "quotes" and "quote_boundaries" not in nlp.pipe_names:
        nlp.add_pipe("quote_boundaries", after="sentencizer")
    gold = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    refs = [reference_summary(d, SPANS_KEY) for d in gold]
    M, L, G = [], [], []
    for g, ref, doc in zip(gold, refs, nlp.pipe((d.text for d in gold), batch_size=32)):
        m = [s.text.strip() for s in doc.spans[SPANS_KEY]]
        l = [s.text.strip() for s in lead_spans(doc)]
        M.append([rouge_f(m, ref)[n] for n in ROUGE_TYPES]); L.append([rouge_f(l, ref)[n] for n in ROUGE_TYPES])
        G.append(str((g.user_data.get(FIELDS_KEY) or {}).get("text_form"))[:3])
    res[variant] = (numpy.array(M) * 100, numpy.array(L) * 100)
    print(variant, "done", flush=True)
G = numpy.array(G)
numpy.savez(out, **{f"{v}_{k}": a for v, (m, l) in res.items() for k, a in (("model", m), ("lead", l))}, groups=G)
from spacy_bertsum.significance import paired_bootstrap
for g in ("all", "LOW", "RAW"):
    idx = numpy.arange(len(G)) if g == "all" else numpy.where(G == g)[0]
    line = [g, str(len(idx))]
    for v, (m, l) in res.items():
        d = paired_bootstrap(m[idx, 0], l[idx, 0])
        line.append(f"{v}: model {m[idx,0].mean():.2f} lead {l[idx,0].mean():.2f} diff {d[0]:+.2f} [{d[1]:+.2f},{d[2]:+.2f}]")
    d = paired_bootstrap(res["quotes"][0][idx, 0], res["plain"][0][idx, 0])
    line.append(f"quotes-plain model R1 {d[0]:+.2f} [{d[1]:+.2f},{d[2]:+.2f}] R2 {res['quotes'][0][idx,1].mean()-res['plain'][0][idx,1].mean():+.2f} RL {res['quotes'][0][idx,2].mean()-res['plain'][0][idx,2].mean():+.2f}")
    print(" | ".join(line))

"""Time one training step of the top 2 encoder layers + head (train-head's
TopLayerScorer) with the encoder's attention dropout and with it off.

    python docs/experiments/top_step_speed.py training/lcache/train [reps]

Takes the first 8 docs of the cache's fourth shard (a batch as train-head
builds it: batch_size 8), runs forward + backward, and prints the median
seconds per step of each setting, alternating them so that other load on the
machine hits both alike.
"""
import copy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy
import torch

from spacy_bertsum.architectures import get_head_module
from spacy_bertsum.cli._scorers import _pad, build_scorer
from spacy_bertsum.cli.cache_vectors import load_cache
from spacy_bertsum.loading import load_model

cache_dir, reps = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
tmp = Path(tempfile.mkdtemp())
shard = sorted(cache_dir.glob("shard-*[0-9].npz"))[3]
shutil.copy(shard, tmp / "shard-00000.npz")
shutil.copy(cache_dir / "cache.json", tmp / "cache.json")
docs = load_cache(tmp, layer_inputs=True).layers[:8]
for x in docs:
    x.features = numpy.zeros((len(x.vecs), 5), dtype="float32")
nlp = load_model("en_bertsum_news")
head = get_head_module(nlp.get_pipe("bertsum").model)
scorers = {
    "attention dropout 0.1 (MiniLM's)": build_scorer(nlp, copy.deepcopy(head), 2),
    "attention dropout 0.0": build_scorer(nlp, copy.deepcopy(head), 2, attention_dropout=0.0),
}
print(f"torch threads {torch.get_num_threads()}; {sum(len(x.wp_lengths) for x in docs)} windows, "
      f"{sum(int(x.wp_lengths.sum()) for x in docs)} wordpieces in the batch")
times = {name: [] for name in scorers}
for rep in range(reps + 1):
    for name, scorer in scorers.items():
        scorer.train()
        start = time.perf_counter()
        X, M = _pad(scorer.doc_vectors(docs), 128)
        scorer.head(X, M).pow(2).mean().backward()
        scorer.zero_grad()
        if rep:  # the first round warms up
            times[name].append(time.perf_counter() - start)
for name, t in times.items():
    print(f"{name}: {statistics.median(t):.2f} s/step (median of {len(t)}; min {min(t):.2f}, max {max(t):.2f})")

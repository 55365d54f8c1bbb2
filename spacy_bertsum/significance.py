"""Paired bootstrap over documents: the uncertainty of a difference in ROUGE.

Two systems scored on the same documents differ by ``mean(a - b)``; resampling
the documents (with replacement) and taking the 2.5th and 97.5th percentiles of
the resampled mean differences gives its 95% confidence interval (Koehn 2004;
Berg-Kirkpatrick et al. 2012). Pairing removes the variance that comes from
how hard each document is, which is most of it.
"""
from typing import Sequence, Tuple

import numpy


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, n_samples: int = 1000, seed: int = 0, alpha: float = 0.05
) -> Tuple[float, float, float]:
    """``(mean(a - b), low, high)``: the paired difference of two per-document
    score lists and its ``1 - alpha`` bootstrap confidence interval."""
    diff = numpy.asarray(a, dtype="float64") - numpy.asarray(b, dtype="float64")
    if diff.ndim != 1:
        raise ValueError(f"paired_bootstrap takes two 1-d score lists, got shape {diff.shape}")
    if len(diff) == 0:
        return 0.0, 0.0, 0.0
    rng = numpy.random.default_rng(seed)
    means = numpy.empty(n_samples)
    for start in range(0, n_samples, 100):
        stop = min(start + 100, n_samples)
        idx = rng.integers(0, len(diff), size=(stop - start, len(diff)))
        means[start:stop] = diff[idx].mean(axis=1)
    low, high = numpy.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(diff.mean()), float(low), float(high)

"""Bootstrap confidence intervals and paired bootstrap significance over examples.

Both resample examples (documents) with replacement. Confidence intervals are percentile
intervals of the resampled mean. The paired test resamples the per-example differences between a
system and a baseline on the same documents (Koehn 2004; Berg-Kirkpatrick et al. 2012) and reports
a two-sided p-value: twice the share of resamples whose mean difference falls on the other side of
zero from the observed one (capped at 1).
"""

from typing import Dict, Mapping

import numpy as np

DEFAULT_RESAMPLES = 1000
DEFAULT_SEED = 12345
_BLOCK = 100  # resamples drawn at a time, to bound memory on 11k-example test sets


def _resampled_means(values: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    """Means of ``n_resamples`` bootstrap resamples of each column of ``values`` [n, k] -> [B, k]."""
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    out = []
    for start in range(0, n_resamples, _BLOCK):
        b = min(_BLOCK, n_resamples - start)
        idx = rng.integers(0, n, size=(b, n))
        out.append(values[idx].mean(axis=1))
    return np.concatenate(out, axis=0)


def _columns(scores: Mapping[str, np.ndarray]):
    keys = list(scores)
    lengths = {len(scores[k]) for k in keys}
    if len(lengths) != 1:
        raise ValueError(f"metrics have different numbers of examples: { {k: len(scores[k]) for k in keys} }")
    n = lengths.pop()
    if n == 0:
        raise ValueError("no examples to bootstrap")
    return keys, np.stack([np.asarray(scores[k], dtype=np.float64) for k in keys], axis=1)


def bootstrap_ci(
    scores: Mapping[str, np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Dict[str, Dict[str, float]]:
    """``{metric: {"mean", "low", "high"}}`` for per-example ``scores`` (same examples for all metrics)."""
    keys, values = _columns(scores)
    means = _resampled_means(values, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    point = values.mean(axis=0)
    return {k: {"mean": float(point[j]), "low": float(low[j]), "high": float(high[j])} for j, k in enumerate(keys)}


def paired_bootstrap(
    system: Mapping[str, np.ndarray],
    baseline: Mapping[str, np.ndarray],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> Dict[str, Dict[str, float]]:
    """For each metric both have: ``{"delta", "low", "high", "p_value"}`` of system minus baseline.

    The two must hold per-example scores for the same documents in the same order.
    """
    shared = [k for k in system if k in baseline]
    for k in shared:
        if len(system[k]) != len(baseline[k]):
            raise ValueError(f"{k}: {len(system[k])} system scores but {len(baseline[k])} baseline scores")
    keys, diffs = _columns({k: np.asarray(system[k], dtype=np.float64) - np.asarray(baseline[k], dtype=np.float64)
                            for k in shared})
    means = _resampled_means(diffs, n_resamples, seed)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha], axis=0)
    observed = diffs.mean(axis=0)
    out = {}
    for j, k in enumerate(keys):
        if observed[j] > 0:
            tail = np.mean(means[:, j] <= 0)
        elif observed[j] < 0:
            tail = np.mean(means[:, j] >= 0)
        else:
            tail = 0.5
        out[k] = {"delta": float(observed[j]), "low": float(low[j]), "high": float(high[j]),
                  "p_value": float(min(1.0, 2.0 * tail))}
    return out


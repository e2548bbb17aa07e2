"""Re-seeding collapsed mixture components: split the heaviest good one in two.

Used by the location-scale components (Gaussian, Student-t) of the mixture machinery
when a component loses every sample or its covariance turns singular.
"""

from __future__ import annotations

import warnings

import numpy as np

from emkit.exceptions import DegenerateComponentWarning

__all__ = ["split_components"]


def split_components(weights, means, covs, bad, structure, reg_covar, what="covariance"):
    """Replace each ``bad`` component by half of the heaviest good one.

    The heaviest good component ``j`` is split along its main axis: the two halves sit
    half a standard deviation either side of its mean, with its covariance and half
    its weight each. Returns new (weights, means, covariances, {bad k: source j}) and
    warns with :class:`DegenerateComponentWarning` for each re-seeded component.
    """
    K, D = means.shape
    good = ~np.asarray(bad)
    if not good.any():
        raise ValueError(
            f"every mixture component collapsed (empty or singular {what}); "
            "decrease n_components, increase reg_covar, or scale the data"
        )
    weights, means = np.array(weights, dtype=np.float64), np.array(means, dtype=np.float64)
    covs = np.array(covs, copy=True)
    full = structure.to_full(covs, K, D)
    sources = {}
    for k in np.flatnonzero(~good):
        j = int(np.argmax(np.where(good, weights, -np.inf)))
        vals, vecs = np.linalg.eigh(full[j])
        step = 0.5 * np.sqrt(max(vals[-1], reg_covar)) * vecs[:, -1]
        means[k], means[j] = means[j] + step, means[j] - step
        if not structure.shared:
            covs[k] = covs[j]
            full[k] = full[j]
        weights[j] = weights[k] = 0.5 * (weights[j] + weights[k])
        good[k] = True
        sources[int(k)] = j
        warnings.warn(
            f"mixture component {k} collapsed (empty or singular {what}) and was "
            f"re-seeded by splitting component {j}; if this repeats, decrease "
            "n_components or increase reg_covar",
            DegenerateComponentWarning,
            stacklevel=4,
        )
    return weights / weights.sum(), means, covs, sources

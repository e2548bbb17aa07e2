"""Drop-in fronts with the names, parameters and attributes of peer libraries.

Each submodule imports its peer library and is imported only on request, so
``import emkit`` never needs them:

- :mod:`emkit.compat.sklearn`: ``GaussianMixture``, as ``sklearn.mixture.GaussianMixture``.
- :mod:`emkit.compat.hmmlearn`: ``GaussianHMM``, ``CategoricalHMM``, ``PoissonHMM`` and
  ``GMMHMM``, as ``hmmlearn.hmm``'s.
"""

__all__: list[str] = []

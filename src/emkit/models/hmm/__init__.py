"""Hidden Markov models.

The layers, lowest first: the compiled inference kernels (``kernels``: forward-backward
and Viterbi over stacked sequences), the parts an HMM is composed of (``rows``: the
initial-state and transition probabilities; ``emissions``: the per-state observation
densities), the pure EM model (``model``: :class:`HMMModel`, :class:`HMMParams`) and
the scikit-learn-style estimator (``estimator``: :class:`HMM`, reading its input
through ``input``).
"""

from emkit.models.hmm.estimator import HMM
from emkit.models.hmm.model import HMMModel, HMMParams

__all__ = ["HMM", "HMMModel", "HMMParams"]

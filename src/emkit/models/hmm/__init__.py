"""Hidden Markov models: compiled inference kernels (``kernels``), the parts an HMM is
composed of (``parts``), the pure EM model and the ``HMM`` estimator."""

from emkit.models.hmm.estimator import HMM, HMMModel, HMMParams

__all__ = ["HMM", "HMMModel", "HMMParams"]

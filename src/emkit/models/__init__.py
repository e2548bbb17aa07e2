"""Model families, one folder each: the pure EM models (``init_params``/``estep``/
``mstep``), their compiled kernels, and their scikit-learn-style estimators.

``estimator`` holds the estimator base and the engine options every estimator shares;
``init`` the starting-point methods (k-means, k-means++, starting responsibilities).
"""

from emkit import _lazy

# Nothing is imported here: ``import emkit`` imports no model. A subpackage is imported
# when first looked up (``emkit.models.hmm``), as if imported here.
__getattr__, __dir__ = _lazy.attach(__name__, {})

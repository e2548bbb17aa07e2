"""Topic models: latent Dirichlet allocation by variational EM and online variational Bayes.

``kernels`` holds the compiled E-step, ``model`` the pure EM model
(:class:`LDAModel`), ``estimator`` the scikit-learn-style :class:`LDA`.
"""

from emkit.models.topic.estimator import LDA
from emkit.models.topic.model import LDAModel

__all__ = ["LDA", "LDAModel"]

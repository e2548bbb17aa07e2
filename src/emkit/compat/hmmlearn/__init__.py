"""Drop-ins for ``hmmlearn.hmm``: ``GaussianHMM``, ``CategoricalHMM``, ``PoissonHMM`` and
``GMMHMM`` with hmmlearn's parameters, defaults, attributes and methods, on emkit's HMM
machinery and engine.

Change the import line and keep the code::

    from emkit.compat.hmmlearn import GaussianHMM   # was: from hmmlearn.hmm import GaussianHMM

What hmmlearn code relies on works the same: the constructor's letters (``params``:
what is updated, the other parameters held fixed; ``init_params``: what is started
afresh, parameters set by hand and not listed keep their values), hmmlearn's start
(its random draws and k-means from the same ``random_state``), ``tol`` on the total
log-likelihood through ``monitor_`` (``history``, ``converged``), the priors and their
MAP M-step, ``fit(X, lengths)`` returning the model, ``score``, ``score_samples``,
``predict``, ``predict_proba``, ``decode(algorithm="viterbi" | "map")``, ``sample``
(hmmlearn's random stream), ``get_stationary_distribution``, ``aic``, ``bic``, and
parameters set by hand without fitting. From the same start both libraries take the
same EM steps and stop at the same iteration.

Where this differs from hmmlearn (each on purpose):

- Dirichlet pseudo-counts below 1 are refused (ValueError): below 1 the MAP problem
  has no maximum (hmmlearn clips at zero).
- With ``params`` lacking "m" but holding "c", hmmlearn 0.3 updates the covariances
  from statistics it did not collect; here they are the scatter about the held means.
- ``PoissonHMM`` priors: see its docstring.
- Every EM step is checked for monotonicity (:class:`emkit.MonotonicityWarning`).

Importing this module imports scikit-learn (hmmlearn's own dependency, used for its
k-means start and input checks), not hmmlearn.
"""

from emkit.compat.hmmlearn._base import ConvergenceMonitor
from emkit.compat.hmmlearn._discrete import CategoricalHMM, PoissonHMM
from emkit.compat.hmmlearn._gaussian import GMMHMM, GaussianHMM

__all__ = ["GMMHMM", "CategoricalHMM", "ConvergenceMonitor", "GaussianHMM", "PoissonHMM"]

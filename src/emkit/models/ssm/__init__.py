"""Linear-Gaussian state-space models (Kalman filter EM).

The layers, lowest first: the compiled inference kernels (``kernels``: the Kalman
filter and the Rauch-Tung-Striebel smoother over stacked sequences, with missing
entries and an exact diffuse start), the pure EM model (``model``:
:class:`LinearGaussianSSMModel`, :class:`SSMParams`), the checks and coordinate shifts
of user-given parameters (``parameters``) and the scikit-learn-style estimator
(``estimator``: :class:`LinearGaussianSSM`).
"""

from emkit.models.ssm.estimator import LinearGaussianSSM
from emkit.models.ssm.model import LinearGaussianSSMModel, SSMParams

__all__ = ["LinearGaussianSSM", "LinearGaussianSSMModel", "SSMParams"]

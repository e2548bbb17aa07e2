"""emkit estimators pass scikit-learn's estimator checks."""

import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks

from emkit import GaussianMixture


@parametrize_with_checks(
    [GaussianMixture(), GaussianMixture(n_components=2, covariance_type="diag")]
)
def test_sklearn_compatible(estimator, check):
    check(estimator)

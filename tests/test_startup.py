"""``import emkit`` stays light: scikit-learn (more than a second to import) is loaded
only when a scikit-learn based class is first used."""

import subprocess
import sys


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_import_emkit_does_not_import_scikit_learn():
    code = (
        "import sys, emkit; import numpy as np; "
        "emkit.GaussianMixture(2, random_state=0).fit(np.arange(20.0).reshape(10, 2)); "
        "print('sklearn' in sys.modules)"
    )
    assert _run(code) == "False"


def test_the_lazy_exceptions_are_scikit_learns():
    code = (
        "import emkit, sklearn.exceptions as e; "
        "print(issubclass(emkit.ConvergenceWarning, e.ConvergenceWarning), "
        "issubclass(emkit.NotFittedError, e.NotFittedError), "
        "emkit.ConvergenceWarning is emkit.exceptions.ConvergenceWarning)"
    )
    assert _run(code) == "True True True"

"""``import emkit`` stays light: the estimators (numba, scipy) are imported when first
used, scikit-learn (more than a second to import) only when a scikit-learn based class
is first used; the command line's parser and ``emkit.load``'s reading part import
neither numba nor scipy. Each check runs in a fresh interpreter."""

import ast
import hashlib
import importlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit._registry import EMKIT_ESTIMATORS

TESTS = Path(__file__).parent
HEAVY = ("numba", "scipy", "sklearn")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _imported(names) -> str:
    """Code printing which of ``names`` are in ``sys.modules``, as a JSON list."""
    return f"import json, sys; print(json.dumps([m for m in {list(names)!r} if m in sys.modules]))"


def test_import_emkit_imports_no_estimator_numba_scipy_or_scikit_learn():
    code = (
        "import emkit, sys; print(sorted(m for m in sys.modules if m.startswith('emkit.models')))"
    )
    assert _run(code) == "[]"
    assert json.loads(_run("import emkit; " + _imported(HEAVY))) == []


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


def test_every_public_name_is_there_on_first_use():
    # each name, looked up in a fresh interpreter, is the object its module defines
    code = (
        "import emkit, importlib, json; "
        "print(json.dumps({n: getattr(emkit, n).__module__ for n in emkit.__all__ "
        "if hasattr(getattr(emkit, n), '__module__')}))"
    )
    modules = json.loads(_run(code))
    assert modules["GaussianMixture"] == "emkit.models.mixture.gaussian"
    assert modules["HMM"] == "emkit.models.hmm.estimator"
    assert modules["select"] == "emkit.selection"
    assert set(emkit.__all__) <= set(dir(emkit))
    code = "from emkit import HMM, LDA, select; import emkit; print(HMM is emkit.HMM, LDA.__name__)"
    assert _run(code) == "True LDA"


def test_the_subpackages_are_there_as_attributes_as_before():
    code = (
        "import emkit; print(emkit.models.mixture.gaussian.GaussianMixture is "
        "emkit.GaussianMixture, emkit.distributions.covariance.get_structure('full').name, "
        "emkit.selection.select is emkit.select)"
    )
    assert _run(code) == "True full True"
    # any public submodule, as in a package that imports its submodules lazily; no
    # private one
    code = "import emkit; print(emkit.models.hc.__name__, hasattr(emkit, '_lazy_nothing'))"
    assert _run(code) == "emkit.models.hc False"
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        emkit.no_such_name  # noqa: B018


def test_importing_gaussian_mixture_leaves_the_other_models_out():
    code = "import emkit; emkit.GaussianMixture; " + _imported(
        ["emkit.models.hmm", "emkit.models.mixture.student_t", "scipy.special", "sklearn"]
    )
    assert json.loads(_run(code)) == []


def test_the_command_line_parser_imports_neither_numba_nor_scipy():
    code = """
import contextlib, io
from emkit.cli.main import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    status = main(["--help"])
assert status == 0 and "usage" in out.getvalue()
"""
    assert json.loads(_run(code + _imported(HEAVY))) == []


def test_python_m_emkit_cli_still_runs():
    out = subprocess.run(
        [sys.executable, "-m", "emkit.cli", "fit", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "--covariance" in out.stdout and "VVV" in out.stdout


def test_loading_a_gaussian_mixture_imports_neither_numba_nor_scipy():
    # what `emkit info model.npz` does; numba comes with the first E-step
    path = TESTS / "data" / "legacy_0_1_0" / "gmm_full.npz"
    code = f"import emkit; m = emkit.load({str(path)!r}); " + _imported(HEAVY)
    assert json.loads(_run(code)) == []


# --------------------------------------------------------------------- a fresh emkit.load

#: one saved file of each estimator type (the committed fixtures of earlier versions,
#: whose predictions test_legacy_files and test_release_fixtures check)
FILES = {
    "legacy_0_1_0": [
        "factor_analysis",
        "gmm_full",
        "hmm_gaussian",
        "imputer",
        "mixture_independent",
        "tmm_full",
    ],
    "fixtures_0_2": [
        "compat_hmmlearn",
        "compat_sklearn",
        "experts",
        "lda",
        "regressions",
        "ssm",
        "vbgmm",
    ],
}
PATHS = [TESTS / "data" / folder / f"{name}.npz" for folder in FILES for name in FILES[folder]]


def _key(path: Path) -> str:
    with zipfile.ZipFile(path) as zf:
        return json.loads(zf.read("meta.json"))["class"]


def state_digest(model) -> str:
    """The class, hyper-parameters and fitted attributes of ``model`` as one string
    (arrays by dtype, shape and a hash of their bytes)."""

    def one(value):
        if isinstance(value, dict):
            return {str(k): one(v) for k, v in value.items()}
        if hasattr(value, "dtype") and hasattr(value, "shape"):
            data = np.ascontiguousarray(value)
            return [str(data.dtype), list(data.shape), hashlib.sha256(data.tobytes()).hexdigest()]
        return repr(value)

    params, attributes = model._get_state()
    cls = type(model)
    return json.dumps(
        [f"{cls.__module__}.{cls.__qualname__}", one(params), one(attributes)], sort_keys=True
    )


def test_the_files_cover_every_estimator_type():
    keys = {_key(path) for path in PATHS}
    # every emkit estimator that is saved on its own (not the experts' and regressions'
    # shared base), and a qualified key of each drop-in module
    assert keys >= set(EMKIT_ESTIMATORS) - {"ConditionalMixtureEstimator"}
    assert "emkit.compat.sklearn.GaussianMixture" in keys
    assert any(key.startswith("emkit.compat.hmmlearn.") for key in keys)


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.stem)
def test_a_fresh_interpreter_loads_every_estimator_type(path):
    """``emkit.load`` before any estimator was used imports the class's module on demand
    and rebuilds the same estimator as a load in this process (where the fixture tests
    check its predictions against the version that wrote the file)."""
    key = _key(path)
    module = EMKIT_ESTIMATORS.get(key) or key.rpartition(".")[0]
    code = f"""
import sys, emkit
assert {module!r} not in sys.modules, "not a fresh start"
model = emkit.load({str(path)!r})
sys.path.insert(0, {str(TESTS)!r})
from test_startup import state_digest
print(state_digest(model))
"""
    expected = emkit.load(path)
    assert _run(code) == state_digest(expected)
    cls = type(expected)
    if key in EMKIT_ESTIMATORS:
        assert (cls.__module__, cls.__name__) == (module, key)
    else:  # a drop-in front: a qualified key names its class
        assert f"{cls.__module__}.{cls.__qualname__}" == key


# --------------------------------------------------------------------- the lazy tables


def _type_checking_imports(path: Path) -> dict[str, str]:
    """Name -> module of the imports under ``if TYPE_CHECKING:`` in ``path``."""
    found = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                found.update({alias.name: stmt.module for alias in stmt.names})
    return found


@pytest.mark.parametrize("package", ["emkit", "emkit.distributions", "emkit.models.mixture"])
def test_what_type_checkers_see_is_what_is_imported_on_first_use(package):
    module = importlib.import_module(package)
    assert _type_checking_imports(Path(module.__file__)) == module._LAZY
    for name in module.__all__:
        assert name in dir(module)
        value = getattr(module, name)
        if name in module._LAZY:
            assert value is getattr(sys.modules[module._LAZY[name]], name)


def test_emkit_offers_every_estimator_of_the_registry_but_the_shared_base():
    offered = {n for n in emkit.__all__ if n in EMKIT_ESTIMATORS}
    assert set(EMKIT_ESTIMATORS) - offered == {"ConditionalMixtureEstimator"}

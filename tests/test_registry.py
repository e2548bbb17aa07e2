"""The registry of estimator classes that ``emkit.load`` rebuilds, and the state hooks.

Estimators register themselves when they are defined (``EMEstimator.__init_subclass__``),
so persistence (``emkit.io``) finds classes without importing any model.
"""

from __future__ import annotations

import ast
import importlib
import json
import pkgutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import emkit
from emkit._registry import (
    EMKIT_ESTIMATORS,
    estimator_class,
    estimator_classes,
    estimator_key,
    register_estimator,
)
from emkit.io import save
from emkit.models.estimator import EMEstimator

IO_SOURCE = Path(emkit.io.__file__)


def _blobs(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(-3.0, 1.0, (40, 2)), rng.normal(3.0, 0.5, (60, 2))])


def _public_subclasses(cls: type) -> list[type]:
    """Every public subclass of ``cls``, walked as ``emkit.io`` used to find them."""
    out, todo = [], [cls]
    while todo:
        for sub in todo.pop().__subclasses__():
            if not sub.__name__.startswith("_"):
                out.append(sub)
            todo.append(sub)
    return out


# ----------------------------------------------------------------------------- contents


def test_every_estimator_of_the_package_is_registered_under_its_name():
    estimators = [
        getattr(emkit, name)
        for name in emkit.__all__
        if isinstance(getattr(emkit, name), type) and issubclass(getattr(emkit, name), EMEstimator)
    ]
    assert {cls.__name__ for cls in estimators} >= {"GaussianMixture", "HMM", "Mixture"}
    for cls in estimators:
        assert estimator_class(cls.__name__) is cls
        assert estimator_key(cls) == cls.__name__


def test_every_public_subclass_of_emkit_is_registered():
    # emkit's own classes (user classes defined by other tests may since have been
    # replaced by a redefinition; those are tested below)
    own = [cls for cls in _public_subclasses(EMEstimator) if cls.__module__.startswith("emkit.")]
    assert emkit.GaussianMixture in own
    for cls in own:
        assert estimator_class(estimator_key(cls)) is cls
        if getattr(emkit, cls.__name__, None) is cls:  # emkit's own names stay plain
            assert estimator_key(cls) == cls.__name__


def test_a_drop_in_front_with_a_taken_name_is_registered_under_its_qualified_name(tmp_path):
    from emkit.compat.sklearn import GaussianMixture as SklearnFront

    assert estimator_class("GaussianMixture") is emkit.GaussianMixture
    assert estimator_key(SklearnFront) == "emkit.compat.sklearn.GaussianMixture"
    X = np.random.default_rng(0).normal(size=(60, 2))
    front = SklearnFront(2, random_state=0).fit(X)
    front.save(tmp_path / "front.npz")
    loaded = emkit.load(tmp_path / "front.npz")
    assert type(loaded) is SklearnFront
    np.testing.assert_allclose(loaded.score_samples(X), front.score_samples(X))


def test_the_base_and_private_classes_are_not_registered():
    class _Helper(emkit.GaussianMixture):
        pass

    assert estimator_key(EMEstimator) is None
    assert estimator_key(_Helper) is None
    assert estimator_class("EMEstimator") is None
    assert _Helper not in estimator_classes().values()


def test_the_registry_returns_a_copy():
    classes = estimator_classes()
    classes.clear()
    assert estimator_class("GaussianMixture") is emkit.GaussianMixture


def test_emkit_keys_never_import_a_main_or_private_module():
    for key in ("emkit.cli.__main__.X", "emkit._no_such.X", "emkit.no_such_module.X"):
        assert estimator_class(key) is None
    assert "emkit.cli.__main__" not in sys.modules


def test_an_emkit_key_of_a_module_not_yet_imported_imports_it(monkeypatch):
    # A class defined in one of emkit's modules that `import emkit` does not import
    # (a drop-in front, say) is found by its qualified key once its module is imported.
    # Simulated: emkit.datasets defines no estimator, and importing it registers nothing.
    monkeypatch.delitem(sys.modules, "emkit.datasets", raising=False)
    monkeypatch.delattr(emkit, "datasets", raising=False)
    assert estimator_class("emkit.datasets.NoEstimator") is None
    assert "emkit.datasets" in sys.modules


# ----------------------------------------------------------------------------- user classes


class UserMixture(emkit.GaussianMixture):
    """A user's subclass: registered as it is defined, saved and loaded like emkit's own."""

    def describe(self) -> str:
        return f"{self.n_components} blobs"


def test_a_user_subclass_round_trips(tmp_path):
    assert estimator_class("UserMixture") is UserMixture
    X = _blobs()
    model = UserMixture(2, random_state=0).fit(X)
    model.save(tmp_path / "user.npz")
    loaded = emkit.load(tmp_path / "user.npz")
    assert type(loaded) is UserMixture
    assert loaded.describe() == "2 blobs"
    np.testing.assert_array_equal(loaded.means_, model.means_)
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    with zipfile.ZipFile(tmp_path / "user.npz") as zf:
        assert json.loads(zf.read("meta.json"))["class"] == "UserMixture"


class NotedMixture(emkit.GaussianMixture):
    """Unusual state: a tuple of notes, which a model file cannot hold as it is, so the
    class says how to save and restore it."""

    _extra_attributes = (*emkit.GaussianMixture._extra_attributes, "notes_")

    def fit(self, X, y=None):
        super().fit(X, y)
        self.notes_ = ("fitted", f"{len(X)} rows")
        return self

    def _get_state(self):
        params, attributes = super()._get_state()
        attributes["notes_"] = json.dumps(list(self.notes_))
        return params, attributes

    def _set_state(self, attributes):
        attributes = dict(attributes)
        notes = attributes.pop("notes_", None)
        super()._set_state(attributes)
        if notes is not None:
            self.notes_ = tuple(json.loads(notes))


def test_an_estimator_with_unusual_state_overrides_the_state_hooks(tmp_path):
    model = NotedMixture(2, random_state=0).fit(_blobs())
    model.save(tmp_path / "noted.npz")
    loaded = emkit.load(tmp_path / "noted.npz")
    assert type(loaded) is NotedMixture
    assert loaded.notes_ == ("fitted", "100 rows")
    np.testing.assert_array_equal(loaded.weights_, model.weights_)


def test_the_default_state_is_what_save_always_collected():
    model = emkit.GaussianMixture(2, random_state=0).fit(_blobs())
    params, attributes = model._get_state()
    assert params == model.get_params()
    names = model._fitted_attributes + model._extra_attributes
    assert list(attributes) == [n for n in names if hasattr(model, n)]
    assert all(attributes[n] is getattr(model, n) for n in attributes)
    rebuilt = emkit.GaussianMixture._from_state(params, attributes)
    assert type(rebuilt) is emkit.GaussianMixture
    np.testing.assert_array_equal(rebuilt.means_, model.means_)


class GaussianMixture(emkit.GaussianMixture):
    """A user's class with the name of one of emkit's: it must not take that name over."""


def test_a_user_class_with_an_emkit_name_gets_its_qualified_key(tmp_path):
    key = f"{GaussianMixture.__module__}.{GaussianMixture.__qualname__}"
    assert estimator_key(GaussianMixture) == key
    assert estimator_class("GaussianMixture") is emkit.GaussianMixture
    X = _blobs()
    for cls in (GaussianMixture, emkit.GaussianMixture):
        cls(2, random_state=0).fit(X).save(tmp_path / "m.npz")
        assert type(emkit.load(tmp_path / "m.npz")) is cls


def test_emkit_names_are_reserved_for_emkit_classes_whatever_the_order(tmp_path):
    """``import emkit`` imports no estimator, so a user's class named like one of emkit's
    may be defined before emkit's own: it must not take the name, and files of emkit's
    class (old ones included) must still load as emkit's class."""
    legacy = Path(__file__).parent / "data" / "legacy_0_1_0" / "hmm_gaussian.npz"
    code = f"""
import sys
import numpy as np
import emkit
from emkit._registry import estimator_class, estimator_key

class HMM(emkit.GaussianMixture):  # a user's class, defined first
    pass

assert "emkit.models.hmm.estimator" not in sys.modules, "emkit's HMM came first"
X = np.vstack([np.zeros((10, 2)), np.ones((10, 2))]) + np.arange(20)[:, None] * 1e-2
HMM(2, random_state=0).fit(X).save({str(tmp_path / "user.npz")!r})
mine = emkit.load({str(tmp_path / "user.npz")!r})
theirs = emkit.load({str(legacy)!r})
print(estimator_key(HMM), type(mine) is HMM, type(theirs) is emkit.HMM,
      estimator_class("HMM") is emkit.HMM, estimator_key(emkit.HMM))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["__main__.HMM", "True", "True", "True", "HMM"]


def test_a_user_class_with_a_reserved_name_never_gets_it():
    class LDA(emkit.GaussianMixture):
        pass

    assert estimator_key(LDA) == f"{__name__}.{LDA.__qualname__}"
    assert estimator_class("LDA") is emkit.LDA
    assert estimator_key(emkit.LDA) == "LDA"


def test_the_reserved_names_are_every_plain_key_of_emkits_own_classes():
    # import every module of emkit (the command line's __main__ aside), then compare the
    # table with the classes that registered themselves
    for info in pkgutil.walk_packages(emkit.__path__, "emkit."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    own = {
        cls.__name__: cls.__module__
        for cls in _public_subclasses(EMEstimator)
        if cls.__module__.startswith("emkit.") and estimator_key(cls) == cls.__name__
    }
    assert own == EMKIT_ESTIMATORS


def test_an_emkit_key_imports_its_module_and_a_failure_is_not_hidden(monkeypatch):
    # an emkit key whose module cannot be imported (a missing dependency) raises the
    # ImportError instead of looking like an unknown class
    import emkit._registry as registry

    assert registry._CLASSES["LDA"] is emkit.LDA
    monkeypatch.setitem(sys.modules, "emkit.models.topic.estimator", None)  # not importable
    monkeypatch.delitem(registry._CLASSES, "LDA")
    with pytest.raises(ImportError):
        estimator_class("LDA")


def test_a_redefined_class_replaces_the_old_one_under_its_key():
    def define():
        class Redefined(emkit.GaussianMixture):
            pass

        return Redefined

    first = define()
    second = define()
    assert estimator_key(second) == "Redefined"
    assert estimator_class("Redefined") is second
    assert estimator_key(first) is None


def test_registering_twice_keeps_the_key():
    assert register_estimator(emkit.GaussianMixture) == "GaussianMixture"
    assert estimator_class("GaussianMixture") is emkit.GaussianMixture


# ----------------------------------------------------------------------------- save's check


class _Unregistered(emkit.GaussianMixture):
    pass


class _Duck:
    """Has the state hook but is no registered estimator."""

    def _get_state(self):
        return {}, {}

    def _check_is_fitted(self):
        pass


@pytest.mark.parametrize(
    "thing", [{"means_": np.zeros(2)}, np.zeros(3), None, _Duck(), _Unregistered(2)]
)
def test_saving_anything_but_a_registered_estimator_raises(tmp_path, thing):
    with pytest.raises(TypeError, match="only emkit estimators"):
        save(thing, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- no circle


def _emkit_imports(path: Path) -> list[str]:
    """Every emkit module or name ``path`` imports, inside functions too."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "emkit uses absolute imports"
            found += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [name for name in found if name == "emkit" or name.startswith("emkit.")]


def test_io_imports_nothing_from_the_models():
    imported = _emkit_imports(IO_SOURCE)
    assert "emkit._registry" in imported  # the reader sees io's imports
    assert not [name for name in imported if name.startswith("emkit.models")]
    assert "emkit" not in imported  # the package, which imports every model

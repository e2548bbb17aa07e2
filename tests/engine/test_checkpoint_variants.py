"""Checkpoint and resume for every scheme and option: annealing (at any point of its
schedule), SQUAREM, online, hard EM, ECME, restarts, fixed parameters, chunked batches
and threads.

The reference is always the same fit run without interruption and without a
checkpoint. Each interrupted fit is stopped by a callback that raises after the
checkpoint of that step is written; each resumed run must have started past the
start (the first iteration its callback sees is the interrupted one), so a resume
that silently starts again fails. Annealing is interrupted inside a stage, at the
step that ends a stage (by ``max_iter`` or by convergence) and at the start of the
next stage, where its perturbation has already been drawn.
"""

from __future__ import annotations

import itertools
import json
import os
import zipfile

import numpy as np
import pytest
from test_checkpoint import Interrupt, assert_same_result, killed_fit, watch

import emkit
from emkit.engine.accel import SQUAREM
from emkit.engine.schemes import PlainEM
from emkit.engine.variants import Annealed
from emkit.models.mixture.gaussian_model import GaussianMixtureModel
from emkit.models.mixture.student_t import StudentTMixtureModel

pytestmark = pytest.mark.filterwarnings("ignore::emkit.ConvergenceWarning")


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(5)
    # overlapping clusters: EM moves slowly, so every step changes the parameters
    return np.vstack([rng.normal([0, 0], 1.0, (300, 2)), rng.normal([1.5, 0.5], 1.0, (300, 2))])


@pytest.fixture(scope="module")
def T():
    rng = np.random.default_rng(8)  # heavy tails: ECME's degrees of freedom move
    shift = np.array([4.0, 1.0])
    return np.vstack([rng.standard_t(3.0, (200, 2)), rng.standard_t(3.0, (200, 2)) + shift])


def stop_at(iteration: int, restart: int = 0, occurrence: int = 1):
    """A callback that raises the ``occurrence``-th time it sees ``(restart, iteration)``
    (an annealing stage that ends at step k is followed by a start at step k)."""

    def callback(info):
        if (info.restart, info.iteration) == (restart, iteration):
            seen.append(info.iteration)
            if len(seen) == occurrence:
                raise Interrupt

    seen: list = []
    return callback


def resume_matches(model, data, path, options, iteration, restart=0, occurrence=1):
    """Interrupt the fit at ``iteration``, resume it; return the resumed result."""
    with pytest.raises(Interrupt):
        emkit.em(
            model,
            data,
            checkpoint=path,
            callback=stop_at(iteration, restart, occurrence),
            **options,
        )
    callback = watch()
    resumed = emkit.em(model, data, checkpoint=path, callback=callback, **options)
    # it went on from the last write: the interrupted step (every step is written)
    assert callback.seen[0] == (restart, iteration)
    return resumed


def assert_identical(resumed, reference):
    assert_same_result(resumed, reference)
    np.testing.assert_array_equal(resumed.history, reference.history)  # bit for bit
    assert resumed.n_estep == reference.n_estep
    assert resumed.converged == reference.converged
    assert resumed.restarts == reference.restarts


GMM = dict(tol=0.0, max_iter=10, random_state=3)
CASES = {
    "plain": dict(GMM),
    "squarem": dict(GMM, accel="squarem"),
    "online": dict(GMM, variant="online", batch_size=100, n_init=2, restart=1),
    "online-converged": dict(GMM, tol=1e-3, max_iter=30, variant="online", batch_size=150),
    "hard": dict(GMM, variant="hard"),
    "hard-squarem": dict(GMM, variant="hard", accel="squarem"),
    "restarts": dict(GMM, n_init=3, restart=1),
    "restarts-threads": dict(GMM, n_init=3, n_jobs=2, restart=2),
    "fixed-names": dict(GMM, fixed=["components[1]"]),
    "fixed-values": dict(GMM, fixed={"weights": [0.3, 0.3, 0.4]}, accel="squarem"),
    "batches": dict(GMM, batch_size=128),
    "batches-threads": dict(GMM, batch_size=128, n_jobs=2),
    "converged": dict(GMM, tol=1e-4, max_iter=200),
}


@pytest.mark.parametrize("case", list(CASES))
def test_every_variant_resumes_to_the_uninterrupted_result(X, tmp_path, case):
    options = dict(CASES[case])
    restart = options.pop("restart", 0)
    model, data = GaussianMixtureModel(3), (X, None)
    callback = watch()
    reference = emkit.em(model, data, callback=callback, **options)
    last = max(it for r, it in callback.seen if r == restart)
    assert last >= 5
    if options["tol"] > 0:  # the last step is the converged one
        assert reference.converged
    # in the middle, and at the very last step (written, then killed before the end)
    for k in (3, last):
        path = tmp_path / f"fit{k}.ckpt"
        resumed = resume_matches(model, data, path, options, k, restart)
        assert_identical(resumed, reference)


def test_ecme_resumes_to_the_uninterrupted_result(T, tmp_path):
    model, data = StudentTMixtureModel(2), (T, None)
    options = dict(variant="ecme", tol=0.0, max_iter=8, random_state=1)
    reference = emkit.em(model, data, **options)
    dofs = reference.params.components.dof
    assert np.all((dofs > 1.0) & (dofs < 100.0))  # the observed-data step is at work
    resumed = resume_matches(model, data, tmp_path / "t.ckpt", options, 3)
    assert_identical(resumed, reference)


def _stage_ends(callback):
    """Steps at which a stage ended: a stage's start repeats the step count of its end."""
    seen = [it for _, it in callback.seen]
    return sorted({a for a, b in itertools.pairwise(seen) if a == b})


ANNEAL = {
    "max_iter": dict(anneal=[0.3, 0.6, 1.0], tol=0.0, max_iter=5, random_state=3),
    "converged": dict(anneal=[0.2, 0.5, 1.0], tol=1e-4, max_iter=200, random_state=3),
    "squarem": dict(anneal=[0.3, 0.6, 1.0], tol=0.0, max_iter=4, accel="squarem", random_state=3),
    "fixed": dict(anneal=[0.3, 1.0], tol=0.0, max_iter=5, fixed=["weights"], random_state=3),
    "threads": dict(
        anneal=[0.3, 1.0], tol=0.0, max_iter=5, batch_size=150, n_jobs=2, random_state=3
    ),
}


@pytest.mark.parametrize("case", list(ANNEAL))
def test_annealing_resumes_inside_and_between_stages(X, tmp_path, case):
    options = dict(ANNEAL[case])
    model, data = GaussianMixtureModel(3), (X, None)
    callback = watch()
    reference = emkit.em(model, data, callback=callback, **options)
    ends = _stage_ends(callback)
    assert len(ends) == len(options["anneal"]) - 1  # every stage ran at least one step
    if options["tol"] > 0:  # stages ended by convergence, before max_iter
        assert reference.converged and max(np.diff([0, *ends, reference.n_iter])) < 200
    points = [(1, 1), (ends[0], 1), (ends[0], 2), (ends[-1] + 1, 1)]
    if case == "max_iter":  # every step of the schedule, and every stage's start
        points = [(k, 1) for k in range(1, reference.n_iter + 1)] + [(k, 2) for k in ends]
    for k, occurrence in points:
        path = tmp_path / f"fit{k}-{occurrence}.ckpt"
        resumed = resume_matches(model, data, path, options, k, 0, occurrence)
        assert_identical(resumed, reference)


def test_annealing_resumes_from_the_last_write_every_k_steps(X, tmp_path):
    options = dict(anneal=[0.3, 0.6, 1.0], tol=0.0, max_iter=5, random_state=3)
    model, data = GaussianMixtureModel(3), (X, None)
    reference = emkit.em(model, data, **options)
    # steps 1-5 are stage 0, 6-10 stage 1: written at 4 (stage 0) and 8 (stage 1)
    for k, written in ((7, 4), (11, 8)):
        path = tmp_path / f"fit{k}.ckpt"
        with pytest.raises(Interrupt):
            emkit.em(
                model, data, checkpoint=path, checkpoint_every=4, callback=stop_at(k), **options
            )
        callback = watch()
        resumed = emkit.em(
            model, data, checkpoint=path, checkpoint_every=4, callback=callback, **options
        )
        assert callback.seen[0] == (0, written)
        assert_identical(resumed, reference)


def test_annealed_restarts_resume(X, tmp_path):
    options = dict(anneal=[0.3, 1.0], tol=0.0, max_iter=4, n_init=3, n_jobs=2, random_state=0)
    model, data = GaussianMixtureModel(3), (X, None)
    reference = emkit.em(model, data, **options)
    for restart, k in ((0, 8), (1, 4), (2, 5)):
        path = tmp_path / f"fit{restart}.ckpt"
        resumed = resume_matches(model, data, path, options, k, restart)
        assert_identical(resumed, reference)


def test_a_checkpoint_of_another_schedule_is_refused(X, tmp_path):
    model, data = GaussianMixtureModel(2), (X, None)
    path = tmp_path / "fit.ckpt"
    options = dict(tol=1e-3, max_iter=20, random_state=0)
    with pytest.raises(Interrupt):
        emkit.em(model, data, anneal=[0.3, 1.0], checkpoint=path, callback=stop_at(3), **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.anneal: \[0\.3, 1\.0\] in the"):
        emkit.em(model, data, anneal=[0.4, 1.0], checkpoint=path, **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.anneal"):
        emkit.em(model, data, anneal="default", checkpoint=path, **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.anneal"):
        emkit.em(model, data, checkpoint=path, **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.accel"):
        emkit.em(model, data, anneal=[0.3, 1.0], accel="squarem", checkpoint=path, **options)
    # the same schedule, given as another sequence type, is the same fit
    resumed = emkit.em(model, data, anneal=np.array([0.3, 1.0]), checkpoint=path, **options)
    reference = emkit.em(model, data, anneal=(0.3, 1.0), **options)
    assert_identical(resumed, reference)
    # a plain fit's checkpoint is refused by an annealed fit, a hard one's by a plain one
    emkit.em(model, data, checkpoint=tmp_path / "plain", **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.anneal"):
        emkit.em(model, data, anneal=[0.3, 1.0], checkpoint=tmp_path / "plain", **options)
    emkit.em(model, data, variant="hard", checkpoint=tmp_path / "hard", **options)
    with pytest.raises(ValueError, match=r"another fit.*options\.variant"):
        emkit.em(model, data, checkpoint=tmp_path / "hard", **options)


def test_a_custom_annealing_scheme_is_fingerprinted_by_its_schedule(X, tmp_path):
    model, data = GaussianMixtureModel(2), (X, None)
    path = tmp_path / "fit.ckpt"
    emkit.em(model, data, scheme=Annealed(PlainEM(), [0.5, 1.0]), checkpoint=path, max_iter=5)
    for other in (Annealed(PlainEM(), [0.25, 1.0]), Annealed(SQUAREM(), [0.5, 1.0])):
        with pytest.raises(ValueError, match=r"another fit.*options\.scheme"):
            emkit.em(model, data, scheme=other, checkpoint=path, max_iter=5)


def test_an_annealed_fit_killed_with_sigkill_resumes_to_the_uninterrupted_result(X, tmp_path):
    options = dict(tol=0.0, max_iter=8, random_state=1, anneal=[0.2, 0.5, 1.0])
    path = killed_fit(X, tmp_path, options, after=11, pause=0.1)  # inside the second stage
    with zipfile.ZipFile(path) as zf:
        killed_at = json.loads(zf.read("meta.json"))["current"]["n_iter"]
        stage = int(np.load(zf.open("r0.scheme.stage.0.npy")))
    assert 11 <= killed_at < 24
    assert stage == (killed_at - 1) // 8  # the stage is recorded (8 steps each)
    model = GaussianMixtureModel(3)
    reference = emkit.em(model, (X, None), **options)
    callback = watch()
    resumed = emkit.em(model, (X, None), checkpoint=path, callback=callback, **options)
    assert callback.seen[0] == (0, killed_at)
    assert_identical(resumed, reference)
    assert sorted(os.listdir(tmp_path)) == ["fit.ckpt", "x.npy"]


def _interrupting_estimator(monkeypatch, iteration: int):
    """Estimators call their verbose printer as the engine's callback: make it interrupt."""
    import emkit.models.estimator as estimator

    monkeypatch.setattr(estimator, "_print_iteration", stop_at(iteration))


def test_estimators_resume_annealed_fits(X, tmp_path, monkeypatch):
    kw = dict(n_components=3, tol=0.0, max_iter=4, random_state=0, anneal=[0.3, 0.6, 1.0])
    reference = emkit.GaussianMixture(**kw).fit(X)
    path = tmp_path / "gm.ckpt"
    _interrupting_estimator(monkeypatch, 6)
    with pytest.raises(Interrupt):
        emkit.GaussianMixture(**kw, checkpoint=path, verbose=2).fit(X)
    monkeypatch.undo()
    resumed = emkit.GaussianMixture(**kw, checkpoint=path).fit(X)
    for name in ("weights_", "means_", "covariances_", "history_"):
        np.testing.assert_allclose(
            getattr(resumed, name), getattr(reference, name), rtol=1e-12, atol=1e-14
        )
    assert resumed.n_iter_ == reference.n_iter_ == 12
    with pytest.raises(ValueError, match=r"another fit.*options\.anneal"):
        emkit.GaussianMixture(**{**kw, "anneal": "default"}, checkpoint=path).fit(X)

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 1))
    y = np.where(rng.random(300) < 0.5, 2.0 * x[:, 0], -1.0 - x[:, 0]) + rng.normal(0, 0.3, 300)
    kw = dict(n_components=2, tol=0.0, max_iter=3, random_state=0, anneal=[0.5, 1.0])
    reference = emkit.MixtureOfRegressions(**kw).fit(x, y)
    path = tmp_path / "mr.ckpt"
    _interrupting_estimator(monkeypatch, 4)
    with pytest.raises(Interrupt):
        emkit.MixtureOfRegressions(**kw, checkpoint=path, verbose=2).fit(x, y)
    monkeypatch.undo()
    resumed = emkit.MixtureOfRegressions(**kw, checkpoint=path).fit(x, y)
    np.testing.assert_allclose(resumed.coef_, reference.coef_, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(resumed.history_, reference.history_, rtol=1e-12, atol=0)

"""``emkit.HMM``: hidden Markov models fitted by Baum-Welch on the EM engine.

The estimator is thin: it validates the input and the hyper-parameters, builds the
emission part (:mod:`emkit.models.hmm.emissions`) and the data
(:mod:`emkit.models.hmm.fit_data`: in memory, or batches of whole sequences from a
source) and the pure model
(:class:`~emkit.models.hmm.model.HMMModel`), runs the engine, and keeps the fitted
parameters as scikit-learn-style attributes; prediction runs the inference kernels
(:mod:`emkit.models.hmm.kernels`) on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from emkit._random import seed_sequence
from emkit._validation import (
    check_init,
    check_int,
    check_real,
)
from emkit.distributions.base import Distribution
from emkit.distributions.covariance import get_structure
from emkit.distributions.gaussian import nearest_component
from emkit.models.estimator import EMEstimator
from emkit.models.hmm.emissions import (
    CategoricalEmission,
    Emission,
    GaussianEmission,
    GaussianMixtureEmission,
    PoissonEmission,
)
from emkit.models.hmm.fit_data import from_source, in_memory, sequence_source
from emkit.models.hmm.input import as_sequences, infer_categories
from emkit.models.hmm.kernels import forward_backward, forward_loglik, viterbi
from emkit.models.hmm.model import HMMModel, HMMParams
from emkit.models.hmm.rows import ProbabilityRows, check_alpha

__all__ = ["HMM"]

EMISSIONS = ("gaussian", "categorical", "poisson", "gmm")
INIT_METHODS = ("kmeans", "random")


class HMM(EMEstimator):
    """Hidden Markov model fitted by Baum-Welch (EM).

    Generative model, for each sequence ``x_1 .. x_T``::

        z_1 ~ Categorical(startprob)
        z_t | z_{t-1} = i ~ Categorical(transmat[i])
        x_t | z_t = k ~ emission of state k

    with the emission ``"gaussian"`` (``Normal(means[k], covariances[k])``),
    ``"categorical"`` (one symbol ``0 .. n_categories - 1`` per step, probabilities
    ``emissionprob[k]``), ``"poisson"`` (independent counts with ``rates[k]``),
    ``"gmm"`` (a mixture of ``n_mix`` Gaussians per state, as hmmlearn's GMMHMM), or
    any :class:`emkit.distributions.Distribution` (its component ``k`` for state
    ``k``; parameters in ``emission_params_``).

    Missing observations (rows of NaN; single NaN entries too for Gaussian
    emissions) are integrated out, not dropped: a missing row still takes part in
    the transitions.

    Parameters
    ----------
    n_states : int, default 1
        Number of hidden states K.
    emission : {"gaussian", "categorical", "poisson", "gmm"} or Distribution, default "gaussian"
    covariance_type : {"diag", "full", "tied", "spherical"}, default "diag"
        Covariance structure of Gaussian emissions (for ``"gmm"``, ``"tied"`` means
        shared by the ``n_mix`` components of a state, as in hmmlearn).
    n_mix : int, default 1
        Gaussians per state for ``emission="gmm"``.
    n_categories : int, optional
        Number of symbols for ``emission="categorical"``; by default the largest
        symbol in the training data plus one.
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance in the M-step.
    startprob_prior, transmat_prior : float or array-like, default 1.0
        Dirichlet pseudo-counts (each >= 1) on the initial probabilities and on each
        row of the transition matrix; above 1 the fit is MAP-EM (the engine then
        maximises log-likelihood + log-prior). Pseudo-counts never make a zero
        probability positive.
    init : {"kmeans", "random"} or dict, default "kmeans"
        How to start: cluster the observations by k-means (or around K random
        observations) and estimate every part from the labels. Categorical emissions
        cluster the symbol frequencies in a window of 11 steps around each
        observation instead of single symbols. A dict gives starting parameters keyed
        like the fitted attributes without the trailing underscore: ``startprob``,
        ``transmat`` and the emission's (``means`` and ``covariances``; ``weights``,
        ``means`` and ``covariances`` for "gmm"; ``emissionprob``; ``rates``;
        ``emission_params``, a dict of the distribution's parameter arrays). A
        subset is completed as with "kmeans" (the emission's parameters go
        together). Zeros in a given ``transmat`` or ``startprob`` stay zero
        (left-right models).
    tol : float, default 1e-4
        Stop when the log-likelihood (plus log-prior) per observation rises by less.
    max_iter : int, default 100
        Maximum number of EM iterations (SQUAREM cycles with ``accel="squarem"``,
        passes over the data with ``variant="online"``).
    n_init : int, default 1
        Restarts from independent seeds; the best objective is kept.
    random_state : None, int or numpy Generator
        Seed of the initialisation and of ``sample``.
    accel : {None, "squarem"}, default None
        SQUAREM acceleration of EM.
    variant : {"em", "online"}, default "em"
        ``"online"``: online EM over mini-batches of ``batch_size`` whole sequences.
    batch_size : int, optional
        Sequences per batch: the E-step runs batch by batch (same result), or the
        mini-batch size of online EM; for a Dask collection given with ``lengths``,
        whole sequences per partition (a source of sequences cuts its own batches).
    kappa, t0 : float, default 0.6 and 2.0
        Step sizes ``(t + t0) ** -kappa`` of online EM.
    n_jobs : int, optional
        Run the ``n_init`` restarts on this many threads.
    progress : bool, default False
        Show a progress bar.
    verbose : int, default 0
        1 prints a summary of the fit, 2 every iteration.
    check_monotone : {"warn", "raise", "off"}, default "warn"
        What to do if the objective ever decreases (exact EM never lets it).
    fixed : dict or collection of str, optional
        Parameters held fixed, keyed like ``init``: a dict name -> value (the value is
        the start and stays), or names held at their starting values (``init`` or
        drawn). The others get their M-step given them (covariances about held means,
        exactly). ``{"transmat": A}`` fits the rest of an HMM with known transitions.
    executor, checkpoint, checkpoint_every
        Where the E-steps run (threads, a Dask cluster: every partition, a set of whole
        sequences, on the worker holding it), and checkpoint / resume of the fit: as in
        :func:`emkit.em`.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_states,)
    transmat_ : ndarray of shape (n_states, n_states)
    means_ : ndarray of shape (n_states, n_features), or (n_states, n_mix, n_features)
        Gaussian and "gmm" emissions.
    covariances_ : ndarray
        Gaussian emissions: (K, D, D) full, (K, D) diag, (D, D) tied, (K,) spherical
        (as :class:`emkit.GaussianMixture`); "gmm": (K, M, D, D) full, (K, M, D) diag,
        (K, D, D) tied, (K, M) spherical (as hmmlearn's GMMHMM, which calls them
        ``covars_``: an alias here too).
    weights_ : ndarray of shape (n_states, n_mix)
        "gmm" emissions.
    emissionprob_ : ndarray of shape (n_states, n_categories)
        Categorical emissions.
    n_categories_ : int
        Categorical emissions: the number of symbols.
    rates_ : ndarray of shape (n_states, n_features)
        Poisson emissions.
    emission_params_ : pytree
        Parameters of a Distribution given as ``emission``.
    loglik_ : float
        Total log-likelihood of the training sequences at the fitted parameters.
    converged_ : bool
    n_iter_ : int
    history_ : ndarray of shape (n_iter_,)
        Objective (log-likelihood, plus log-prior for MAP) after each iteration.
    n_features_in_ : int

    Examples
    --------
    >>> import numpy as np
    >>> from emkit import HMM
    >>> rng = np.random.default_rng(0)
    >>> states = np.repeat([0, 1, 0, 1], 250)  # long stays in each state
    >>> X = rng.poisson(np.where(states == 0, 1.0, 8.0))[:, None]
    >>> model = HMM(2, emission="poisson", random_state=0).fit(X)
    >>> np.round(np.sort(model.rates_[:, 0]))
    array([1., 8.])
    >>> path = model.predict(X)
    >>> bool(np.mean((path == path[0]) == (states == states[0])) > 0.95)  # up to relabelling
    True
    """

    _extra_attributes = ("fit_time_", "lower_bound_", "n_categories_")
    _allow_nan = True  # missing observations are integrated out

    def __init__(
        self,
        n_states: int = 1,
        *,
        emission: str | Distribution = "gaussian",
        covariance_type: str = "diag",
        n_mix: int = 1,
        n_categories: int | None = None,
        reg_covar: float = 1e-6,
        startprob_prior: Any = 1.0,
        transmat_prior: Any = 1.0,
        init: str | Mapping[str, Any] = "kmeans",
        tol: float = 1e-4,
        max_iter: int = 100,
        n_init: int = 1,
        random_state: Any = None,
        accel: str | None = None,
        variant: str = "em",
        batch_size: int | None = None,
        kappa: float = 0.6,
        t0: float = 2.0,
        n_jobs: int | None = None,
        progress: bool = False,
        verbose: int = 0,
        check_monotone: str = "warn",
        fixed: Any = None,
        executor: Any = None,
        checkpoint: Any = None,
        checkpoint_every: int = 1,
    ):
        self._set_hyperparameters(locals())

    # ------------------------------------------------------------------ attributes
    @property
    def _emission_attributes(self) -> tuple[str, ...]:
        kind = self.emission if isinstance(self.emission, str) else "distribution"
        return {
            "gaussian": GaussianEmission.attributes,
            "categorical": CategoricalEmission.attributes,
            "poisson": PoissonEmission.attributes,
            "gmm": GaussianMixtureEmission.attributes,
        }.get(kind, Emission.attributes)

    @property
    def _fitted_attributes(self) -> tuple[str, ...]:  # type: ignore[override]
        return (
            "startprob_",
            "transmat_",
            *(f"{name}_" for name in self._emission_attributes),
            "converged_",
            "n_iter_",
            "history_",
            "loglik_",
            "n_features_in_",
        )

    @property
    def covars_(self) -> np.ndarray:
        """hmmlearn's name for ``covariances_`` of "gmm" emissions (the same array)."""
        if self.emission != "gmm" or not hasattr(self, "covariances_"):
            raise AttributeError(
                "covars_ is the GMM-HMM name of covariances_ (emission='gmm', fitted)"
            )
        return self.covariances_

    # ------------------------------------------------------------------ hyper-parameters
    def _check_hyperparameters(self) -> None:
        check_int(self.n_states, "n_states", 1)
        if self.tol is not None:
            check_real(self.tol, "tol", 0.0)
        check_real(self.reg_covar, "reg_covar", 0.0)
        check_int(self.max_iter, "max_iter", 0)
        check_int(self.n_init, "n_init", 1)
        check_int(self.n_mix, "n_mix", 1)
        if isinstance(self.emission, str):
            if self.emission not in EMISSIONS:
                raise ValueError(
                    f"emission must be one of {EMISSIONS} or an emkit Distribution, got "
                    f"{self.emission!r}"
                )
        elif not isinstance(self.emission, Distribution):
            raise TypeError(
                "emission must be a string or an emkit.distributions.Distribution, got "
                f"{type(self.emission).__name__}"
            )
        if self.emission in ("gaussian", "gmm"):
            get_structure(self.covariance_type)
        if self.n_categories is not None:
            check_int(self.n_categories, "n_categories", 1)
        check_init(self.init, INIT_METHODS)
        if self.variant not in ("em", "online"):
            raise ValueError(f"variant must be 'em' or 'online', got {self.variant!r}")
        K = self.n_states
        for name, shape in (("startprob_prior", (K,)), ("transmat_prior", (K, K))):
            value = getattr(self, name)
            if value is not None:
                check_alpha(value, shape, name)

    def _emission_part(
        self, X: np.ndarray | None = None, shift=None, n_categories: int | None = None
    ) -> Emission:
        """The emission part; ``X`` (training data) fixes the number of symbols, unless
        ``n_categories`` (the data's, from a streaming pass) is given."""
        e = self.emission
        if e == "gaussian":
            return GaussianEmission(self.covariance_type, self.reg_covar, shift)
        if e == "gmm":
            return GaussianMixtureEmission(self.n_mix, self.covariance_type, self.reg_covar, shift)
        if e == "poisson":
            return PoissonEmission()
        if e == "categorical":
            C = self.n_categories or n_categories
            if C is None:
                if X is None:  # a fitted model
                    C = self.emissionprob_.shape[1]
                elif isinstance(self.init, Mapping) and "emissionprob" in self.init:
                    C = int(np.shape(self.init["emissionprob"])[-1])
                else:
                    C = infer_categories(X)
            return CategoricalEmission(C)
        return Emission(e)

    def _model(self, part: Emission, given: Mapping[str, Any] | None = None) -> HMMModel:
        return HMMModel(
            self.n_states,
            part,
            startprob_prior=1.0 if self.startprob_prior is None else self.startprob_prior,
            transmat_prior=1.0 if self.transmat_prior is None else self.transmat_prior,
            init=self.init if isinstance(self.init, str) else "kmeans",
            given=given,
        )

    def _given(self, part: Emission, values: Mapping[str, Any], D: int) -> dict[str, Any]:
        """Validated starting parameters from an ``init`` dict (any subset)."""
        K = self.n_states
        keys = ("startprob", "transmat", *part.attributes)
        unknown = set(values) - set(keys)
        if unknown:
            raise ValueError(
                f"init dict has unknown keys {sorted(unknown)}; use {', '.join(map(repr, keys))}"
            )
        out: dict[str, Any] = {}
        if "startprob" in values:
            out["startprob"] = ProbabilityRows("startprob").check(values["startprob"], (K,))
        if "transmat" in values:
            out["transmat"] = ProbabilityRows("transmat").check(values["transmat"], (K, K))
        present = [a for a in part.attributes if a in values]
        if present:
            if len(present) != len(part.attributes):
                missing = [a for a in part.attributes if a not in values]
                raise ValueError(
                    f"init dict gives {present} but not {missing}: give all of the "
                    "emission's parameters or none"
                )
            out["emission"] = part.from_attributes(dict(values), K, D)
        return out

    def _with_fixed(
        self, part: Emission, given: dict[str, Any], D: int
    ) -> tuple[dict[str, Any], list[str] | None]:
        """The start with ``fixed`` values put in, and the held names as paths in the
        parameters (what :func:`emkit.em` takes), or None."""
        fixed = self.fixed
        if fixed is None or (not isinstance(fixed, str) and len(fixed) == 0):
            return given, None
        names = [fixed] if isinstance(fixed, str) else list(fixed)
        keys = ("startprob", "transmat", *part.attributes)
        unknown = sorted(set(names) - set(keys))
        if unknown:
            raise ValueError(
                f"fixed names unknown parameters {unknown}; use {', '.join(map(repr, keys))}"
            )
        if isinstance(fixed, Mapping):
            given = dict(given)
            rows = {k: v for k, v in fixed.items() if k in ("startprob", "transmat")}
            given.update(self._given(part, rows, D))
            emission = {k: v for k, v in fixed.items() if k in part.attributes}
            if emission and "emission" in given:
                given["emission"] = part.with_attributes(
                    given["emission"], emission, self.n_states, D
                )
            elif len(emission) == len(part.attributes):
                given.update(self._given(part, emission, D))
            elif emission:  # the others are drawn, then these put in
                given["emission_attributes"] = (emission, D)
        paths = {"startprob": "startprob", "transmat": "transmat", **part.paths}
        return given, [paths[name] for name in names]

    # ------------------------------------------------------------------ fitting
    def fit(self, X, lengths=None) -> HMM:
        """Estimate the parameters by Baum-Welch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), list of arrays, data source or Dask collection
            All sequences one after the other (with ``lengths``), or a list of
            sequences of shape (T_i, n_features) (or (T_i,) for one feature).
            NaN marks a missing value. Larger than memory, or on a cluster: a source
            of sequences (:func:`emkit.data.from_npy`, :func:`~emkit.data.from_parquet`,
            :func:`~emkit.data.from_csv` or :func:`~emkit.data.from_dask` with
            ``lengths=`` or ``sequence_column=``), a table source with ``lengths``, or
            a Dask array or DataFrame with ``lengths`` (``batch_size`` whole sequences
            per partition when set; else every partition boundary must be a sequence
            boundary). See Notes.
        lengths : array-like of int, optional
            Length of each sequence in ``X``; must add up to ``len(X)``. One sequence
            when omitted (for arrays; a source must say where its sequences are).

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Lengths that are not positive or do not add up to the rows; a partition
            of a Dask collection that splits a sequence; a table source without
            sequence boundaries.

        Notes
        -----
        A source is read in batches of whole sequences (a sequence is never split),
        so memory is bounded by a batch; with ``executor=client`` (or a Dask
        collection and a current ``dask.distributed`` client) every partition's
        E-step runs on the worker holding it. The fit equals the in-memory fit from
        the same ``random_state`` to round-off when the data have at most the
        source's ``init_rows`` rows (default 100,000): what is computed from the whole
        data, the centre of Gaussian data (the column means) and the number of
        categorical symbols, takes a streaming pass, and the start (k-means
        included) sees every sequence. Larger data start from a systematic
        subsample of whole sequences of at most ``init_rows`` rows
        (:meth:`emkit.data.SequenceTableSource.init_sequences`); the data's scale is
        checked on it. ``variant="online"`` draws its mini-batches of ``batch_size``
        sequences from sources with random access (``.npy`` and Dask).
        """

        self._check_hyperparameters()
        if self.batch_size is not None:
            check_int(self.batch_size, "batch_size", 1)
        table = sequence_source(X, lengths, self.batch_size)
        if table is None:
            part, source, n_rows, D = in_memory(self, X, lengths)
        else:
            part, source, n_rows, D = from_source(self, table)
        given = self._given(part, self.init, D) if isinstance(self.init, Mapping) else {}
        given, fixed = self._with_fixed(part, given, D)
        model = self._model(part, given)
        init = None
        if all(key in given for key in ("startprob", "transmat", "emission")):
            init = HMMParams(given["startprob"], given["transmat"], given["emission"])
        online = self.variant == "online"
        result = self._run_engine(
            model,
            source,
            init,
            n_rows,
            batch_size=self.batch_size if online else None,
            variant=self.variant,
            accel=self.accel,
            kappa=self.kappa,
            t0=self.t0,
            fixed=fixed,
        )
        # Everything is computed; only now is the estimator changed.
        p = result.params
        self.startprob_ = np.asarray(p.startprob, dtype=np.float64)
        self.transmat_ = np.asarray(p.transmat, dtype=np.float64)
        for name, value in part.to_attributes(p.emission).items():
            setattr(self, f"{name}_", value)
        if isinstance(part, CategoricalEmission):
            self.n_categories_ = part.n_categories
        self.loglik_ = float(result.loglik)
        self.lower_bound_ = self.loglik_ / n_rows
        self.n_features_in_ = D
        self._finish_fit(result, "Baum-Welch")
        return self

    def _categories_from_data(self) -> bool:
        """Whether the number of categorical symbols is inferred from the data."""
        return self.n_categories is None and not (
            isinstance(self.init, Mapping) and "emissionprob" in self.init
        )

    def _describe(self) -> str:
        kind = self.emission if isinstance(self.emission, str) else repr(self.emission)
        return f"K={self.n_states} {kind} "

    # ------------------------------------------------------------------ fitted model
    def _parameters_set(self) -> bool:
        """Whether every parameter attribute is there (fitted, loaded or set by hand)."""
        names = ("startprob", "transmat", *self._emission_attributes)
        return all(hasattr(self, f"{name}_") for name in names)

    def _check_parameters_set(self) -> None:
        if not self._parameters_set():
            from emkit.exceptions import NotFittedError  # built on first use

            self._check_is_fitted()  # the NotFittedError, with its message
            raise NotFittedError(  # fitted, then a parameter was deleted
                f"This {type(self).__name__} instance lacks some of its parameters; fit it "
                "or set startprob_, transmat_ and the emission's parameters"
            )

    def _emission_values(self) -> dict[str, Any]:
        """The emission's parameter attributes, keyed by the emission's names."""
        return {a: getattr(self, f"{a}_") for a in self._emission_attributes}

    def _n_features(self) -> int:
        """Number of features: ``n_features_in_``, or for parameters set by hand, what
        the emission's parameters say (one column of symbols for categorical ones)."""
        if hasattr(self, "n_features_in_"):
            return int(self.n_features_in_)
        values = self._emission_values()
        if "emissionprob" in values:
            return 1
        for name in ("means", "rates"):
            if name in values:
                return int(np.shape(values[name])[-1])
        from emkit.exceptions import NotFittedError  # built on first use

        raise NotFittedError(
            f"set n_features_in_ to use this {type(self).__name__} with parameters set by hand"
        )

    def _fitted(self) -> tuple[HMMModel, HMMParams]:
        """The pure model and its parameters, from the attributes: those of a fit, or
        set by hand (startprob_, transmat_ and the emission's) without fitting."""
        self._check_parameters_set()
        K, D = self.n_states, self._n_features()
        values = self._emission_values()
        shift = None
        if "means" in values:
            # Densities are computed about the centre of the means (translation changes
            # nothing but the round-off).
            shift = np.asarray(values["means"], dtype=np.float64).reshape(-1, D).mean(axis=0)
        part = self._emission_part(shift=shift)
        emission = part.from_attributes(values, K, D)
        params = HMMParams(
            ProbabilityRows("startprob_").check(self.startprob_, (K,)),
            ProbabilityRows("transmat_").check(self.transmat_, (K, K)),
            emission,
        )
        return self._model(part), params

    def _frame(
        self, X, lengths, far_limit: bool = True
    ) -> tuple[np.ndarray, np.ndarray, HMMParams, np.ndarray | None]:
        model, params = self._fitted()
        X, offsets = as_sequences(X, lengths)
        if X.shape[1] != self._n_features():
            raise ValueError(
                f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                f"{self._n_features()} features as input."
            )
        data, missing = model.emission.prepare(X)
        frame = model.frame(params, data, missing)
        with np.errstate(invalid="ignore"):
            far = ~np.isfinite(frame.max(axis=1)) | np.isnan(frame).any(axis=1)
        if far_limit and far.any() and self.emission == "gaussian":
            # every state's density underflows: the state nearest in Mahalanobis distance
            # is the limit of the emission ratios as the point moves away
            values = self._emission_values()
            means = np.asarray(values["means"], dtype=np.float64)
            st = get_structure(self.covariance_type)
            prec = np.linalg.inv(st.to_full(np.asarray(values["covariances"]), *means.shape))
            # the other states get a large but finite penalty (exp(-700) is still a
            # float64): where the chain forbids the nearest state (a zero start or
            # transition probability) the path goes through the next one instead of
            # leaving a sequence with no possible path and all-zero posteriors
            with np.errstate(divide="ignore"):
                frame[far] = np.maximum(np.log(nearest_component(X[far], means, prec)), -700.0)
        return frame, offsets, params, missing

    def score(self, X, lengths=None) -> float:
        """Total log-likelihood of the sequences (as hmmlearn).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list of arrays
        lengths : array-like of int, optional

        Returns
        -------
        float
        """
        frame, offsets, p, _ = self._frame(X, lengths, far_limit=False)
        return float(forward_loglik(frame, offsets, p.startprob, p.transmat).sum())

    def score_samples(self, X, lengths=None) -> tuple[float, np.ndarray]:
        """Total log-likelihood and the posterior state probabilities (as hmmlearn).

        Returns
        -------
        logprob : float
        posteriors : ndarray of shape (n_samples, n_states)
        """
        frame, offsets, p, _ = self._frame(X, lengths)
        logliks, post, _, _ = forward_backward(frame, offsets, p.startprob, p.transmat)
        return float(logliks.sum()), post

    def predict_proba(self, X, lengths=None) -> np.ndarray:
        """Posterior probability of each state at each time step, shape (n_samples, n_states)."""
        return self.score_samples(X, lengths)[1]

    def decode(self, X, lengths=None, algorithm: str = "viterbi") -> tuple[float, np.ndarray]:
        """Most likely state sequence.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), or list of arrays
        lengths : array-like of int, optional
        algorithm : {"viterbi", "map"}, default "viterbi"
            "viterbi": the jointly most likely path; "map": the most likely state at
            each step (posterior argmax).

        Returns
        -------
        logprob : float
            Viterbi: ``log p(X, path)`` summed over sequences; "map": the sum of the
            log posterior probabilities of the chosen states.
        path : ndarray of int, shape (n_samples,)
        """
        if algorithm == "map":
            _, post = self.score_samples(X, lengths)
            path = post.argmax(axis=1)
            with np.errstate(divide="ignore"):
                logprob = float(np.log(post[np.arange(len(path)), path]).sum())
            return logprob, path
        if algorithm != "viterbi":
            raise ValueError(f"algorithm must be 'viterbi' or 'map', got {algorithm!r}")
        frame, offsets, p, _ = self._frame(X, lengths)
        logprobs, path = viterbi(frame, offsets, p.startprob, p.transmat)
        return float(logprobs.sum()), path

    def predict(self, X, lengths=None) -> np.ndarray:
        """The Viterbi path: most likely state of every time step, shape (n_samples,)."""
        return self.decode(X, lengths)[1]

    def fit_predict(self, X, lengths=None) -> np.ndarray:
        """``fit(X, lengths)`` then ``predict(X, lengths)``."""
        return self.fit(X, lengths).predict(X, lengths)

    def _n_parameters(self) -> int:
        model, p = self._fitted()
        return (
            ProbabilityRows.n_free(p.startprob)
            + ProbabilityRows.n_free(p.transmat)
            + model.emission.n_parameters(p.emission, self._n_features())
        )

    def _n_observed(self, X, lengths) -> int:
        X, _ = as_sequences(X, lengths)
        return int(np.count_nonzero(~np.isnan(X).all(axis=1)))

    def bic(self, X, lengths=None) -> float:
        """Bayesian information criterion (lower is better): ``-2 score + p log n``,
        with ``n`` the number of observed rows and ``p`` the free parameters (a
        probability fixed at zero is not one)."""
        n = self._n_observed(X, lengths)
        return -2.0 * self.score(X, lengths) + self._n_parameters() * np.log(n)

    def aic(self, X, lengths=None) -> float:
        """Akaike information criterion (lower is better): ``-2 score + 2 p``."""
        return -2.0 * self.score(X, lengths) + 2.0 * self._n_parameters()

    def sample(
        self, n_samples: int = 1, random_state: Any = None, currstate: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Draw one sequence from the fitted model.

        Parameters
        ----------
        n_samples : int, default 1
            Length of the sequence.
        random_state : None, int or Generator, optional
            Seed; the estimator's ``random_state`` when omitted.
        currstate : int, optional
            State of the first step (drawn from ``startprob_`` when omitted).

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
        states : ndarray of int, shape (n_samples,)
        """
        model, p = self._fitted()
        n = check_int(n_samples, "n_samples", 1)
        seed = self.random_state if random_state is None else random_state
        rng = np.random.default_rng(seed_sequence(seed))
        if currstate is not None:
            currstate = check_int(currstate, "currstate", 0)
            if currstate >= self.n_states:
                raise ValueError(
                    f"currstate must be below n_states = {self.n_states}, got {currstate}"
                )
        return model.sample(p, n, rng, currstate)

    def _check_fitted_state(self) -> None:
        K = self.n_states
        for name, shape in (("startprob_", (K,)), ("transmat_", (K, K))):
            ProbabilityRows(name).check(getattr(self, name), shape)
        if isinstance(self.emission, str):
            self._fitted()  # validates the emission attributes

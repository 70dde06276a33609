"""The settings of each analysis step, each defined once as a typed, validated object.

Every object is a frozen dataclass registered as a JAX pytree: its **structural** fields (counts,
choices: what the compiled program depends on) are static metadata, hashable, and its **float**
fields are leaves, traced under ``jit`` and ``vmap``, so a new learning rate or penalty weight does
not compile again, and ``jax.vmap`` can run a stack of them::

    settings = MethodBSettings(steps=30, batch_size=8, learning_rate=3e-2)
    settings.validate()          # every bad field named before any work
    settings.static              # hashable: the compiled loop's shape
    settings.floats              # a pytree of the traced numbers

The public functions keep a keyword form for notebooks whose keywords are these fields
(``optimize_weights(..., steps=30)`` is ``optimize_weights(..., settings=MethodBSettings(steps=30))``),
and a config nests them under the same names: ``config.analysis.method_b.steps`` is
``MethodBSettings.steps`` (:meth:`from_config`), so one list of names serves the function, the
settings object and the config, and a config's validation is the settings' own :meth:`validate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
import re
from typing import Any, ClassVar, NamedTuple

import jax
import numpy as np

from latentjax.analysis.objective import PENALTIES
from latentjax.analysis.validation import number_problem, scalar_value

SCHEDULES = ("constant", "cosine")
SOLVERS = ("lbfgs", "adam")
PARAMETRIZATIONS = ("box", "tanh")


class SettingError(ValueError):
    """A setting outside what its step accepts:
    ``"<field>=<value>[ with <related>]: [<reason>, ]expected <what>."``.

    ``field`` names the settings field, ``related`` the other fields the rule involves,
    ``expected`` what would be accepted; the config layer rewords it with the config keys
    (``config.analysis.weight_steps=0: expected ...``).
    """

    def __init__(self, field: str, value: Any, expected: str, *, related: dict | None = None, reason: str = ""):
        self.field, self.value, self.expected = field, value, expected
        self.related, self.reason = dict(related or {}), reason
        super().__init__(self.render(lambda name: name))

    def render(self, name) -> str:
        """The message with every field's name passed through ``name`` (a config key, say)."""
        context = "".join(
            f"{' with ' if i == 0 else ', '}{name(k)}={v!r}" for i, (k, v) in enumerate(self.related.items())
        )
        expected = self.expected
        for field in (self.field, *self.related):
            expected = re.sub(rf"\b{field}\b", name(field), expected)
        reason = f"{self.reason}, " if self.reason else ""
        return f"{name(self.field)}={self.value!r}{context}: {reason}expected {expected}."


def _number(value, field: str, *, integer: bool = False, **bounds) -> None:
    """Checks a number against ``bounds``: what counts as a number (Python and NumPy scalars,
    0-d arrays) is :func:`~latentjax.analysis.validation.scalar_value`'s; a traced value passes
    (checked by shape only)."""
    try:
        number = scalar_value(value, field, integer=integer)
    except ValueError:
        number = value  # not a number at all: number_problem words what was expected
    if number is None:
        return
    problem = number_problem(number, integer=integer, **bounds)
    if problem:
        raise SettingError(field, value, problem)


def _choice(value, field: str, allowed: tuple) -> None:
    if value not in allowed:
        raise SettingError(field, value, f"one of {allowed}")


class _Settings:
    """What every settings object shares: construction from a config section, replacement,
    and the JSON-ready record that keys a stage's saved result."""

    #: The config section under ``config.analysis`` that holds these fields, by the same names.
    SECTION: ClassVar[str] = ""
    #: Fields read from ``config.analysis`` itself, shared with other steps (the set size ``k``).
    SHARED: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_config(cls, analysis: Mapping, **overrides):
        """The settings ``config.analysis.<SECTION>`` holds (``overrides`` replace fields)."""
        shared = {name: analysis[name] for name in cls.SHARED}
        return cls(**{**dict(analysis[cls.SECTION]), **shared, **overrides})

    @classmethod
    def config_key(cls, field: str) -> str:
        """Where ``field`` lives under ``config.analysis``: ``'method_b.steps'``, or ``'k'``."""
        return field if field in cls.SHARED else f"{cls.SECTION}.{field}"

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    #: Fields that change how the work runs, not its numbers (left out of :meth:`record`).
    EXECUTION: ClassVar[tuple[str, ...]] = ()

    def keywords(self) -> dict:
        """The fields as keywords of the step's function (``compute_apcr(..., **s.keywords())``)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def record(self) -> dict:
        """Every field that shapes the result, as plain JSON values: the identity of a result
        computed with these settings (a saved stage is keyed by it)."""
        return {
            f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self) if f.name not in self.EXECUTION
        }


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def _pytree(cls, floats: tuple[str, ...]):
    """Registers a settings dataclass: ``floats`` traced, every other field static."""
    names = tuple(f.name for f in dataclasses.fields(cls))
    jax.tree_util.register_dataclass(
        cls, data_fields=list(floats), meta_fields=[n for n in names if n not in floats]
    )
    return cls


@dataclasses.dataclass(frozen=True)
class LatentSettings(_Settings):
    """The latent sets ``Z_j``: ``samples_per_class`` prior codes per class whose classifier
    confidence is at least ``threshold``, drawn ``batch_size`` at a time, at most ``max_draws``.

    >>> LatentSettings(samples_per_class=16).validate().threshold
    0.9
    """

    samples_per_class: int = 256
    threshold: float = 0.9
    batch_size: int = 1024
    max_draws: int = 1_000_000

    SECTION: ClassVar[str] = "latents"

    def validate(self) -> LatentSettings:
        _number(self.samples_per_class, "samples_per_class", integer=True, low=1)
        _number(self.threshold, "threshold", low=0, high=1)
        _number(self.batch_size, "batch_size", integer=True, low=1)
        _number(self.max_draws, "max_draws", integer=True, low=1)
        return self


@dataclasses.dataclass(frozen=True)
class APCRSettings(_Settings):
    """Method A: each dimension moved by ``delta * i`` for ``i = -m..m``; ``relative`` scores
    ``|dQ| / (Q + eps)``, ``signed`` keeps the sign of the change; ``chunk_size`` rows per
    compiled chunk (``None``: the backend's default).

    >>> APCRSettings(delta=0.25).validate().m
    6
    """

    delta: float = 0.5
    m: int = 6
    relative: bool = True
    signed: bool = False
    eps: float = 1e-6
    chunk_size: int | None = None

    SECTION: ClassVar[str] = "apcr"
    EXECUTION: ClassVar[tuple[str, ...]] = ("chunk_size",)

    @classmethod
    def from_config(cls, analysis: Mapping, **overrides):
        settings = super().from_config(analysis, **overrides)
        return settings.replace(chunk_size=settings.chunk_size or None)  # config: 0 = default

    def validate(self) -> APCRSettings:
        _number(self.delta, "delta", low=0, low_open=True)
        _number(self.m, "m", integer=True, low=1)
        _number(self.eps, "eps", low=0, low_open=True)
        if self.chunk_size is not None:
            _number(self.chunk_size, "chunk_size", integer=True, low=1)
        for field in ("relative", "signed"):
            if not isinstance(getattr(self, field), bool):
                raise SettingError(field, getattr(self, field), "True or False")
        return self


class MethodBLoop(NamedTuple):
    """The structural part of :class:`MethodBSettings`: what Method B's compiled program depends on."""

    solver: str
    steps: int
    batch_size: int  # 0: every code in every step
    xi_nodes: int  # 0: u ~ U[xi_min, xi_max] drawn per code and step
    penalty: str
    schedule: str
    parametrization: str


class MethodBFloats(NamedTuple):
    """The traced part of :class:`MethodBSettings`."""

    lam: Any
    xi_min: Any
    xi_max: Any
    smoothing: Any
    learning_rate: Any
    init: Any


@dataclasses.dataclass(frozen=True)
class MethodBSettings(_Settings):
    """Method B (:func:`~latentjax.optimize_weights`): ``w in [-1, 1]^N`` minimising
    ``E_{z,u}[1 - max_s |dS_j|] + lam * penalty(w)`` with ``xi = s * u``, ``u in xi_range``.

    Structural (static): ``steps``, ``batch_size`` (0: all codes), ``xi_nodes`` (0: ``u`` drawn
    at random; else Gauss-Legendre nodes), ``solver`` (``'adam'``, ``'lbfgs'``), ``schedule``
    (``'constant'``, ``'cosine'``), ``penalty`` (``'l2'``, ``'l2_squared'``, ``'l1'``),
    ``parametrization`` (``'box'``: projection; ``'tanh'``). Traced: ``lam``, ``xi_range``,
    ``learning_rate``, ``init``, ``smoothing``. The defaults are the paper's reading;
    :data:`CONVERGED_READING` is the converged one.

    >>> s = MethodBSettings(steps=30, batch_size=8).validate()
    >>> s.static.steps, float(s.floats.xi_max)
    (30, 3.0)
    >>> MethodBSettings(solver="lbfgs").validate()
    Traceback (most recent call last):
    ...
    latentjax.analysis.settings.SettingError: solver='lbfgs' with batch_size=64, xi_nodes=0: L-BFGS's line search needs the deterministic loss, expected batch_size=0 and xi_nodes > 0 (or solver='adam').
    """

    lam: float = 0.2
    xi_range: tuple[float, float] = (1.0, 3.0)
    steps: int = 500
    batch_size: int = 64
    learning_rate: float = 1e-2
    init: float = 0.5
    parametrization: str = "box"
    solver: str = "adam"
    xi_nodes: int = 0
    smoothing: float = 0.0
    schedule: str = "constant"
    penalty: str = "l2"

    SECTION: ClassVar[str] = "method_b"
    FLOATS: ClassVar[tuple[str, ...]] = ("lam", "xi_range", "learning_rate", "init", "smoothing")

    @classmethod
    def from_config(cls, analysis: Mapping, **overrides):
        settings = super().from_config(analysis, **overrides)
        return settings.replace(xi_range=tuple(settings.xi_range))

    @property
    def static(self) -> MethodBLoop:
        return MethodBLoop(
            self.solver, int(self.steps), int(self.batch_size), int(self.xi_nodes), self.penalty,
            self.schedule, self.parametrization,
        )

    @property
    def floats(self) -> MethodBFloats:
        xi_min, xi_max = self.xi_range
        return MethodBFloats(self.lam, xi_min, xi_max, self.smoothing, self.learning_rate, self.init)

    def describe(self) -> str:
        """One line naming the reading and its settings (what a report prints).

        >>> MethodBSettings(steps=30, batch_size=8).describe()
        '30 adam steps (constant lr from 0.01, batch 8), ξ ~ U[1.0, 3.0], smoothing 0.0, λ = 0.2 × l2, box constraint.'
        """
        batch = "all codes" if self.batch_size == 0 else f"batch {self.batch_size}"
        xi_min, xi_max = self.xi_range
        xi = (f"ξ at {self.xi_nodes} Gauss-Legendre nodes of [{xi_min}, {xi_max}]"
              if self.xi_nodes else f"ξ ~ U[{xi_min}, {xi_max}]")
        rate = "line search" if self.solver == "lbfgs" else f"{self.schedule} lr from {self.learning_rate}"
        return (
            f"{self.steps} {self.solver} steps ({rate}, {batch}), {xi}, smoothing {self.smoothing}, "
            f"λ = {self.lam} × {self.penalty}, {self.parametrization} constraint."
        )

    def validate(self) -> MethodBSettings:
        _number(self.steps, "steps", integer=True, low=1)
        _number(self.batch_size, "batch_size", integer=True, low=0)
        _number(self.xi_nodes, "xi_nodes", integer=True, low=0)
        _number(self.learning_rate, "learning_rate", low=0, low_open=True)
        _number(self.lam, "lam", low=0)
        _number(self.smoothing, "smoothing", low=0)
        if not isinstance(self.xi_range, tuple) or len(self.xi_range) != 2:
            raise SettingError("xi_range", self.xi_range, "a pair (xi_min, xi_max)")
        expected = "(xi_min, xi_max) with 0 < xi_min <= xi_max"
        try:
            low, high = (scalar_value(x, "xi_range") for x in self.xi_range)
        except ValueError:
            raise SettingError("xi_range", self.xi_range, expected) from None
        if low is not None and high is not None and not 0 < low <= high:
            raise SettingError("xi_range", self.xi_range, expected)
        _choice(self.penalty, "penalty", PENALTIES)
        _choice(self.schedule, "schedule", SCHEDULES)
        _choice(self.solver, "solver", SOLVERS)
        _choice(self.parametrization, "parametrization", PARAMETRIZATIONS)
        if self.solver == "lbfgs" and (self.batch_size != 0 or self.xi_nodes == 0):
            raise SettingError(
                "solver", self.solver, "batch_size=0 and xi_nodes > 0 (or solver='adam')",
                related=dict(batch_size=self.batch_size, xi_nodes=self.xi_nodes),
                reason="L-BFGS's line search needs the deterministic loss",
            )
        _number(self.init, "init")
        start = scalar_value(self.init, "init")
        inside = start is None or (-1.0 <= start <= 1.0 if self.parametrization == "box" else -1.0 < start < 1.0)
        if not inside:
            raise SettingError("init", self.init, "a value in [-1, 1] ('box') or in (-1, 1) ('tanh')")
        return self


@dataclasses.dataclass(frozen=True)
class StabilitySettings(_Settings):
    """Stability selection (:func:`~latentjax.weight_stability`): ``pairs`` complementary pairs of
    half-sample fits per class; a dimension is stable when at least ``threshold`` of the ``2 *
    pairs`` fits put it in their top ``q``. Expected false selections per class are at most
    ``q^2 / ((2 threshold - 1) N)``.

    >>> StabilitySettings(pairs=8, q=10, threshold=0.8).validate().pairs
    8
    """

    pairs: int = 8
    q: int = 10
    threshold: float = 0.8

    SECTION: ClassVar[str] = "stability"

    def validate(self, num_dims: int | None = None, num_codes: int | None = None) -> StabilitySettings:
        _number(self.pairs, "pairs", integer=True, low=1)
        _number(self.q, "q", integer=True, low=1, high=num_dims)
        _number(self.threshold, "threshold", low=0.5, high=1, low_open=True)
        if num_codes is not None and num_codes < 2:
            raise SettingError("samples_per_class", num_codes, "at least 2", reason="the fits use complementary halves")
        return self


@dataclasses.dataclass(frozen=True)
class ManipulationSettings(_Settings):
    """Figures 5 and 6: ``samples`` codes per class moved along top-, bottom- and random-``k``
    sets by ``num_alphas`` strengths ``alpha`` from ``-alpha_max`` to ``alpha_max``; the
    dose–response (:mod:`latentjax.analysis.dose_response`) moves the same codes of every
    analysis seed by ``dose_points`` strengths from 0 to ``alpha_max``.

    >>> settings = ManipulationSettings().validate()
    >>> settings.alphas().tolist(), settings.dose_alphas().tolist()[:3]
    ([-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0], [0.0, 0.25, 0.5])
    """

    k: int = 10
    alpha_max: float = 3.0
    num_alphas: int = 7
    samples: int = 8
    dose_points: int = 13

    SECTION: ClassVar[str] = "manipulation"
    SHARED: ClassVar[tuple[str, ...]] = ("k",)  # Table 1 and the finders share the set size

    def validate(self) -> ManipulationSettings:
        _number(self.k, "k", integer=True, low=1)
        _number(self.alpha_max, "alpha_max", low=0, low_open=True)
        _number(self.num_alphas, "num_alphas", integer=True, low=1)
        _number(self.samples, "samples", integer=True, low=1)
        _number(self.dose_points, "dose_points", integer=True, low=2)
        return self

    def alphas(self):
        """``num_alphas`` values from ``-alpha_max`` to ``alpha_max`` (float32)."""
        return np.linspace(-self.alpha_max, self.alpha_max, self.num_alphas).astype(np.float32)

    def dose_alphas(self):
        """``dose_points`` values from 0 to ``alpha_max`` (float32): the dose–response's grid."""
        return np.linspace(0.0, self.alpha_max, self.dose_points).astype(np.float32)


_pytree(LatentSettings, ("threshold",))
_pytree(APCRSettings, ("delta", "eps"))
_pytree(MethodBSettings, MethodBSettings.FLOATS)
# The threshold becomes a count of fits (ceil(threshold * F)): structural, so static.
_pytree(StabilitySettings, ())
_pytree(ManipulationSettings, ("alpha_max",))

#: The converged reading of Method B (docs/method.md): the loss over all codes, ``u`` at a
#: Gauss-Legendre node, ``|dS|`` and the max over signs smoothed, Adam decayed to 0 on a cosine.
CONVERGED_READING = MethodBSettings(
    solver="adam", batch_size=0, xi_nodes=1, smoothing=0.01, schedule="cosine", learning_rate=0.1,
    steps=300,
)

"""Input checks for the analysis functions: clear messages before any compute.

Checks on values (NaN, probabilities, ranges of float settings) only run on concrete values;
under a user's own ``jit`` or ``vmap`` they are tracers and only the shape checks apply.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from latentjax.analysis.outputs import is_attribute_classifier


def is_concrete(x) -> bool:
    """False for tracers (inside a user's jit or vmap), whose values cannot be checked."""
    return not isinstance(x, jax.core.Tracer)


def check_codes(codes, name: str = "codes", ndim: int | None = None, latent_dim: int | None = None):
    """Type, shape and finiteness of latent codes (``[..., N]``): a float array, nothing else.

    Integer codes would be truncated by the models' float math, and a Python list would fail
    deep inside; both are refused here with the fix.
    """
    if not isinstance(codes, (jax.Array, np.ndarray)):
        raise ValueError(
            f"{name} is a {type(codes).__name__}: expected a float array (jax.numpy or NumPy), "
            f"e.g. jnp.asarray({name}, jnp.float32)."
        )
    if not jnp.issubdtype(codes.dtype, jnp.floating):
        raise ValueError(
            f"{name} has dtype {codes.dtype}: expected floating point latent codes, e.g. "
            f"{name}.astype(jnp.float32)."
        )
    shape = jnp.shape(codes)
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"{name} has shape {shape}: expected {ndim} dimensions.")
    if latent_dim is not None and shape[-1] != latent_dim:
        raise ValueError(
            f"{name} has latent width {shape[-1]} (shape {shape}): expected {latent_dim}."
        )
    if 0 in shape:
        raise ValueError(f"{name} has shape {shape}: expected no empty axis.")
    if is_concrete(codes):
        bad = ~np.isfinite(np.asarray(codes))
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name} contains NaN or inf (first at index {where}).")


def scalar_value(value, name: str, *, integer: bool = False):
    """The number ``value`` holds, ``None`` when it is a traced scalar; refuses anything else.

    Floats may arrive as Python numbers, NumPy scalars or 0-d arrays, and inside a caller's
    ``jit``/``vmap`` as tracers, whose value cannot be checked here (only their shape is).
    """
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r}: expected {'an integer' if integer else 'a number'}.")
    if integer:
        if isinstance(value, (int, np.integer)):
            return int(value)
        raise ValueError(f"{name}={value!r}: expected an integer.")
    if isinstance(value, (int, float, np.number)):
        return float(value)
    if isinstance(value, (jax.Array, np.ndarray)) and jnp.ndim(value) == 0 and (
        jnp.issubdtype(jnp.result_type(value), jnp.floating)
        or jnp.issubdtype(jnp.result_type(value), jnp.integer)
    ):
        return float(value) if is_concrete(value) else None
    raise ValueError(f"{name}={value!r}: expected a number.")


def number_problem(
    value, *, integer: bool = False, low=None, high=None, low_open: bool = False,
    high_open: bool = False,
) -> str | None:
    """``None`` when ``value`` is a number of the asked kind and range, else what was expected.

    The one place that decides what counts as a number (never a bool; finite; an integer where
    asked) and words the expectation, for the analysis and the config alike.

    >>> number_problem(3, integer=True, low=1) is None
    True
    >>> number_problem(0.0, low=0, low_open=True), number_problem(1.0, low=0, high=1, high_open=True)
    ('a positive number', 'a number in [0, 1)')
    """
    kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    ok = isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))
    ok = ok and np.isfinite(float(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return None
    noun = "integer" if integer else "number"
    if high is None and low == 0:
        return f"a positive {noun}" if low_open else f"a non-negative {noun}"
    if high is None and low == 1 and integer and not low_open:
        return "a positive integer"
    if low is None and high is None:
        return f"a finite {noun}" if not integer else "an integer"
    left = "(" if low_open else "["
    right = ")" if high_open else "]"
    article = "an" if integer else "a"
    return f"{article} {noun} in {left}{low if low is not None else '-inf'}, {high if high is not None else 'inf'}{right}"


def _check_lower_bound(value, name: str, *, strict: bool, integer: bool = False):
    try:
        number = scalar_value(value, name, integer=integer)
    except ValueError:
        number = float("nan")  # not a number at all: refused below
    if number is None:
        return  # traced: checked by shape only
    low = 1 if integer and strict else 0
    expected = number_problem(
        int(number) if integer and number == number else number, integer=integer, low=low,
        low_open=strict and not integer,
    )
    if expected:
        raise ValueError(f"{name}={value!r}: expected {expected}.")


def check_positive(value, name: str, integer: bool = False):
    _check_lower_bound(value, name, strict=True, integer=integer)


def check_non_negative(value, name: str, integer: bool = False):
    _check_lower_bound(value, name, strict=False, integer=integer)


def as_float(value, dtype=jnp.float32) -> jax.Array:
    """A float setting as a traced-friendly scalar array (so a new value does not recompile)."""
    return jnp.asarray(value, dtype)


def check_k(k, num_dims: int, name: str = "k"):
    if number_problem(k, integer=True, low=1, high=num_dims):
        raise ValueError(f"{name}={k!r}: expected an integer in [1, {num_dims}] (the latent width).")


def check_class_index(j, num_classes: int, name: str = "class index"):
    if number_problem(j, integer=True, low=0, high=num_classes, high_open=True):
        raise ValueError(f"{name} {j!r} is out of range: expected 0 <= {name} < {num_classes}.")


def check_probabilities(probs, source: str = "classify", atol: float = 1e-3, independent: bool = False):
    """``probs[B, C]`` must be non-negative and sum to one along the last axis (a softmax), or
    with ``independent`` lie in ``[0, 1]`` entry by entry (attributes)."""
    if jnp.ndim(probs) != 2:
        raise ValueError(f"{source} returned shape {jnp.shape(probs)}: expected [batch, classes].")
    if is_concrete(probs):
        p = np.asarray(probs, np.float64)
        if independent:
            if not np.all(np.isfinite(p)) or p.min() < -atol or p.max() > 1.0 + atol:
                raise ValueError(
                    f"{source} did not return attribute probabilities: values "
                    f"{p.min():.4g}..{p.max():.4g}; expected each in [0, 1]. Wrap logits with "
                    "jax.nn.sigmoid."
                )
            return
        sums = p.sum(-1)
        if not np.all(np.isfinite(p)) or p.min() < -atol or np.max(np.abs(sums - 1.0)) > atol:
            hint = (
                " Independent attribute probabilities in [0, 1] (sigmoid outputs) are taken "
                "through latentjax.attribute_classifier(classify)."
                if np.all(np.isfinite(p)) and p.min() >= -atol and p.max() <= 1.0 + atol else ""
            )
            raise ValueError(
                f"{source} did not return probabilities: min {p.min():.4g}, row sums "
                f"{sums.min():.4g}..{sums.max():.4g}; expected softmax outputs (non-negative, "
                f"summing to 1). Wrap logits with jax.nn.softmax.{hint}"
            )


#: How far from a probability vector a row of ``classify`` may be (float32 softmax rounding).
PROBABILITY_ATOL = 1e-3


def invalid_probability_rows(
    probs: jax.Array, valid: jax.Array | None = None, independent: bool = False
) -> jax.Array:
    """How many rows of ``probs[..., C]`` are not probability vectors (jittable, cheap).

    A row is invalid when it holds NaN or inf, an entry below ``-PROBABILITY_ATOL``, or sums to
    1 only up to more than ``PROBABILITY_ATOL`` (with ``independent``, attributes: an entry above
    ``1 + PROBABILITY_ATOL``). The analysis counts these inside its jitted loops on every batch
    it evaluates and raises once afterwards (:func:`raise_for_invalid_rows`).

    >>> import jax.numpy as jnp
    >>> int(invalid_probability_rows(jnp.array([[0.5, 0.5], [2.0, -1.0], [jnp.nan, 1.0]])))
    2
    """
    ok = jnp.all(jnp.isfinite(probs), axis=-1) & (jnp.min(probs, axis=-1) >= -PROBABILITY_ATOL)
    if independent:
        ok = ok & (jnp.max(probs, axis=-1) <= 1.0 + PROBABILITY_ATOL)
    else:
        ok = ok & (jnp.abs(jnp.sum(probs, axis=-1) - 1.0) <= PROBABILITY_ATOL)
    bad = ~ok if valid is None else ~ok & valid
    return jnp.sum(bad.astype(jnp.int32))


def raise_for_invalid_rows(count, where: str, independent: bool = False) -> None:
    """Raises when the counted rows of :func:`invalid_probability_rows` are not zero.

    Under a caller's ``jit`` or ``vmap`` the count is a tracer and cannot be checked.
    """
    if not is_concrete(count):
        return
    n = int(jnp.sum(count))
    if n and independent:
        raise ValueError(
            f"classify returned {n} rows that are not attribute probabilities (NaN or inf, or "
            f"outside [0, 1] by more than {PROBABILITY_ATOL}) {where}; expected sigmoid outputs: "
            "wrap logits with jax.nn.sigmoid, and check the generator for NaN."
        )
    if n:
        raise ValueError(
            f"classify returned {n} rows that are not probabilities (NaN or inf, negative, or "
            f"not summing to 1 within {PROBABILITY_ATOL}) {where}; expected softmax outputs: "
            "wrap logits with jax.nn.softmax, and check the generator for NaN."
        )


_invalid_rows_jit = jax.jit(invalid_probability_rows, static_argnames="independent")


def check_probability_array(probs, where: str, independent: bool = False) -> None:
    """:func:`raise_for_invalid_rows` for an array of probabilities already computed."""
    if is_concrete(probs):
        raise_for_invalid_rows(_invalid_rows_jit(probs, independent=independent), where, independent)


@jax.jit
def _probabilities(generate, classify, codes):
    return classify(generate(codes))


def probe_models(
    generate: Callable, classify: Callable, codes, num_classes: int | None = None
) -> int:
    """Runs ``classify(generate(z))`` on two codes; checks the output; returns the class count.

    Cheap (two samples, one cached compiled program per architecture) and done before a sweep,
    so a wrong callable fails in a second, not after an hour. Under a caller's ``jit`` or
    ``vmap`` only the shapes are checked.
    """
    flat = jnp.reshape(codes, (-1, jnp.shape(codes)[-1]))[:2]
    try:
        probs = _probabilities(generate, classify, flat)
    except Exception:  # say which of the user's callables failed, and on what
        try:
            images = jax.eval_shape(generate, flat)
        except Exception as exc:
            raise ValueError(
                f"generate failed on codes of shape {tuple(flat.shape)} (latent width "
                f"{flat.shape[-1]}): {exc}. Expected codes of the generator's latent width."
            ) from exc
        try:
            jax.eval_shape(classify, images)
        except Exception as exc:
            raise ValueError(
                f"classify failed on generated images of shape {tuple(images.shape)}: {exc}"
            ) from exc
        raise
    check_probabilities(probs, independent=is_attribute_classifier(classify))
    if jnp.shape(probs)[0] != jnp.shape(flat)[0]:
        raise ValueError(
            f"classify(generate(z)) returned {jnp.shape(probs)[0]} rows for {jnp.shape(flat)[0]} "
            "codes: expected one row per code."
        )
    found = int(jnp.shape(probs)[-1])
    if num_classes is not None and found != num_classes:
        raise ValueError(
            f"classify returns {found} classes but the codes are grouped into {num_classes} "
            "classes: expected codes of shape [classes, samples, latent]."
        )
    return found


def resolve_classes(generate: Callable, classify: Callable, codes, classes=None) -> jax.Array:
    """Probes the models and returns the class index of each code set ``codes[c]``.

    ``classes=None`` means ``codes[j]`` belongs to class ``j`` (one set per class).
    """
    num_classes = probe_models(generate, classify, codes)
    num_sets = jnp.shape(codes)[0]
    if classes is None:
        if num_sets != num_classes:
            raise ValueError(
                f"codes has {num_sets} code sets but classify returns {num_classes} "
                "classes: pass classes= to say which class each set belongs to."
            )
        return jnp.arange(num_classes)
    if is_concrete(classes):
        for j in np.asarray(classes).tolist():
            check_class_index(j, num_classes)
    if len(classes) != num_sets:
        raise ValueError(
            f"classes has {len(classes)} entries for {num_sets} code sets: expected one each."
        )
    return jnp.asarray(classes)

"""Latent sample sets ``Z_j``: class-conditioned prior samples and inverted real images.

1. Prior samples: draw ``z ~ N(0, I)`` in batches and keep, for each class ``j``, the codes with
   ``argmax Q(G(z)) = j`` and ``Q_j(G(z)) >= tau`` until ``S`` per class. One jitted
   ``lax.while_loop`` fills all classes at once. With an attribute classifier, ``Z_a`` keeps the
   codes with ``Q_a >= 0.5`` and ``Q_a >= tau``: one code may join several attributes' sets.
2. Inversion: ``z* = argmin_z ||G(z) - x||^2 + beta ||z||^2`` by Adam, one ``lax.scan`` per
   image, ``vmap``-ed over images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from latentjax.analysis import validation
from latentjax.analysis.optax_calls import optax_init, optax_update
from latentjax.analysis.outputs import decisions, is_attribute_classifier
from latentjax.analysis.parallel import as_pytree
from latentjax.analysis.settings import LatentSettings


class ClassLatents(NamedTuple):
    """``codes[C, S, N]`` (class ``j``'s codes in row ``j``), ``counts[C]`` found (capped at
    ``S``), and ``draws``, the number of prior samples drawn."""

    codes: jax.Array
    counts: jax.Array
    draws: jax.Array


def sample_class_latents(
    generate: Callable[[jax.Array], jax.Array],
    classify: Callable[[jax.Array], jax.Array],
    key: jax.Array,
    *,
    latent_dim: int,
    num_classes: int,
    samples_per_class: int = 256,
    threshold: float = 0.9,
    batch_size: int = 1024,
    max_draws: int = 1_000_000,
    require_full: bool = True,
) -> ClassLatents:
    """``S`` confident prior codes per class, all classes in one jitted loop.

    Raises ``RuntimeError`` naming the short classes when ``max_draws`` codes did not give ``S``
    per class (unless ``require_full=False``: then unfilled rows are zero and ``counts`` says how
    many are real). ``generate`` and ``classify`` are model pytrees or plain functions; they,
    ``key`` and ``threshold`` are traced, so the call also works under ``jax.vmap`` over keys or
    stacked models (there the short-class check cannot run: read ``counts``).

    >>> import jax, jax.numpy as jnp
    >>> classify = lambda x: jax.nn.softmax(jnp.stack([5 * x[:, 0], -5 * x[:, 0]], -1))
    >>> found = sample_class_latents(lambda z: z, classify, jax.random.key(0), latent_dim=3,
    ...                              num_classes=2, samples_per_class=4, batch_size=16)
    >>> found.codes.shape, found.counts.tolist()
    ((2, 4, 3), [4, 4])
    >>> bool(jnp.all(found.codes[0, :, 0] > 0)) and bool(jnp.all(found.codes[1, :, 0] < 0))
    True
    """
    validation.check_positive(latent_dim, "latent_dim", integer=True)
    validation.check_positive(num_classes, "num_classes", integer=True)
    LatentSettings(samples_per_class, threshold, batch_size, max_draws).validate()
    generate, classify = as_pytree(generate), as_pytree(classify)
    found = validation.probe_models(generate, classify, jnp.zeros((2, latent_dim)))
    if found != num_classes:
        raise ValueError(f"classify returns {found} classes: expected num_classes={num_classes}.")
    result = _sample_jit(
        generate,
        classify,
        key,
        validation.as_float(threshold),
        jnp.int32(-(-max_draws // batch_size)),
        latent_dim=latent_dim,
        num_classes=num_classes,
        samples_per_class=samples_per_class,
        batch_size=batch_size,
    )
    result, invalid = result
    validation.raise_for_invalid_rows(invalid, "while sampling the latent sets", is_attribute_classifier(classify))
    if not validation.is_concrete(result.counts):
        return result  # inside the caller's jit or vmap: counts says how many are real
    counts = result.counts.tolist()
    short = {j: c for j, c in enumerate(counts) if c < samples_per_class}
    if short and require_full:
        raise RuntimeError(
            f"after {int(result.draws)} prior samples, classes {sorted(short)} have only "
            f"{[short[j] for j in sorted(short)]} codes with confidence >= {threshold} (wanted "
            f"{samples_per_class}); raise max_draws, lower threshold, or check the generator."
        )
    return result


def _sample_core(
    generate,
    classify,
    key,
    threshold,
    max_rounds,
    *,
    latent_dim,
    num_classes,
    samples_per_class,
    batch_size,
):
    independent = is_attribute_classifier(classify)
    codes0 = jnp.zeros((num_classes, samples_per_class, latent_dim))
    counts0 = jnp.zeros((num_classes,), jnp.int32)

    def not_done(carry):
        _, counts, rounds, _ = carry
        return jnp.logical_and(jnp.any(counts < samples_per_class), rounds < max_rounds)

    def draw(carry):
        codes, counts, rounds, invalid = carry
        z = jax.random.normal(jax.random.fold_in(key, rounds), (batch_size, latent_dim))
        probs = classify(generate(z))
        invalid = invalid + validation.invalid_probability_rows(probs, independent=independent)
        # member[b, j]: code b joins Z_j (one class at most; any number of attributes).
        member = decisions(probs, independent) & (probs >= threshold)
        ranked = jnp.cumsum(member.astype(jnp.int32), axis=0) - 1  # [B, C]: its place among this batch's
        slot = counts[None, :] + ranked
        # Codes that are not members, or overflow, get slot S, which the scatter drops.
        slot = jnp.where(member & (slot < samples_per_class), slot, samples_per_class)
        rows = jnp.broadcast_to(jnp.arange(num_classes)[None, :], slot.shape)
        codes = codes.at[rows, slot].set(jnp.broadcast_to(z[:, None, :], (*slot.shape, latent_dim)), mode="drop")
        counts = jnp.minimum(counts + jnp.sum(member, axis=0, dtype=jnp.int32), samples_per_class)
        return codes, counts, rounds + 1, invalid

    codes, counts, rounds, invalid = jax.lax.while_loop(
        not_done, draw, (codes0, counts0, jnp.int32(0), jnp.int32(0))
    )
    return ClassLatents(codes, counts, rounds * batch_size), invalid


_sample_jit = jax.jit(
    _sample_core, static_argnames=("latent_dim", "num_classes", "samples_per_class", "batch_size")
)


class Inversion(NamedTuple):
    """``codes[B, N]`` (``z*``), ``reconstruction_error[B]`` (mean squared error per pixel),
    ``losses[B, steps]``, and ``predicted[B]``, the classifier's label of ``G(z*)`` (or -1; with
    an attribute classifier ``predicted[B, A]``, whether ``G(z*)`` has each attribute)."""

    codes: jax.Array
    reconstruction_error: jax.Array
    losses: jax.Array
    predicted: jax.Array


def invert_images(
    generate: Callable[[jax.Array], jax.Array],
    images: jax.Array,
    key: jax.Array,
    *,
    latent_dim: int,
    beta: float = 0.1,
    steps: int = 300,
    learning_rate: float = 0.05,
    classify: Callable[[jax.Array], jax.Array] | None = None,
) -> Inversion:
    """GAN inversion: ``z* = argmin_z ||G(z) - x||^2 + beta ||z||^2`` for each image.

    Adam from ``z0 ~ N(0, I)`` (``key``), ``steps`` steps in a ``lax.scan``, ``vmap``-ed over
    images. With ``classify``, ``predicted`` is ``argmax Q(G(z*))`` so callers can report how often
    the classifier still agrees with the real label.

    >>> import jax, jax.numpy as jnp
    >>> generate = lambda z: jnp.tanh(z)          # a toy "generator" from R^2 to images of 2 pixels
    >>> x = jnp.array([[0.5, -0.3]])
    >>> inv = invert_images(generate, x, jax.random.key(0), latent_dim=2, beta=0.0, steps=300)
    >>> bool(inv.reconstruction_error[0] < 1e-4)
    True
    """
    validation.check_positive(latent_dim, "latent_dim", integer=True)
    validation.check_positive(steps, "steps", integer=True)
    validation.check_positive(learning_rate, "learning_rate")
    validation.check_non_negative(beta, "beta")
    validation.check_codes(images, name="images")
    generate = as_pytree(generate)
    classify = None if classify is None else as_pytree(classify)
    probe = jax.eval_shape(generate, jnp.zeros((1, latent_dim)))
    if probe.shape[1:] != images.shape[1:]:
        raise ValueError(
            f"images have shape {images.shape[1:]} each but generate returns {probe.shape[1:]}: "
            "expected the generator's image shape."
        )
    return _invert_jit(
        generate,
        classify,
        jnp.asarray(images),
        key,
        validation.as_float(beta),
        validation.as_float(learning_rate),
        latent_dim=latent_dim,
        steps=steps,
    )


def _invert_core(generate, classify, images, key, beta, learning_rate, *, latent_dim, steps):
    optimizer = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)

    def loss_fn(z, x):
        return jnp.sum((generate(z[None])[0] - x) ** 2) + beta * jnp.sum(z * z)

    def invert_one(x, key):
        z0 = jax.random.normal(key, (latent_dim,))

        def step(carry, _):
            z, opt_state = carry
            loss, grad = jax.value_and_grad(loss_fn)(z, x)
            updates, opt_state = optax_update(optimizer, grad, opt_state, z)
            return (optax.apply_updates(z, updates), opt_state), loss

        opt_state = optax_init(optimizer, z0)
        (z, _), losses = jax.lax.scan(step, (z0, opt_state), None, length=steps)
        return z, losses

    keys = jax.random.split(key, images.shape[0])
    codes, losses = jax.vmap(invert_one)(images, keys)
    reconstructions = generate(codes)
    error = jnp.mean((reconstructions - images) ** 2, axis=tuple(range(1, images.ndim)))
    if classify is None:
        predicted = jnp.full((images.shape[0],), -1, jnp.int32)
    else:
        probs = classify(reconstructions)
        if is_attribute_classifier(classify):
            predicted = decisions(probs, independent=True)
        else:
            predicted = jnp.argmax(probs, axis=-1).astype(jnp.int32)
    return Inversion(codes, error, losses, predicted)


_invert_jit = jax.jit(_invert_core, static_argnames=("latent_dim", "steps"))

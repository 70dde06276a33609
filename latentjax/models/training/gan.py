"""The GAN: its state, optimisers, train step with the generator's moving average, and
:func:`train_gan_steps` (a sample grid at every checkpoint)."""

from __future__ import annotations

import pathlib
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from latentjax.analysis.optax_calls import optax_update
from latentjax.images import save_image_grid
from latentjax.models.networks import ModelSpec
from latentjax.models.training.loop import State, run_seeds, train_steps


def _gan_optimizer(learning_rate: float, beta1: float) -> optax.GradientTransformation:
    return optax.adam(learning_rate, b1=beta1)


def init_gan_state(config, key: jax.Array) -> State:
    spec = ModelSpec.from_config(config)
    g_key, d_key = jax.random.split(key)
    g_vars = spec.generator().init(g_key, jnp.zeros((1, config.latent_dim)), train=False)
    image = jnp.zeros((1, config.image_size, config.image_size, config.channels))
    d_vars = spec.discriminator().init(d_key, image)
    gt = config.gan_training
    generator_variables = {"params": g_vars["params"], "batch_stats": g_vars["batch_stats"]}
    return {
        "generator": generator_variables,
        # A copy: the train step donates the state, and one buffer cannot be donated twice.
        "generator_ema": jax.tree.map(jnp.copy, generator_variables),
        "discriminator": {"params": d_vars["params"]},
        "generator_opt": _gan_optimizer(gt.generator_learning_rate, gt.beta1).init(
            g_vars["params"]
        ),
        "discriminator_opt": _gan_optimizer(gt.discriminator_learning_rate, gt.beta1).init(
            d_vars["params"]
        ),
    }


def ema_start_step(config, num_examples: int) -> int:
    """The first step whose generator update enters the moving average ``generator_ema``, for a
    training set of ``num_examples``: ``num_examples // batch_size * ema_start_epoch``."""
    gt = config.gan_training
    return num_examples // gt.batch_size * gt.ema_start_epoch


def make_gan_step(config, num_examples: int) -> Callable:
    """One non-saturating GAN step: a discriminator update, then a generator update.

    ``L_D = softplus(-D(x)) + softplus(D(G(z)))``, ``L_G = softplus(-D(G(z')))``. The state also
    carries an exponential moving average of the generator's variables, the weights that are
    exported and drawn (the average of the last updates gives steadier samples than the last
    update alone): ``G_ema <- d G_ema + (1 - d) G`` with ``d = ema_decay`` from step
    :func:`ema_start_step` on, and ``G_ema = G`` before it.
    """
    spec = ModelSpec.from_config(config)
    generator, discriminator = spec.generator(), spec.discriminator()
    gt = config.gan_training
    g_opt = _gan_optimizer(gt.generator_learning_rate, gt.beta1)
    d_opt = _gan_optimizer(gt.discriminator_learning_rate, gt.beta1)
    start = ema_start_step(config, num_examples)

    def step(state, real, labels, key, step):
        del labels  # unconditional GAN
        z_d, z_g = jax.random.normal(key, (2, real.shape[0], config.latent_dim))
        g_vars = state["generator"]
        fake, _ = generator.apply(g_vars, z_d, train=True, mutable=["batch_stats"])
        fake = jax.lax.stop_gradient(fake)

        def d_loss_fn(d_params):
            real_logits = discriminator.apply({"params": d_params}, real)
            fake_logits = discriminator.apply({"params": d_params}, fake)
            loss = jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))
            return loss, (real_logits, fake_logits)

        d_params = state["discriminator"]["params"]
        (d_loss, (real_logits, fake_logits)), d_grads = jax.value_and_grad(
            d_loss_fn, has_aux=True
        )(d_params)
        d_updates, d_opt_state = optax_update(d_opt, d_grads, state["discriminator_opt"], d_params)
        d_params = optax.apply_updates(d_params, d_updates)

        def g_loss_fn(g_params):
            images, updates = generator.apply(
                {"params": g_params, "batch_stats": g_vars["batch_stats"]},
                z_g,
                train=True,
                mutable=["batch_stats"],
            )
            logits = discriminator.apply({"params": d_params}, images)
            return jnp.mean(jax.nn.softplus(-logits)), updates["batch_stats"]

        (g_loss, batch_stats), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_vars["params"]
        )
        g_updates, g_opt_state = optax_update(
            g_opt, g_grads, state["generator_opt"], g_vars["params"]
        )
        new_generator = {
            "params": optax.apply_updates(g_vars["params"], g_updates),
            "batch_stats": batch_stats,
        }
        decay = jnp.where(step >= start, jnp.float32(gt.ema_decay), jnp.float32(0.0))
        new_state = {
            "generator": new_generator,
            # With decay 0 this is exactly the new generator (0 * old + 1 * new).
            "generator_ema": jax.tree.map(
                lambda old, new: decay * old + (1.0 - decay) * new, state["generator_ema"], new_generator
            ),
            "discriminator": {"params": d_params},
            "generator_opt": g_opt_state,
            "discriminator_opt": d_opt_state,
        }
        metrics = {
            "d_loss": d_loss,
            "g_loss": g_loss,
            "d_real": jnp.mean(jax.nn.sigmoid(real_logits)),
            "d_fake": jnp.mean(jax.nn.sigmoid(fake_logits)),
        }
        return new_state, metrics

    return step


def sample_grid_latents(config, n: int = 100) -> jax.Array:
    """Fixed latent codes for the sample grids of a run (the same at every checkpoint)."""
    return jax.random.normal(jax.random.key(config.seed + 1_000_003), (n, config.latent_dim))


def train_gan_steps(config, workdir: pathlib.Path, images, labels, *, stop_after_steps: int | None = None) -> State:
    """Trains the GAN on ``images``, checkpointing into the run folder ``workdir`` with a sample
    grid PNG at every checkpoint. With ``config.model_seeds``, one GAN per seed as one jitted
    program (stacked state, one checkpoint, a sample grid per seed)."""
    seeds = run_seeds(config)
    generator = ModelSpec.from_config(config).generator()
    grid_z = sample_grid_latents(config)

    def write_samples(state, step):
        per_seed = [(None, state)] if seeds is None else [
            (s, jax.tree.map(lambda x, i=i: x[i], state)) for i, s in enumerate(seeds)
        ]
        for seed, one in per_seed:
            tag = "" if seed is None else f"_seed{seed}"
            path = workdir / f"samples{tag}_step{step:07d}.png"
            if not path.exists():
                samples = generator.apply(one["generator_ema"], grid_z, train=False)
                save_image_grid(path, np.asarray(samples), ncols=10)

    return train_steps(
        "gan", config, workdir, images, labels, init_gan_state, make_gan_step, config.gan_training,
        stop_after_steps=stop_after_steps,
        on_checkpoint=write_samples,
    )

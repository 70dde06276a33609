"""Throughput of the analysis core, as ratios measured in one run on one machine.

Prints, for the default Fashion-MNIST architecture (the shipped pretrained models when present,
else random weights of the same size):

- APCR sweep (``latentjax.compute_apcr``): generator+classifier evaluations per second, beside
  (a) a straightforward Python loop over dimensions and offsets calling a jitted forward, and
  (b) the achieved model FLOP/s as a fraction of a large float32 matmul's FLOP/s;
- Method B (``latentjax.optimize_weights``): optimiser steps per second for all classes at once,
  beside the same steps driven by a Python loop of jitted single steps.

On a CPU the sweep runs as the ``latentjax`` command runs it, with one XLA device per core
(:func:`latentjax.use_host_cores`; ``--one-device`` measures without it). The Python loop and
the matmul run on the default device as a user's own code would.

Run:  .venv/bin/python benchmarks/analysis_throughput.py [--samples 4] [--loop-dims 8]
Results go to docs/results.md by hand, with the device this printed.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import optax

import latentjax as lj
from latentjax.analysis import weights as weights_module
from latentjax.models import ModelSpec, make_classify, make_generate


def _timed(fn, *args, repeat=1):
    jax.block_until_ready(fn(*args))  # compile and warm up
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn(*args)
    jax.block_until_ready(out)
    return (time.perf_counter() - start) / repeat


def _models():
    try:
        models = lj.load_pretrained("fashion_mnist")
        return models.generate, models.classify, models.spec.latent_dim, "pretrained"
    except FileNotFoundError:
        from latentjax import config as config_lib

        import pathlib

        root = pathlib.Path(__file__).resolve().parents[1]
        spec = ModelSpec.from_config(config_lib.load_config(root / "configs" / "default.py"))
        key = jax.random.key(0)
        g = spec.generator().init(key, jnp.zeros((1, spec.latent_dim)))
        c = spec.classifier().init(key, jnp.zeros((1, spec.image_size, spec.image_size, 1)))
        return make_generate(spec, g), make_classify(spec, c), spec.latent_dim, "random weights"


def matmul_flops_per_second(n: int = 2048) -> float:
    a = jax.random.normal(jax.random.key(0), (n, n))
    seconds = _timed(jax.jit(lambda a: a @ a), a, repeat=5)
    return 2 * n**3 / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4, help="codes per class (S)")
    parser.add_argument("--m", type=int, default=6)
    parser.add_argument("--loop-dims", type=int, default=8, help="dimensions the Python loop covers")
    parser.add_argument("--weight-steps", type=int, default=20)
    parser.add_argument("--weight-batch", type=int, default=16)
    parser.add_argument("--chunk-size", type=int, default=None)
    parser.add_argument("--one-device", action="store_true", help="no device per CPU core")
    args = parser.parse_args()
    if not args.one_device:
        lj.use_host_cores()

    generate, classify, latent_dim, which = _models()
    num_classes = int(classify(generate(jnp.zeros((1, latent_dim)))).shape[-1])
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}) x{jax.local_device_count()}, "
          f"models: {which}")
    codes = jax.random.normal(jax.random.key(1), (num_classes, args.samples, latent_dim))

    # --- APCR sweep
    evals = num_classes * args.samples * (latent_dim * 2 * args.m + 1)
    sweep = lambda c: lj.compute_apcr(generate, classify, c, m=args.m, chunk_size=args.chunk_size).apcr
    sweep_seconds = _timed(sweep, codes)
    sweep_rate = evals / sweep_seconds

    forward = jax.jit(lambda z: classify(generate(z)))
    forward(codes[0]).block_until_ready()
    start = time.perf_counter()
    loop_evals = 0
    for j in range(num_classes):
        base = forward(codes[j])
        loop_evals += args.samples
        for i in range(args.loop_dims):
            for k in [k for k in range(-args.m, args.m + 1) if k != 0]:
                scores = forward(codes[j].at[:, i].add(0.5 * k))[:, j]
                loop_evals += args.samples
    jax.block_until_ready((base, scores))
    loop_rate = loop_evals / (time.perf_counter() - start)

    flops_per_eval = jax.jit(forward).lower(codes[0]).compile().cost_analysis()
    if isinstance(flops_per_eval, list):
        flops_per_eval = flops_per_eval[0]
    flops_per_eval = flops_per_eval.get("flops", float("nan")) / args.samples
    peak = matmul_flops_per_second()
    print(f"APCR sweep: C={num_classes} S={args.samples} N={latent_dim} m={args.m}: "
          f"{evals} evaluations in {sweep_seconds:.2f} s = {sweep_rate:.0f} evaluations/s")
    print(f"  Python loop over dims and offsets (jitted forward, batch S): {loop_rate:.0f} "
          f"evaluations/s -> sweep is {sweep_rate / loop_rate:.1f}x faster")
    print(f"  model FLOPs per evaluation {flops_per_eval / 1e6:.2f} MFLOP; achieved "
          f"{sweep_rate * flops_per_eval / 1e9:.1f} GFLOP/s = {sweep_rate * flops_per_eval / peak:.2f} "
          f"of a 2048^2 float32 matmul ({peak / 1e9:.1f} GFLOP/s)")

    # --- Method B
    key = jax.random.key(2)
    steps = args.weight_steps
    opt = lambda c: lj.optimize_weights(
        generate, classify, c, key, steps=steps, batch_size=args.weight_batch
    ).weights
    scan_seconds = _timed(opt, codes)
    scan_rate = steps / scan_seconds

    optimizer = optax.adam(1e-2)
    targets = jnp.arange(num_classes)

    @jax.jit
    def one_step(w, opt_state, step_key):
        def per_class(w, c, t, k):
            idx = jax.random.randint(k, (args.weight_batch,), 0, c.shape[0])
            xi = jax.random.uniform(k, (args.weight_batch,), minval=1.0, maxval=3.0)
            base = classify(generate(c[idx]))[:, t]
            return jax.value_and_grad(weights_module.weight_objective)(
                w, generate, classify, c[idx], xi, t, base, 0.2
            )

        keys = jax.random.split(step_key, num_classes)
        _, grads = jax.vmap(per_class)(w, codes, targets, keys)
        with jax.numpy_dtype_promotion("standard"):
            updates, opt_state = optimizer.update(grads, opt_state, w)
        return optax.projections.projection_box(optax.apply_updates(w, updates), -1.0, 1.0), opt_state

    w = jnp.full((num_classes, latent_dim), 0.5)
    state = optimizer.init(w)
    jax.block_until_ready(one_step(w, state, key))
    start = time.perf_counter()
    for s in range(steps):
        w, state = one_step(w, state, jax.random.fold_in(key, s))
    jax.block_until_ready(w)
    loop_step_rate = steps / (time.perf_counter() - start)
    print(f"Method B: C={num_classes} batch={args.weight_batch}: lax.scan {scan_rate:.2f} steps/s; "
          f"Python loop of jitted steps {loop_step_rate:.2f} steps/s "
          f"(scan/loop = {scan_rate / loop_step_rate:.2f})")


if __name__ == "__main__":
    main()

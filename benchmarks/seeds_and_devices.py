"""Many model seeds in one program, all devices busy, and compilations per call: ratios in one run.

Prints, for the default Fashion-MNIST architecture (random weights of the shipped shapes, so no
data set is needed; the speed of a forward pass does not depend on the weights' values):

1. **GAN training steps**, ``n`` seeds: one ``vmap``-ped jitted step over the stacked states
   against a Python loop calling the single-seed jitted step once per seed;
2. **APCR sweep**, ``n`` generator seeds: ``jax.vmap(compute_apcr)`` over the stacked generators
   against a Python loop of ``compute_apcr`` over seeds;
3. **APCR sweep of one model on 1 against D devices** (each in a fresh process, since the
   device count is fixed when XLA starts; on a CPU the D devices are XLA's fake host devices,
   ``--xla_force_host_platform_device_count``, sharing the same cores);
4. **compilations per call** when the models are reloaded (new weights) and the float settings
   change, for the way the analysis took models before (static closures, floats as static
   arguments, an ``optax.adam`` built per call) and now (pytrees, traced floats).

Run:  .venv/bin/python benchmarks/seeds_and_devices.py [--seeds 4] [--devices 8]
Results go to docs/results.md by hand, with the device this printed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _timed(fn, repeat=3):
    import jax

    jax.block_until_ready(fn())  # compile and warm up
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - start)
    return best


def _config():
    sys.path.insert(0, REPO)
    from latentjax import config as config_lib

    return config_lib.apply_overrides(
        config_lib.load_config(os.path.join(REPO, "configs", "default.py")),
        {"gan_training.ema_start_epoch": 0},
    )


def _models(config, seed):
    import jax
    import jax.numpy as jnp

    from latentjax.models import ModelSpec, make_classify, make_generate

    spec = ModelSpec.from_config(config)
    g_key, c_key = jax.random.split(jax.random.key(seed))
    g = spec.generator().init(g_key, jnp.zeros((1, spec.latent_dim)))
    c = spec.classifier().init(c_key, jnp.zeros((1, spec.image_size, spec.image_size, spec.channels)))
    return make_generate(spec, g), make_classify(spec, c)


def training_steps(n: int, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    from latentjax.analysis.parallel import stack_pytrees
    from latentjax.models import training

    config = _config()
    batch = config.gan_training.batch_size
    images = jax.random.uniform(jax.random.key(0), (batch * n, 28, 28, 1), minval=-1.0, maxval=1.0)
    labels = jnp.zeros((batch * n,), jnp.int32)
    step_fn = training.make_gan_step(config, len(labels))
    single = jax.jit(step_fn)
    stacked = jax.jit(jax.vmap(step_fn, in_axes=(0, 0, 0, 0, None)))

    @jax.jit
    def unrolled_step(states, real, labels, keys, step):
        outs = [step_fn(jax.tree.map(lambda x: x[i], states), real[i], labels[i], keys[i], step)[0]
                for i in range(n)]
        return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)
    states = [training.init_gan_state(config, jax.random.key(s)) for s in range(n)]
    stack = stack_pytrees(states)
    real = images.reshape(n, batch, 28, 28, 1)
    keys = jax.random.split(jax.random.key(1), n)

    def loop():
        out = None
        for _ in range(steps):
            out = [single(states[s], real[s], labels[:batch], keys[s], 0)[0] for s in range(n)]
        return out

    def vmapped():
        out = None
        for _ in range(steps):
            out = stacked(stack, real, labels.reshape(n, batch), keys, 0)[0]
        return out

    def unrolled():
        out = None
        for _ in range(steps):
            out = unrolled_step(stack, real, labels.reshape(n, batch), keys, 0)
        return out

    loop_s, vmap_s, unrolled_s = _timed(loop), _timed(vmapped), _timed(unrolled)
    return {"seeds": n, "steps": steps, "loop_seed_steps_per_s": n * steps / loop_s,
            "vmap_seed_steps_per_s": n * steps / vmap_s, "speedup": loop_s / vmap_s,
            "unrolled_seed_steps_per_s": n * steps / unrolled_s, "unrolled_speedup": loop_s / unrolled_s}


def apcr_over_seeds(n: int, samples: int, m: int) -> dict:
    import jax

    import latentjax as lj

    config = _config()
    generators = [_models(config, s)[0] for s in range(n)]
    _, classify = _models(config, 0)
    codes = jax.random.normal(jax.random.key(2), (10, samples, config.latent_dim))
    stack = lj.stack_pytrees(generators)
    one = lambda g: lj.compute_apcr(g, classify, codes, m=m).apcr
    loop = lambda: [one(g) for g in generators]
    vmapped_fn = jax.jit(jax.vmap(one))
    vmapped = lambda: vmapped_fn(stack)
    evals = n * 10 * samples * (config.latent_dim * 2 * m + 1)
    loop_s, vmap_s = _timed(loop, 2), _timed(vmapped, 2)
    return {"seeds": n, "evaluations": evals, "loop_evals_per_s": evals / loop_s,
            "vmap_evals_per_s": evals / vmap_s, "speedup": loop_s / vmap_s}


def apcr_one_model(samples: int, m: int) -> dict:
    import jax

    import latentjax as lj

    config = _config()
    generate, classify = _models(config, 0)
    codes = jax.random.normal(jax.random.key(2), (10, samples, config.latent_dim))
    evals = 10 * samples * (config.latent_dim * 2 * m + 1)
    seconds = _timed(lambda: lj.compute_apcr(generate, classify, codes, m=m).apcr, 2)
    return {"devices": jax.local_device_count(), "platform": jax.default_backend(),
            "evals_per_s": evals / seconds}


def compilations(calls: int) -> dict:
    import jax
    import jax.numpy as jnp
    import optax

    import latentjax as lj
    from latentjax.analysis import apcr as apcr_module
    from latentjax.analysis import weights as weights_module

    config = _config()
    codes = jax.random.normal(jax.random.key(2), (10, 2, config.latent_dim))
    compiled = []

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiled.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)

    # Before: the model was a closure over its weights and a static argument, so was every float
    # (each a constant of the program: jnp.float32 of a static Python float).
    def constants(core, first_float, last_float):
        def with_constants(*args, **kwargs):
            args = [jnp.float32(x) if first_float <= i <= last_float else x for i, x in enumerate(args)]
            return core(*args, **kwargs)
        return with_constants

    old_apcr = jax.jit(constants(apcr_module._apcr_core, 4, 5), static_argnums=(0, 1, 4, 5),
                       static_argnames=("m", "relative", "signed", "chunk_size", "mesh"))
    old_weights = jax.jit(constants(weights_module._optimize_all, 5, 9),
                          static_argnums=(0, 1, 5, 6, 7, 8, 9),
                          static_argnames=("steps", "batch_size", "optimizer", "parametrization"))

    def closures(seed):
        generate, classify = _models(config, seed)
        return (lambda z: generate(z)), (lambda x: classify(x))

    def count(fn):
        fn(0)  # the first call compiles in both designs; count the calls after it
        compiled.clear()
        for i in range(1, calls + 1):
            jax.block_until_ready(fn(i))
        return len(compiled) / calls

    def before_apcr(i):
        g, c = closures(i)  # a reloaded model
        return old_apcr(g, c, codes, jnp.arange(10), 0.5 + 0.1 * i, 1e-6, m=1, relative=True,
                        signed=False, chunk_size=512, mesh=None)

    def before_weights(i):
        g, c = closures(0)  # the same model each call: the optimiser built per call recompiles
        return old_weights(g, c, codes, jnp.arange(10), jax.random.key(0), 0.2, 1.0, 3.0, 1e-2,
                           0.5, steps=2, batch_size=2, optimizer=optax.adam(1e-2),
                           parametrization="box")

    def after_apcr(i):
        g, c = _models(config, i)
        return lj.compute_apcr(g, c, codes, m=1, delta=0.5 + 0.1 * i).apcr

    def after_weights(i):
        g, c = _models(config, i)
        return lj.optimize_weights(g, c, codes, jax.random.key(0), steps=2, batch_size=2,
                                   learning_rate=1e-2 * (1 + i), lam=0.1 * i).weights

    return {"calls": calls,
            "apcr_before": count(before_apcr), "apcr_after": count(after_apcr),
            "weights_before": count(before_weights), "weights_after": count(after_weights)}


PARTS = {"training": training_steps, "apcr_seeds": apcr_over_seeds, "apcr_one": apcr_one_model,
         "compilations": compilations}


def _in_process(part: str, devices: int, **kwargs) -> dict:
    env = dict(os.environ)
    if devices > 1:
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + f" --xla_force_host_platform_device_count={devices}").strip()
    out = subprocess.run(
        [sys.executable, __file__, "--part", part, "--kwargs", json.dumps(kwargs)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=4, help="model seeds n")
    parser.add_argument("--devices", type=int, default=8, help="fake CPU devices for part 3")
    parser.add_argument("--train-steps", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2, help="codes per class S")
    parser.add_argument("--m", type=int, default=2)
    parser.add_argument("--part", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:  # a child process: one measurement, printed as JSON
        print(json.dumps(PARTS[args.part](**json.loads(args.kwargs))))
        return

    import jax

    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{jax.local_device_count()} device(s), {os.cpu_count()} CPU cores")
    t = _in_process("training", 1, n=args.seeds, steps=args.train_steps)
    print(f"GAN training, {t['seeds']} seeds x {t['steps']} steps: Python loop over seeds "
          f"{t['loop_seed_steps_per_s']:.2f} seed-steps/s; one program: vmapped "
          f"{t['vmap_seed_steps_per_s']:.2f} ({t['speedup']:.2f}x), seeds unrolled "
          f"{t['unrolled_seed_steps_per_s']:.2f} ({t['unrolled_speedup']:.2f}x)")
    a = _in_process("apcr_seeds", 1, n=args.seeds, samples=args.samples, m=args.m)
    print(f"APCR, {a['seeds']} generator seeds ({a['evaluations']} evaluations): vmapped "
          f"{a['vmap_evals_per_s']:.0f} evaluations/s, Python loop over seeds {a['loop_evals_per_s']:.0f} "
          f"-> {a['speedup']:.2f}x")
    if jax.default_backend() == "cpu":
        one = _in_process("apcr_one", 1, samples=args.samples * args.seeds, m=args.m)
        many = _in_process("apcr_one", args.devices, samples=args.samples * args.seeds, m=args.m)
        print(f"APCR of one model: 1 device {one['evals_per_s']:.0f} evaluations/s, {many['devices']} "
              f"fake CPU devices {many['evals_per_s']:.0f} -> {many['evals_per_s'] / one['evals_per_s']:.2f}x")
    else:
        many = apcr_one_model(args.samples * args.seeds, args.m)
        print(f"APCR of one model on {many['devices']} {many['platform']} devices: "
              f"{many['evals_per_s']:.0f} evaluations/s")
    c = _in_process("compilations", 1, calls=3)
    print(f"compilations per call: compute_apcr (new model and delta each call) "
          f"before {c['apcr_before']:.1f}, now {c['apcr_after']:.1f}; optimize_weights "
          f"before {c['weights_before']:.1f} (same model, an optax.adam built per call), now "
          f"{c['weights_after']:.1f} (new model, learning rate and lam each call)")


if __name__ == "__main__":
    main()

"""Does one local optimiser's answer to Method B move when its input moves by a rounding error?

On the shipped Fashion-MNIST models at make run's S = 16 (analysis seed 0's codes), one program
optimises the first ``classes`` class code sets and the same sets times (1 + 1e-6), with the
same key, on the deterministic loss (all codes, one Gauss-Legendre node, rounded |.| and max).
It prints, per class, both runs' final losses, how many of the top-10 |w| they share, and the
largest change of w. Two runs that reach one minimum agree to about 1e-6; two that end in
different minima differ in loss as well as in w.

Run (the recorded table is docs/results.md, "Method B: one answer?"):

    .venv/bin/python benchmarks/method_b_paths.py --classes 2 --steps 300 \
        '{"optimizer": ["sgd", 0.2, 0.0], "smoothing": 0.01}'

Options in the JSON go to ``optimize_weights``; ``"optimizer": ["sgd", lr, momentum]`` is
gradient descent with its learning rate decayed from ``lr`` to 0 on a cosine.
"""
import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import latentjax as lj
from latentjax import config as C
from latentjax.experiment import stages
from latentjax.models.pretrained import load_pretrained

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("options", nargs="?", default="{}", help="optimize_weights options as JSON")
parser.add_argument("--classes", type=int, default=2)
parser.add_argument("--steps", type=int, default=300)
args = parser.parse_args()

config = C.apply_overrides(C.load_config("default"), {"analysis.seeds": (0,)})
models = load_pretrained("fashion_mnist")
a = config.analysis
latents = stages.class_latents(models.generate, models.classify, stages.latent_settings(a), a.seeds, latent_dim=100, num_classes=10)
codes = jnp.asarray(latents.codes)[0, : args.classes]
n = args.classes
options = dict(solver="adam", batch_size=0, xi_nodes=1, smoothing=0.01, schedule="cosine",
               learning_rate=0.1, steps=args.steps)
options.update(json.loads(args.options))
if "optimizer" in options:
    kind, lr, momentum = options.pop("optimizer")
    assert kind == "sgd", f"optimizer {kind!r}: expected 'sgd'"
    schedule = optax.cosine_decay_schedule(lr, args.steps)
    options.update(schedule="constant", optimizer=optax.sgd(schedule, momentum=momentum or None))
start = time.perf_counter()
result = lj.optimize_weights(
    models.generate, models.classify, jnp.concatenate([codes, codes * (1 + 1e-6)]),
    jax.random.key(0), classes=jnp.tile(jnp.arange(n), 2), **options,
)
w, losses = np.asarray(result.weights), np.asarray(result.losses)
print(json.dumps(dict(
    options={k: v for k, v in json.loads(args.options).items()}, steps=args.steps,
    seconds=round(time.perf_counter() - start, 1),
    final_loss=[[round(float(losses[c, -1]), 5), round(float(losses[n + c, -1]), 5)] for c in range(n)],
    top10_shared=[len(set(np.argsort(-np.abs(w[c]))[:10]) & set(np.argsort(-np.abs(w[n + c]))[:10])) for c in range(n)],
    max_abs_w_change=round(float(np.abs(w[:n] - w[n:]).max()), 4),
)))

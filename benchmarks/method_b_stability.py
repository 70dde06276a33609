"""Does Method B give one answer? Variants on the shipped models at make run's S = 16.

For each variant (a JSON object of ``optimize_weights`` options), one program optimises three
stacks of the 10 class code sets: seed 0's codes, the same codes times (1 + 1e-6), and seed 1's
codes. It prints the mean Jaccard overlap of the top-10 sets (|w|) between the first two (the
perturbation) and between the first and third (two analysis seeds), the largest change of w, the
median gap between the 10th and 11th largest |w|, and the seconds the variant took.

Run (the recorded table is docs/results.md, "Method B: one answer?"):

    .venv/bin/python benchmarks/method_b_stability.py \
        '{"converged": {}, "sampled": {"solver": "adam", "batch_size": 8, "xi_nodes": 0,
          "smoothing": 0.0, "schedule": "constant", "learning_rate": 0.03, "steps": 250}}'
"""
import sys, time, json
import latentjax as lj
lj.use_host_cores()
import jax, jax.numpy as jnp, numpy as np
from latentjax import config as C
from latentjax.experiment import stages
from latentjax.models.pretrained import load_pretrained

config = C.load_config("configs/default.py")
a = C.apply_overrides(config, {"analysis.seeds": (0, 1)}).analysis
m = load_pretrained("fashion_mnist")
lat = stages.class_latents(m.generate, m.classify, stages.latent_settings(a), a.seeds, latent_dim=100, num_classes=10)
codes = jnp.asarray(lat.codes)  # [2, 10, 16, 100]
sets = jnp.concatenate([codes[0], codes[0] * (1 + 1e-6), codes[1]])  # [30, 16, 100]
keys0 = jax.vmap(lambda c: jax.random.fold_in(jax.random.key(1), c))(jnp.arange(10))
keys1 = jax.vmap(lambda c: jax.random.fold_in(jax.random.key(2), c))(jnp.arange(10))
keys = jnp.concatenate([keys0, keys0, keys1])
classes = jnp.tile(jnp.arange(10), 3)

def jac(x, y):
    return np.mean([len(set(a) & set(b)) / len(set(a) | set(b)) for a, b in zip(x, y)])

def topk(w, k=10):
    return [list(np.argsort(-np.abs(np.asarray(r)), kind="stable")[:k]) for r in w]

variants = json.loads(sys.argv[1])
for name, opts in variants.items():
    t = time.time()
    loop = opts.pop("loop", "auto")
    r = lj.optimize_weights(m.generate, m.classify, sets, keys, classes=classes, loop=loop, **opts)
    w = np.asarray(r.weights)
    s0, sp, s1 = topk(w[:10]), topk(w[10:20]), topk(w[20:])
    srt = -np.sort(-np.abs(w[:10]), axis=1)
    gap = srt[:, 9] - srt[:, 10]
    print(json.dumps(dict(variant=name, opts=opts, seconds=round(time.time() - t, 1),
        jaccard_perturbed=round(jac(s0, sp), 3), per_class_perturbed=[round(jac([x], [y]), 2) for x, y in zip(s0, sp)],
        max_abs_w_change=float(np.abs(w[:10] - w[10:20]).max()), jaccard_seeds=round(jac(s0, s1), 3),
        gap10_11_median=float(np.median(gap)), loss_end=float(np.asarray(r.losses)[:10, -1].mean()))), flush=True)

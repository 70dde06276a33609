"""Does stability selection converge? Method B's and Method A's selection probabilities on the
shipped Fashion-MNIST models, from independent key sets and from codes moved by 1e-6.

On one set of ``S`` confident codes per class (analysis seed 0), it runs ``weight_fits`` three
times with ``P`` complementary pairs each: key 1, key 2 (other halves, other fits), and key 1 on
the codes times (1 + 1e-6); each fit keeps snapshots after the given steps, so every shorter fit
length is measured from the same runs. Method A's per-code APCR comes from one APCR pass. All
fit scores go to ``--out`` (an .npz); then, for every number of pairs (the first ``p`` of each
run), fit length and ``pi_thr``, it prints how far the two key sets' ``pi`` lie apart in units
of their Monte Carlo error, the stable sets' agreement, and how many dimensions lie within two
standard errors of the threshold. ``--analyse-only`` reads the .npz again.

Run (the recorded table is docs/results.md, "Stability selection"):

    .venv/bin/python benchmarks/stability_convergence.py --samples 48 --pairs 12 \
        --snapshots 15,30,60 --out runs/stability_convergence.npz
"""
import argparse
import json
import os
import time

import numpy as np

parser = argparse.ArgumentParser()
parser.add_argument("--samples", type=int, default=48)
parser.add_argument("--pairs", type=int, default=12)
parser.add_argument("--snapshots", default="15,30,60")
parser.add_argument("--q", type=int, default=10)
parser.add_argument("--out", default="runs/stability_convergence.npz")
parser.add_argument("--analyse-only", action="store_true")
parser.add_argument("--plot", default="", help="write agreement against the number of fits as a PNG here")
args = parser.parse_args()
snapshots = tuple(int(x) for x in args.snapshots.split(","))

import latentjax as lj  # noqa: E402

lj.use_host_cores()
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from latentjax import config as C  # noqa: E402
from latentjax.analysis import stability  # noqa: E402
from latentjax.experiment import stages  # noqa: E402
from latentjax.models.pretrained import load_pretrained  # noqa: E402

config = C.load_config("configs/default.py")
a = C.apply_overrides(config, {"analysis.seeds": (0,), "analysis.latents.samples_per_class": args.samples}).analysis
method_b = stages.method_b_settings(a).keywords()
method_b.pop("steps")  # set per measurement below

if not args.analyse_only:
    m = load_pretrained("fashion_mnist")
    start = time.time()
    codes = jnp.asarray(stages.class_latents(m.generate, m.classify, stages.latent_settings(a), a.seeds, latent_dim=100, num_classes=10).codes[0])
    print(f"latent sets {codes.shape} in {time.time() - start:.0f} s", flush=True)
    saved = {"codes": np.asarray(codes)}
    start = time.time()
    apcr = stages.correlation_scores(m.generate, m.classify, stages.apcr_settings(a), lj.ClassLatents(codes[None], None, None))
    saved["per_code_apcr"] = np.asarray(apcr.per_code[0])
    saved["apcr_directions"] = np.asarray(apcr.directions[0])
    print(f"APCR in {time.time() - start:.0f} s", flush=True)
    runs = {"key1": (codes, 1), "key2": (codes, 2), "key1_perturbed": (codes * (1 + 1e-6), 1)}
    for name, (run_codes, seed) in runs.items():
        start = time.time()
        fits = stability.weight_fits(
            m.generate, m.classify, run_codes, jax.random.key(seed), pairs=args.pairs,
            steps=max(snapshots), snapshot_steps=snapshots, **method_b,
        )
        saved[f"{name}_snapshots"] = np.asarray(fits.snapshots)  # [F, C, T, N]
        print(f"{name}: {2 * args.pairs} fits x 10 classes x {max(snapshots)} steps in {time.time() - start:.0f} s", flush=True)
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        np.savez(args.out + ".partial.npz", **saved)
    os.replace(args.out + ".partial.npz", args.out)

saved = dict(np.load(args.out))


def stab(fit_scores, threshold):
    return stability.selection_stability(jnp.asarray(fit_scores), q=args.q, threshold=threshold)


def jaccard(x, y):
    both, either = np.sum(x & y, -1), np.sum(x | y, -1)
    return np.where(either > 0, both / np.maximum(either, 1), 1.0)


def top_k(r, k=10):
    return np.asarray(lj.top_k_mask(stability.stable_ranking(r), k))


rows = []
for t_index, steps in enumerate(snapshots):
    for pairs in sorted({1, 2, 4, 6, 8, args.pairs} & set(range(1, args.pairs + 1))):
        scores = {name: saved[f"{name}_snapshots"][: 2 * pairs, :, t_index] for name in ("key1", "key2", "key1_perturbed")}
        for threshold in (0.6, 0.7, 0.8, 0.9):
            r = {name: stab(s, threshold) for name, s in scores.items()}
            p1, p2, pp = (np.asarray(r[n].probability) for n in ("key1", "key2", "key1_perturbed"))
            se = np.sqrt(np.asarray(r["key1"].standard_error) ** 2 + np.asarray(r["key2"].standard_error) ** 2)
            s1, s2, sp = (np.asarray(r[n].stable) for n in ("key1", "key2", "key1_perturbed"))
            near = np.abs(p1 - threshold) <= 2 * np.asarray(r["key1"].standard_error)
            differ = s1 != s2
            rows.append(dict(
                steps=steps, pairs=pairs, fits=2 * pairs, threshold=threshold,
                max_pi_gap=round(float(np.abs(p1 - p2).max()), 3),
                share_gap_over_2se=round(float(np.mean(np.abs(p1 - p2) > 2 * np.maximum(se, 1e-9))), 4),
                max_pi_gap_perturbed=round(float(np.abs(p1 - pp).max()), 3),
                share_gap_perturbed_over_2se=round(float(np.mean(
                    np.abs(p1 - pp) > 2 * np.maximum(np.sqrt(np.asarray(r["key1"].standard_error) ** 2
                                                             + np.asarray(r["key1_perturbed"].standard_error) ** 2), 1e-9))), 4),
                stable_differ_perturbed=int((s1 != sp).sum()),
                stable_differ_perturbed_not_near=int(((s1 != sp) & ~near & ~(np.abs(pp - threshold) <= 2 * np.asarray(r["key1_perturbed"].standard_error))).sum()),
                stable_sizes=s1.sum(-1).tolist(),
                stable_jaccard_keys=round(float(jaccard(s1, s2).mean()), 3),
                stable_jaccard_perturbed=round(float(jaccard(s1, sp).mean()), 3),
                stable_differ_keys=int(differ.sum()),
                stable_differ_keys_not_near=int((differ & ~near & ~(np.abs(p2 - threshold) <= 2 * np.asarray(r["key2"].standard_error))).sum()),
                near_threshold=int(near.sum()),
                top10_jaccard_keys=round(float(jaccard(top_k(r["key1"]), top_k(r["key2"])).mean()), 3),
                top10_jaccard_perturbed=round(float(jaccard(top_k(r["key1"]), top_k(r["key1_perturbed"])).mean()), 3),
            ))
            print(json.dumps(rows[-1]), flush=True)

# Method A on the same halves (key 1 and key 2).
for pairs in sorted({2, 4, 8, args.pairs}):
    for threshold in (0.7, 0.9):
        ra = [stability.apcr_stability(saved["per_code_apcr"], jax.random.key(s), pairs=pairs, q=args.q, threshold=threshold) for s in (1, 2)]
        s1, s2 = (np.asarray(x.stable) for x in ra)
        print(json.dumps(dict(method="A", pairs=pairs, threshold=threshold,
                              max_pi_gap=round(float(np.abs(np.asarray(ra[0].probability) - np.asarray(ra[1].probability)).max()), 3),
                              stable_sizes=s1.sum(-1).tolist(), stable_jaccard_keys=round(float(jaccard(s1, s2).mean()), 3))), flush=True)

if args.plot:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
    measures = (("stable_jaccard_keys", "stable sets {π ≥ π_thr}"), ("top10_jaccard_keys", "top 10 of π"))
    for ax, (measure, title) in zip(axes, measures):
        for steps in snapshots:
            for threshold in ((0.7,) if measure.startswith("top10") else (0.6, 0.7, 0.8)):
                chosen = [r for r in rows if r["steps"] == steps and r["threshold"] == threshold]
                label = f"{steps} steps" + ("" if measure.startswith("top10") else f", π_thr {threshold}")
                ax.plot([r["fits"] for r in chosen], [r[measure] for r in chosen], marker="o", label=label)
        ax.set_xlabel("fits per class F = 2P")
        ax.set_title(f"two independent key sets: Jaccard of the {title}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("mean Jaccard over classes")
    for ax in axes:
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=110)
    print(f"wrote {args.plot}")

"""The paper end to end: models -> latent sets -> Methods A and B -> Table 1 -> manipulation.

``reproduce(config, workdir)`` writes into a fresh run directory:

- ``artefacts/<stage>/``: Orbax checkpoints of every stage's arrays (latent sets, APCR matrix and
  curves, ``w*`` and loss curves per seed, sets, manipulation results, inverted codes), so a
  notebook reloads them with :func:`load_artefact` instead of recomputing;
- ``results.json``: every number, with the config and the library version;
- the figures as PNG and ``report.md`` / ``report.html`` (see :mod:`latentjax.report`).

Each stage is saved when it finishes; a resumed run (``resume=True``) loads finished stages and
computes only the rest. This is where models, data and the analysis meet; the analysis modules
themselves know nothing of either.
"""

from __future__ import annotations

import json
import os
import pathlib
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

import latentjax
from latentjax import data
from latentjax.experiment import workflows
from latentjax.models import checkpoints
from latentjax.analysis.apcr import compute_apcr
from latentjax.analysis.latents import invert_images, sample_class_latents
from latentjax.analysis.manipulation import compare_sets
from latentjax.models.pretrained import load_pretrained
from latentjax.analysis.sets import chance_level, controlling_set, intersection_ratio, top_k_mask
from latentjax.analysis.structure import knn_class_accuracy, tsne_embedding
from latentjax.models.training import prepare_run_directory
from latentjax.analysis.weights import optimize_weights

#: The paper's Table 1 (Fashion-MNIST, classes 0..9).
PAPER_TABLE_1 = (0.7, 0.9, 0.7, 0.8, 0.4, 1.0, 0.7, 0.9, 0.7, 0.7)


def default_workdir(config) -> pathlib.Path:
    """``runs/reproduce-<dataset>-<UTC time>``: a new name for every run."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return pathlib.Path("runs") / f"reproduce-{config.dataset}-{stamp}"


def summary(results: dict) -> str:
    """A few lines for the terminal: Table 1 ours beside the paper's, and the manipulation."""
    ir = results["intersection_ratio"]
    paper = results["paper_table_1"]
    lines = [f"Table 1 (K={results['k']}, chance {results['chance_level']:.2f}): class, ours (mean ± sd over seeds), paper"]
    for j, name in enumerate(results["class_names"]):
        theirs = f"{paper[j]:.1f}" if paper else "-"
        lines.append(f"  {j} {name:<12} {ir['mean_per_class'][j]:.2f} ± {ir['std_per_class'][j]:.2f}   {theirs}")
    lines.append(f"  mean           {ir['mean']:.2f} ± {ir['std_of_seed_means']:.2f}   {np.mean(paper):.2f}" if paper else f"  mean {ir['mean']:.2f}")
    same = results["manipulation"]["apcr_same"]
    lines.append("Same-class manipulation at alpha max (APCR sets): flip rate " + ", ".join(
        f"{name}-K {100 * same[name]['rate_at_alpha_max']:.0f}%" for name in ("top", "bottom", "random")))
    return "\n".join(lines)


def load_artefact(workdir: str | os.PathLike, stage: str) -> dict:
    """The arrays a finished stage saved, e.g. ``load_artefact(run, 'seed0/apcr')['apcr']``."""
    arrays, _ = checkpoints.load_final(pathlib.Path(workdir) / "artefacts" / stage)
    return arrays


def _stage(workdir: pathlib.Path, name: str, compute: Callable[[], dict], log) -> dict:
    path = workdir / "artefacts" / name
    if path.exists():
        log(f"stage {name}: finished earlier, loaded")
        return load_artefact(workdir, name)
    start = time.perf_counter()
    log(f"stage {name}: running")
    arrays = jax.tree.map(np.asarray, compute())
    checkpoints.save_final(path, arrays, {"stage": name})
    log(f"stage {name}: done in {time.perf_counter() - start:.1f} s")
    return arrays


def _alphas(a) -> np.ndarray:
    return np.linspace(-a.alpha_max, a.alpha_max, a.num_alphas).astype(np.float32)


def reproduce(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    *,
    resume: bool = False,
    log: Callable[[str], Any] = print,
) -> dict:
    """Runs the whole reproduction into ``workdir`` and returns the ``results.json`` content."""
    from latentjax.experiment import report  # figures need matplotlib; imported only when used

    a = config.analysis
    # Missing models or data fail here, before the run directory exists.
    if a.train_models:
        data.load_from_config(config, "train")
    else:
        models = load_pretrained(a.pretrained)
    workdir = prepare_run_directory(workdir, config, "reproduce", resume)
    if a.train_models:
        source = str(workflows.train_and_export(config, workdir / "models", log=log))
        models = load_pretrained(source)
    else:
        source = a.pretrained
    generate, classify = models.generate, models.classify
    n_classes, latent_dim = config.num_classes, config.latent_dim
    chunk = a.chunk_size or None
    class_names = list(data.dataset_spec(config.dataset).class_names)
    total_stages = 3 * len(a.seeds) + 2
    done = [0]

    def stage(name, compute):
        result = _stage(workdir, name, compute, lambda msg: log(f"[reproduce {done[0] + 1}/{total_stages}] {msg}"))
        done[0] += 1
        return result

    per_seed = {}
    for seed in a.seeds:
        key = jax.random.key(seed)
        latents = stage(
            f"seed{seed}/latents",
            lambda: sample_class_latents(
                generate, classify, jax.random.fold_in(key, 0), latent_dim=latent_dim,
                num_classes=n_classes, samples_per_class=a.samples_per_class,
                threshold=a.threshold, batch_size=a.sample_batch, max_draws=a.max_draws,
            )._asdict(),
        )
        codes = jnp.asarray(latents["codes"])
        apcr = stage(
            f"seed{seed}/apcr",
            lambda: compute_apcr(
                generate, classify, codes, delta=a.delta, m=a.m, relative=a.relative,
                signed=a.signed, eps=a.eps, chunk_size=chunk,
            )._asdict(),
        )
        weights = stage(
            f"seed{seed}/weights",
            lambda: optimize_weights(
                generate, classify, codes, jax.random.fold_in(key, 1), lam=a.lam,
                xi_range=(a.xi_min, a.xi_max), steps=a.weight_steps, batch_size=a.weight_batch,
                learning_rate=a.weight_learning_rate, init=a.weight_init,
                parametrization=a.parametrization,
            )._asdict(),
        )
        per_seed[seed] = {"latents": latents, "apcr": apcr, "weights": weights}

    def sets_of(seed):
        apcr, weights = per_seed[seed]["apcr"], per_seed[seed]["weights"]
        high = top_k_mask(jnp.asarray(apcr["apcr"]).T, a.k)
        threshold = a.control_threshold if a.control_threshold >= 0 else None
        control = controlling_set(jnp.asarray(weights["weights"]), k=a.k, threshold=threshold)
        return high, control

    first = a.seeds[0]
    codes0 = jnp.asarray(per_seed[first]["latents"]["codes"])[:, : a.manipulation_samples]
    apcr0, weights0 = per_seed[first]["apcr"], per_seed[first]["weights"]
    alphas = _alphas(a)

    def manipulation():
        out = {}
        sources = {
            "apcr": (jnp.asarray(apcr0["apcr"]).T, jnp.asarray(apcr0["directions"]).T),
            "weights": (jnp.abs(jnp.asarray(weights0["weights"])), jnp.asarray(weights0["weights"])),
        }
        for source, (scores, signs) in sources.items():
            for mode in ("same", "cross"):
                targets = None if mode == "same" else jnp.asarray(a.cross_targets)
                results = compare_sets(
                    generate, classify, codes0, scores, signs, a.k, jax.random.key(first + 7),
                    mode=mode, targets=targets, alphas=alphas, num_images=4, chunk_size=chunk,
                )
                for set_name, r in results.items():
                    prefix = f"{source}_{mode}_{set_name}"
                    out[f"{prefix}_mean_probability"] = r.mean_probability
                    out[f"{prefix}_argmax_rate"] = r.argmax_rate
                    out[f"{prefix}_images"] = r.images
        return out

    manip = stage("manipulation", manipulation)

    def structure():
        images, labels = data.load_from_config(config, "test")
        rng = np.random.default_rng(first)
        picks = np.concatenate(
            [rng.choice(np.flatnonzero(labels == j), a.inversion_per_class, replace=False) for j in range(n_classes)]
        )
        inv = invert_images(
            generate, jnp.asarray(images[picks]), jax.random.key(first + 11), latent_dim=latent_dim,
            beta=a.inversion_beta, steps=a.inversion_steps,
            learning_rate=a.inversion_learning_rate, classify=classify,
        )
        perplexity = min(a.tsne_perplexity, (len(picks) - 1) / 3)
        return {
            "codes": inv.codes,
            "labels": labels[picks],
            "reconstruction_error": inv.reconstruction_error,
            "predicted": inv.predicted,
            "tsne": tsne_embedding(inv.codes, seed=first, perplexity=perplexity),
            "prior_codes": jnp.asarray(per_seed[first]["latents"]["codes"]).reshape(-1, latent_dim),
        }

    struct = stage("structure", structure)

    # ---- numbers
    ir = {}
    for seed in a.seeds:
        high, control = sets_of(seed)
        ir[seed] = np.asarray(intersection_ratio(high, control, a.k)).tolist()
    ir_matrix = np.array([ir[s] for s in a.seeds])
    high0, control0 = sets_of(first)
    struct_labels = np.asarray(struct["labels"])
    prior_labels = np.repeat(np.arange(n_classes), a.samples_per_class)

    def effect(source, mode, set_name):
        prefix = f"{source}_{mode}_{set_name}"
        prob = np.asarray(manip[f"{prefix}_mean_probability"])
        rate = np.asarray(manip[f"{prefix}_argmax_rate"])
        return {
            "mean_probability_per_alpha": prob.mean(0).tolist(),
            "rate_per_alpha": rate.mean(0).tolist(),
            "probability_drop_at_alpha_max": float((prob[:, len(alphas) // 2] - prob[:, -1]).mean()),
            "rate_at_alpha_max": float(rate[:, -1].mean()),
            "rate_at_alpha_max_per_class": rate[:, -1].tolist(),
        }

    results = {
        "latentjax_version": latentjax.__version__,
        "config": config.to_dict(),
        "models": {
            "pretrained": source,
            "trained_here": bool(a.train_models),
            "quality": models.metadata.get("quality", {}),
        },
        "class_names": class_names,
        "k": a.k,
        "chance_level": chance_level(a.k, latent_dim),
        "paper_table_1": list(PAPER_TABLE_1) if config.dataset == "fashion_mnist" else None,
        "intersection_ratio": {
            "per_seed": {str(s): ir[s] for s in a.seeds},
            "mean_per_class": ir_matrix.mean(0).tolist(),
            "std_per_class": ir_matrix.std(0).tolist(),
            "mean": float(ir_matrix.mean()),
            "std_of_seed_means": float(ir_matrix.mean(1).std()),
        },
        "sets_seed0": {
            "high_correlated": [np.flatnonzero(row).tolist() for row in np.asarray(high0)],
            "controlling": [np.flatnonzero(row).tolist() for row in np.asarray(control0)],
        },
        "latent_sets": {
            str(s): {"draws": int(per_seed[s]["latents"]["draws"]), "counts": np.asarray(per_seed[s]["latents"]["counts"]).tolist()}
            for s in a.seeds
        },
        "alphas": alphas.tolist(),
        "manipulation": {
            f"{source}_{mode}": {set_name: effect(source, mode, set_name) for set_name in ("top", "bottom", "random")}
            for source in ("apcr", "weights")
            for mode in ("same", "cross")
        },
        "structure": {
            "inverted_images": int(len(struct_labels)),
            "reconstruction_mse_mean": float(np.mean(struct["reconstruction_error"])),
            "classifier_agrees_with_label": float(np.mean(np.asarray(struct["predicted"]) == struct_labels)),
            "knn_accuracy_inverted": knn_class_accuracy(jnp.asarray(struct["codes"]), jnp.asarray(struct_labels), a.knn_k),
            "knn_accuracy_prior_samples": knn_class_accuracy(jnp.asarray(struct["prior_codes"]), jnp.asarray(prior_labels), a.knn_k),
            "knn_chance": float(np.max(np.bincount(struct_labels)) / len(struct_labels)),
        },
    }
    report.write_report(workdir, results, per_seed[first], manip, struct)
    tmp = workdir / "results.json.tmp"
    tmp.write_text(json.dumps(results, indent=2))
    os.replace(tmp, workdir / "results.json")
    log(f"[reproduce] wrote {workdir / 'results.json'} and {workdir / 'report.md'}")
    return results

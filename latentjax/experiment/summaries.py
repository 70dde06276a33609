"""Every number of a reproduction, JSON-ready: what ``results.json`` holds and the terminal prints."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

import latentjax
from latentjax import data
from latentjax.analysis.apcr import APCRResult
from latentjax.analysis.dose_response import DoseResponse, dose_response, flip_outcomes, half_point
from latentjax.analysis.finders import FINDERS
from latentjax.analysis.latents import ClassLatents
from latentjax.analysis.manipulation import ManipulationResult
from latentjax.analysis.sets import chance_level
from latentjax.analysis.statistics import mean_and_intervals
from latentjax.analysis.structure import knn_class_accuracy
from latentjax.experiment import stable_sets, stages

#: The paper's Table 1 (Fashion-MNIST, classes 0..9).
PAPER_TABLE_1 = (0.7, 0.9, 0.7, 0.8, 0.4, 1.0, 0.7, 0.9, 0.7, 0.7)


def summary(results: dict) -> str:
    """A few lines for the terminal: Table 1 ours beside the paper's, and the manipulation."""
    paper = results["paper_table_1"]
    what, cells, mean = stable_sets.table1_cells(results)
    lines = [f"Table 1 (K={results['k']}, chance {results['chance_level']:.2f}): class, ours ({what}), paper"]
    for j, name in enumerate(results["class_names"]):
        theirs = f"{paper[j]:.1f}" if paper else "-"
        lines.append(f"  {j} {name:<12} {cells[j]}   {theirs}")
    lines.append(f"  mean           {mean}   {np.mean(paper):.2f}" if paper else
                 f"  mean           {mean}   - (the paper prints no numbers for this dataset)")
    if results.get("stability"):
        lines.extend(stable_sets.table_lines(results["stability"], results["class_names"]))
    dose = results.get("dose_response")
    if dose:
        alpha_max = dose["alphas"][-1]
        lines.append(f"Manipulation at alpha {alpha_max:g} (share of codes: flip / clean flip with p >= {dose['threshold']:g}; "
                     "alpha50 = shift at which half flip):")
        for key, label in DOSE_EXPERIMENTS.items():
            entry = dose[key]
            cells = []
            for name in ("top", "bottom", "random"):
                flip, clean = entry[name]["flip"], entry[name]["clean"]
                half = "-" if flip["alpha_50"] is None else f"{flip['alpha_50']:.1f}"
                cells.append(f"{name}-K {100 * flip['rate'][-1]:.0f}/{100 * clean['rate'][-1]:.0f}% a50 {half}")
            verdict = "claim holds" if entry["claim_holds"] else "claim does not hold"
            lines.append(f"  {label:<22} " + ", ".join(cells) + f"  ({verdict})")
    else:
        same = results["manipulation"]["apcr_same"]
        lines.append("Same-class manipulation at alpha max (APCR sets): flip rate " + ", ".join(
            f"{name}-K {100 * same[name]['rate_at_alpha_max']:.0f}%" for name in ("top", "bottom", "random")))
    finders = results.get("finders")
    if finders:
        far = len(finders["distances"]) - 1
        lines.append(
            f"Finders at distance {finders['distances'][far]:g} (same-class flip rate, cross-class target share): "
            + ", ".join(
                f"{name} {100 * finders['same']['flip_rate'][name]['mean'][far]:.0f}/"
                f"{100 * finders['cross']['target_share'][name]['mean'][far]:.0f}%"
                for name in finders["names"]
            )
        )
    return "\n".join(lines)


#: The measures of the finder comparison, by mode (see :class:`~latentjax.DirectionEvaluation`).
FINDER_MEASURES = {
    "same": ("probability_drop", "flip_rate", "clean_rate", "off_target_change", "pixel_change"),
    "cross": ("target_share", "clean_rate", "off_target_change", "pixel_change"),
}
#: Per mode, the rate whose half point (the distance at which half the codes flip) is reported.
FINDER_HALF_POINTS = {"same": ("flip_rate", "clean_rate"), "cross": ("target_share", "clean_rate")}


def finder_summary(a, comparison: stages.FinderComparison, *, num_resamples: int = 2000, confidence: float = 0.95) -> dict:
    """The finder comparison as JSON: per mode, measure and finder, the class mean at every
    distance (mean over seeds, a bootstrap interval over the analysis seeds, each seed's value)."""
    out = {
        "names": list(a.finders),
        "sparse": [FINDERS[n].sparse for n in a.finders],
        "distances": np.asarray(comparison.same.distances).tolist(),
        "table_distances": list(a.finder_table_distances),
        "held_out_codes_per_class": a.finder_samples_per_class,
        "confidence": confidence,
    }
    for mode, measures in FINDER_MEASURES.items():
        evaluation = getattr(comparison, mode)
        out[mode] = {}
        for measure in measures:
            values = np.asarray(getattr(evaluation, measure), np.float64).mean(axis=2)  # [A, F, T]
            mean, intervals = mean_and_intervals(
                values[None], ("analysis",), num_resamples=num_resamples, confidence=confidence
            )
            low, high = intervals["analysis"]
            out[mode][measure] = {}
            for f, name in enumerate(a.finders):
                out[mode][measure][name] = {
                    "mean": mean[f].tolist(), "low": low[f].tolist(), "high": high[f].tolist(),
                    "per_seed": values[:, f].tolist(),
                    "per_class": np.asarray(getattr(evaluation, measure))[:, f].mean(0).tolist(),
                }
        # The distance at which half the codes flip (or reach the target), from the mean curve;
        # at distance 0 none has (every held-out code is confidently of its class).
        out[mode]["distance_50"] = {
            measure: {
                name: _finite(half_point([0.0, *out["distances"]], [0.0, *out[mode][measure][name]["mean"]]))
                for name in a.finders
            }
            for measure in FINDER_HALF_POINTS[mode]
        }
    return out


#: The dose–response's experiments (results.json keys, ``<method>_<mode>``) and their labels.
DOSE_EXPERIMENTS = {
    "apcr_same": "Method A, same class", "weights_same": "Method B, same class",
    "apcr_cross": "Method A, cross class", "weights_cross": "Method B, cross class",
}


def _finite(x: float) -> float | None:
    """JSON has no infinity: a strength never reached is ``null``."""
    return float(x) if np.isfinite(x) else None


def dose_record(r: DoseResponse) -> dict:
    return {
        "rate": r.rate.tolist(), "low": r.low.tolist(), "high": r.high.tolist(),
        "alpha_50": _finite(r.alpha_50), "alpha_50_low": _finite(r.alpha_50_low),
        "alpha_50_high": _finite(r.alpha_50_high),
    }


def claim_holds(entry: dict) -> bool:
    """The paper's claim for one method and mode, by the clean flips: at the largest strength,
    top-K's clean-flip rate is above both bottom-K's and random-K's, with intervals apart."""
    top = entry["top"]["clean"]
    return all(top["low"][-1] > entry[other]["clean"]["high"][-1] for other in ("bottom", "random"))


def dose_summary(a, dose: stages.DoseProbabilities, *, num_resamples: int = 2000, confidence: float = 0.95) -> dict:
    """The dose–response of every method, mode and set (:mod:`latentjax.analysis.dose_response`):
    flip and clean-flip rates against ``alpha`` with intervals over seeds and codes, their
    ``alpha_50``, and whether the paper's claim holds (:func:`claim_holds`). A clean flip lands
    with the confidence the latent sets demand (``analysis.latents.threshold``)."""
    settings = stages.manipulation_settings(a)
    alphas = settings.dose_alphas()
    threshold = float(stages.latent_settings(a).threshold)
    boot = dict(num_resamples=num_resamples, confidence=confidence)
    out = {"alphas": alphas.tolist(), "threshold": threshold, "confidence": confidence,
           "seeds": list(a.seeds), "codes_per_class": settings.samples}
    for source in stages.SOURCES:
        for mode in stages.MODES:
            entry = {}
            for name in stages.SET_NAMES:
                probabilities = np.asarray(dose[source][mode][name])  # [S, C, A, M, K]
                num_classes = probabilities.shape[1]
                classes = np.arange(num_classes) if mode == "same" else np.asarray(a.cross_targets)
                flip, clean = flip_outcomes(probabilities, classes[None, :, None], mode=mode, threshold=threshold)
                entry[name] = {
                    "flip": dose_record(dose_response(flip, alphas, **boot)),
                    "clean": dose_record(dose_response(clean, alphas, **boot)),
                }
            entry["claim_holds"] = claim_holds(entry)
            out[f"{source}_{mode}"] = entry
    return out


def summarize(
    config, a, source, metadata, latents: ClassLatents, apcr: APCRResult, weights: stages.MethodB,
    manip: stages.Manipulations, struct: stages.LatentStructure,
) -> dict:
    """Every number of the run, JSON-ready (what ``results.json`` holds)."""
    n_classes, latent_dim = config.num_classes, config.latent_dim
    ir_matrix, high, control = stages.intersection_ratios(a, apcr, weights.weights)
    struct_labels = np.asarray(struct.labels)
    prior_labels = np.repeat(np.arange(n_classes), a.latents.samples_per_class)
    alphas = stages.alpha_grid(a)

    def effect(r: ManipulationResult):
        prob, rate = np.asarray(r.mean_probability), np.asarray(r.argmax_rate)
        return {
            "mean_probability_per_alpha": prob.mean(0).tolist(),
            "rate_per_alpha": rate.mean(0).tolist(),
            "probability_drop_at_alpha_max": float((prob[:, len(alphas) // 2] - prob[:, -1]).mean()),
            "rate_at_alpha_max": float(rate[:, -1].mean()),
            "rate_at_alpha_max_per_class": rate[:, -1].tolist(),
        }

    class_names = list(data.dataset_spec(config.dataset).class_names)
    stability = None
    if weights.stability is not None:
        stability = stable_sets.summarize_stability(a, apcr, weights, high, class_names)
    return {
        "latentjax_version": latentjax.__version__,
        "config": config.to_dict(),
        "models": {
            "pretrained": source,
            "trained_here": bool(a.train_models),
            "quality": metadata.get("quality", {}),
        },
        "class_names": class_names,
        "k": a.k,
        "chance_level": chance_level(a.k, latent_dim),
        "paper_table_1": list(PAPER_TABLE_1) if config.dataset == "fashion_mnist" else None,
        "intersection_ratio": {
            "per_seed": {str(s): row.tolist() for s, row in zip(a.seeds, ir_matrix)},
            "mean_per_class": ir_matrix.mean(0).tolist(),
            "std_per_class": ir_matrix.std(0).tolist(),
            "mean": float(ir_matrix.mean()),
            "std_of_seed_means": float(ir_matrix.mean(1).std()),
        },
        "stability": stability,
        "sets_seed0": {
            "high_correlated": [np.flatnonzero(row).tolist() for row in np.asarray(high[0])],
            "controlling": [np.flatnonzero(row).tolist() for row in np.asarray(control[0])],
        },
        "latent_sets": {
            str(s): {"draws": int(draws), "counts": np.asarray(counts).tolist()}
            for s, draws, counts in zip(a.seeds, np.asarray(latents.draws), np.asarray(latents.counts))
        },
        "alphas": alphas.tolist(),
        "manipulation": {
            f"{source}_{mode}": {name: effect(manip[source][mode][name]) for name in stages.SET_NAMES}
            for source in stages.SOURCES
            for mode in stages.MODES
        },
        "structure": {
            "inverted_images": int(len(struct_labels)),
            "reconstruction_mse_mean": float(np.mean(struct.reconstruction_error)),
            "classifier_agrees_with_label": float(np.mean(np.asarray(struct.predicted) == struct_labels)),
            "knn_accuracy_inverted": knn_class_accuracy(jnp.asarray(struct.codes), jnp.asarray(struct_labels), a.knn_k),
            "knn_accuracy_prior_samples": knn_class_accuracy(jnp.asarray(struct.prior_codes), jnp.asarray(prior_labels), a.knn_k),
            "knn_chance": float(np.max(np.bincount(struct_labels)) / len(struct_labels)),
        },
    }

"""Figures (PNG) and the human-readable report (Markdown and HTML) of a reproduction run."""

from __future__ import annotations

import base64
import pathlib
import re

from latentjax.extras import require

require("matplotlib", "report", "The report's figures")
import matplotlib  # noqa: E402

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from latentjax.analysis.settings import MethodBSettings  # noqa: E402
from latentjax.storage.files import atomic_path, atomic_write_text  # noqa: E402
from latentjax.experiment import stable_sets  # noqa: E402
from latentjax.experiment.summaries import DOSE_EXPERIMENTS  # noqa: E402
from latentjax.images import tile_images  # noqa: E402

FIGURES = {
    "figure1_tsne.png": "Figure 1: t-SNE of inverted real test images' latent codes",
    "figure3_curves.png": "Figure 3: class score against the offset, top-3 (solid) and bottom-3 (dashed) APCR dimensions",
    "figure4_apcr_histogram.png": "Figure 4: APCR values over the latent dimensions, per class",
    "figure5_same_class.png": "Figure 5: same-class manipulation, top-K (upper row) against bottom-K (lower row) APCR dimensions",
    "figure6_cross_class.png": "Figure 6: cross-class manipulation along the target's top-K (upper) and bottom-K (lower) dimensions",
    "dose_response.png": "Dose–response: share of codes that flip (solid) and that flip cleanly (dashed) against the shift α, top-, bottom- and random-K sets (bands: 95% intervals over seeds and codes)",
    "table1_intersection_ratio.png": "Table 1 as a chart: intersection ratio per class, ours (mean and spread over seeds) beside the paper's",
}
#: Shown in the manipulation's section, the grids beside the dose–response, not under "Figures".
BESIDE_THE_MANIPULATION = ("figure5_same_class.png", "figure6_cross_class.png", "dose_response.png")
#: The finder comparison's figures (written when the run compared finders).
FINDER_FIGURES = {
    "finders_against_distance.png": "Direction finders: each measure against the latent distance moved (class mean, band: interval over seeds; solid: sparse K-sets, dashed: dense directions)",
    "finders_same_class.png": "The same held-out code of each class (top row) moved against its class's direction by the largest distance, one row per finder",
    "finders_cross_class.png": "The same codes moved towards their cross-class target by the largest distance, one row per finder",
}
#: Column labels of the finder measures.
FINDER_LABELS = {
    ("same", "probability_drop"): "Q drop",
    ("same", "flip_rate"): "flip rate",
    ("same", "clean_rate"): "clean flip rate",
    ("cross", "target_share"): "target share",
    ("cross", "clean_rate"): "clean target share",
    ("cross", "off_target_change"): "off-target change",
    ("same", "pixel_change"): "pixel change",
}


def _save(fig, path: pathlib.Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)


def _class_axes(n: int):
    """A figure with one panel per class (five to a row); spare panels are hidden."""
    cols = min(5, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes.flat[:n]


def figure_tsne(path, results, struct):
    labels = np.asarray(struct.labels)
    xy = np.asarray(struct.tsne)
    names = results["class_names"]
    fig, ax = plt.subplots(figsize=(7, 6))
    cmap = plt.get_cmap("tab10")
    for j, name in enumerate(names):
        sel = labels == j
        ax.scatter(xy[sel, 0], xy[sel, 1], s=14, color=cmap(j % 10), label=name)
    s = results["structure"]
    ax.set_title(
        f"t-SNE of {s['inverted_images']} inverted test images\n"
        f"latent {results['config']['analysis']['knn_k']}-NN class accuracy "
        f"{s['knn_accuracy_inverted']:.2f} (chance {s['knn_chance']:.2f})"
    )
    ax.legend(fontsize=7, markerscale=1.5, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    _save(fig, path)


def figure_curves(path, results, apcr):
    scores = np.asarray(apcr.apcr)  # [N, C]
    curves = np.asarray(apcr.curves)  # [N, 2m+1, C]
    offsets = np.asarray(apcr.offsets)
    names = results["class_names"]
    fig, axes = _class_axes(len(names))
    for j, ax in enumerate(axes):
        order = np.argsort(-scores[:, j])
        for i in order[:3]:
            ax.plot(offsets, curves[i, :, j], "-", marker=".", label=f"top z{i}")
        for i in order[-3:]:
            ax.plot(offsets, curves[i, :, j], "--", color="gray", alpha=0.7)
        ax.set_title(names[j], fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("offset k·δ", fontsize=8)
        ax.legend(fontsize=6)
    axes[0].set_ylabel("mean Q_j")
    fig.tight_layout()
    _save(fig, path)


def figure_histogram(path, results, apcr):
    scores = np.asarray(apcr.apcr)
    names = results["class_names"]
    fig, axes = _class_axes(len(names))
    for j, ax in enumerate(axes):
        ax.hist(scores[:, j], bins=20, color="tab:blue")
        ax.set_title(names[j], fontsize=9)
        ax.set_xlabel("APCR", fontsize=8)
    fig.tight_layout()
    _save(fig, path)


def _manipulation_grid(path, results, manip, mode, title):
    """One mosaic, so the images fill the page: a row per class and set (top-K, then bottom-K),
    a column per ``alpha``; classes side by side in two blocks when there are more than three."""
    names = results["class_names"]
    top = np.asarray(manip["apcr"][mode]["top"].images)  # [C, A, n, H, W, ch]
    bottom = np.asarray(manip["apcr"][mode]["bottom"].images)
    alphas = results["alphas"]
    n_classes, num_alphas, size = top.shape[0], len(alphas), top.shape[3] + 1
    targets = results["config"]["analysis"]["cross_targets"]
    blocks = 2 if n_classes > 3 else 1
    per_block = -(-n_classes // blocks)
    fig, axes = plt.subplots(1, blocks, figsize=(blocks * (0.62 * num_alphas + 1.6), 0.62 * 2 * per_block + 0.9), squeeze=False)
    for block, ax in enumerate(axes[0]):
        classes = list(range(block * per_block, min(n_classes, (block + 1) * per_block)))
        rows = np.concatenate([np.concatenate([top[j, :, 0], bottom[j, :, 0]]) for j in classes])  # first code
        ax.imshow(tile_images(rows, ncols=num_alphas).squeeze(), cmap="gray")
        label = (lambda j: names[j]) if mode == "same" else (lambda j: f"{names[j]} → {names[targets[j]]}")
        ax.set_yticks(
            [(2 * i + r + 0.5) * size for i in range(len(classes)) for r in (0, 1)],
            [f"{label(j)}  top" if r == 0 else "bottom" for j in classes for r in (0, 1)], fontsize=7,
        )
        ax.set_xticks([(i + 0.5) * size for i in range(num_alphas)], [f"{a:+.1f}" for a in alphas], fontsize=7)
        ax.set_xlabel("α", fontsize=8)
        for i in range(1, len(classes)):  # a line between classes
            ax.axhline(2 * i * size - 0.5, color="white", linewidth=2)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, path)


#: The dose–response figure's colour per set.
SET_COLOURS = {"top": "tab:blue", "bottom": "tab:orange", "random": "tab:gray"}


def figure_dose_response(path, results):
    d = results["dose_response"]
    alphas = d["alphas"]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.4), sharex=True, sharey=True)
    for row, (source, method) in enumerate((("apcr", "Method A (APCR)"), ("weights", "Method B"))):
        for col, (mode, what) in enumerate((("same", "same class: leaves its class"), ("cross", "cross class: becomes the target"))):
            ax, entry = axes[row, col], d[f"{source}_{mode}"]
            for name, colour in SET_COLOURS.items():
                for kind, style in (("flip", "-"), ("clean", "--")):
                    r = entry[name][kind]
                    ax.plot(alphas, r["rate"], style, color=colour, label=f"{name}-K {'clean' if kind == 'clean' else 'flip'}")
                    ax.fill_between(alphas, r["low"], r["high"], color=colour, alpha=0.12)
            ax.axhline(0.5, color="k", linewidth=0.6, linestyle=":")
            ax.set_title(f"{method}, {what}", fontsize=9)
            ax.set_ylim(-0.02, 1.02)
            if row == 1:
                ax.set_xlabel("shift α", fontsize=8)
            if col == 0:
                ax.set_ylabel("share of codes", fontsize=8)
    axes[0, 0].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    _save(fig, path)


def _alpha_50(r: dict) -> str:
    if r["alpha_50"] is None:
        return "> α max"
    high = "> α max" if r["alpha_50_high"] is None else f"{r['alpha_50_high']:.2f}"
    return f"{r['alpha_50']:.2f} [{r['alpha_50_low']:.2f}, {high}]"


def render_dose_response(results: dict) -> list[str]:
    """The manipulation claim measured: flips and clean flips against the shift, and a verdict."""
    d = results.get("dose_response")
    if not d:
        return []
    rows, verdicts = [], []
    for key, label in DOSE_EXPERIMENTS.items():
        entry = d[key]
        for name in ("top", "bottom", "random"):
            flip, clean = entry[name]["flip"], entry[name]["clean"]
            rows.append([label, f"{name}-K", f"{100 * flip['rate'][-1]:.0f}% [{100 * flip['low'][-1]:.0f}, {100 * flip['high'][-1]:.0f}]",
                         f"{100 * clean['rate'][-1]:.0f}% [{100 * clean['low'][-1]:.0f}, {100 * clean['high'][-1]:.0f}]",
                         _alpha_50(flip), _alpha_50(clean)])
        verdicts.append(f"{label}: {'holds' if entry['claim_holds'] else 'does not hold'}")
    return [
        "## Manipulation as a dose–response",
        f"The same {d['codes_per_class']} codes per class of each analysis seed {d['seeds']} moved by α from 0 to "
        f"{d['alphas'][-1]:g} along each set. A *flip* leaves the class (same class) or reaches the target (cross class); "
        f"a *clean flip* also lands with probability ≥ {d['threshold']:g} in the class reached, the confidence the latent "
        "sets demand of a class's own codes: a real other garment, not a broken image (a smeared image also leaves its "
        f"class, so the plain flip rate alone cannot tell the sets apart). α50: the shift at which half the codes have "
        f"flipped. Brackets: {100 * d['confidence']:.0f}% bootstrap intervals over seeds and codes.",
        _table(["experiment", "set", "flip at α max", "clean flip at α max", "α50 (flip)", "α50 (clean)"], rows),
        "**The paper's claim** (the top-ranked dimensions change the concept, the bottom-ranked do not), read as: "
        "top-K's clean-flip rate at α max lies above both bottom-K's and random-K's, intervals apart. "
        + "; ".join(verdicts) + ".",
        f"![{FIGURES['dose_response.png']}](dose_response.png)",
    ]


def figure_table1(path, results):
    ir = results["intersection_ratio"]
    names = results["class_names"]
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(10, 4))
    st = results.get("stability")
    if st:  # the interval over the complementary pairs (first seed)
        row = next(iter(st["per_seed"].values()))["top_k_ratio"]
        value = np.asarray(ir["mean_per_class"])
        error = np.stack([value - np.asarray(row["low"]), np.asarray(row["high"]) - value]).clip(0)
        label = f"latentjax ({round(100 * st['confidence'])}% interval over pairs)"
    else:
        error, label = ir["std_per_class"], "latentjax (mean ± sd over seeds)"
    ax.bar(x - 0.2, ir["mean_per_class"], 0.4, yerr=error, capsize=3, label=label)
    if results["paper_table_1"]:
        ax.bar(x + 0.2, results["paper_table_1"], 0.4, label="Li et al. 2020, Table 1")
    ax.axhline(results["chance_level"], color="k", linestyle=":", label=f"chance K/N = {results['chance_level']:.2f}")
    ax.set_xticks(x, names, rotation=30, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(f"IR = |H ∩ C| / K (K = {results['k']})")
    ax.legend(fontsize=8)
    _save(fig, path)


def figure_finders(path, results):
    f = results["finders"]
    distances = f["distances"]
    fig, axes = plt.subplots(1, len(FINDER_LABELS), figsize=(3.4 * len(FINDER_LABELS), 3.2), squeeze=False)
    cmap = plt.get_cmap("tab10")
    for ax, ((mode, measure), label) in zip(axes[0], FINDER_LABELS.items()):
        for i, (name, sparse) in enumerate(zip(f["names"], f["sparse"])):
            r = f[mode][measure][name]
            ax.plot(distances, r["mean"], "-" if sparse else "--", marker=".", color=cmap(i % 10), label=name)
            ax.fill_between(distances, r["low"], r["high"], color=cmap(i % 10), alpha=0.15)
        ax.set_title(f"{mode} class: {label}", fontsize=9)
        ax.set_xlabel("latent distance ||z' - z||", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def figure_finder_images(path, results, comparison, mode):
    names = results["class_names"]
    f = results["finders"]
    original = np.asarray(comparison.original_images)  # [C, H, W, ch]
    moved = np.asarray(comparison.same_images if mode == "same" else comparison.cross_images)  # [F, C, ...]
    rows = np.concatenate([original[None], moved]).reshape(-1, *original.shape[1:])
    size = original.shape[1] + 1
    fig, ax = plt.subplots(figsize=(0.75 * len(names) + 1.5, 0.75 * (len(f["names"]) + 1) + 0.8))
    ax.imshow(tile_images(rows, ncols=len(names)).squeeze(), cmap="gray")
    ax.set_yticks([(i + 0.5) * size for i in range(len(f["names"]) + 1)], ["codes", *f["names"]], fontsize=8)
    targets = results["config"]["analysis"]["cross_targets"]
    labels = names if mode == "same" else [f"{names[j]}\n-> {names[t]}" for j, t in enumerate(targets)]
    ax.set_xticks([(j + 0.5) * size for j in range(len(names))], labels, fontsize=7, rotation=45, ha="right")
    ax.set_title(f"{mode} class, distance {f['distances'][-1]:g}", fontsize=9)
    _save(fig, path)


def render_finders(results: dict) -> list[str]:
    """The finder section: one table (finders x measures at two distances) and what wins where."""
    f = results["finders"]
    near, far = (f["distances"].index(d) for d in f["table_distances"])
    header = ["finder", "kind"] + [
        f"{mode}: {label} @ {f['distances'][t]:g}"
        for (mode, measure), label in FINDER_LABELS.items() for t in (near, far)
    ]
    rows = []
    for name, sparse in zip(f["names"], f["sparse"]):
        row = [f"`{name}`", "K-set" if sparse else "dense"]
        for mode, measure in FINDER_LABELS:
            r = f[mode][measure][name]
            row += [f"{r['mean'][t]:.2f} [{r['low'][t]:.2f}, {r['high'][t]:.2f}]" for t in (near, far)]
        rows.append(row)

    def best(mode, measure, lowest=False):
        values = {n: f[mode][measure][n]["mean"][far] for n in f["names"]}
        pick = (min if lowest else max)(values, key=values.get)
        return f"`{pick}` ({values[pick]:.2f})"

    a = results["config"]["analysis"]
    return [
        "## Direction finders side by side",
        f"Each finder's per-class direction was found on the latent sets above (Methods A and B: the sets of "
        f"this run, K = {results['k']}; SeFa and GANSpace: the best of {a['finder_components']} components per "
        f"class; InterFaceGAN: a linear SVM on {a['finder_prior_samples']} prior codes) and scored on "
        f"{f['held_out_codes_per_class']} *held-out* confident codes per class, moved by equal L2 distances "
        f"(a K-set moves each dimension by distance/√K). Mean over classes and seeds; brackets: "
        f"{100 * f['confidence']:.0f}% bootstrap interval over the {len(a['seeds'])} analysis seeds. "
        "Same class: codes move against their class's direction (Q drop, share that leaves the class). "
        "Cross class: codes move along their target's direction (share predicted as the target; off-target "
        "change: summed |Δp| of the classes that are neither source nor target, lower is more specific). "
        "Pixel change: mean absolute change on the [0, 1] scale.",
        _table(header, rows),
        f"At distance {f['distances'][far]:g}: largest same-class flip rate {best('same', 'flip_rate')}, "
        f"largest cross-class target share {best('cross', 'target_share')}, least off-target change "
        f"{best('cross', 'off_target_change', lowest=True)}, least pixel change {best('same', 'pixel_change', lowest=True)}.",
    ] + [f"### {caption}\n\n![{caption}]({name})" for name, caption in FINDER_FIGURES.items()]


def render_stability(results: dict) -> list[str]:
    """Table 1 the identifiable way: both stable sets per class, and each class's top K of
    Method B's ``pi`` with the stable ones marked (the sets the manipulation moves along)."""
    st = results.get("stability")
    if not st:
        return []
    names = results["class_names"]
    seed = next(iter(st["per_seed"]))
    row = st["per_seed"][seed]
    interval = lambda name, j: f"{row[name]['value'][j]:.0f} [{row[name]['low'][j]:.0f}, {row[name]['high'][j]:.0f}]"
    listed = lambda method, j: ", ".join(
        f"{'**' if d['stable'] else ''}{d['dim']}{'**' if d['stable'] else ''} ({d['probability']:.2f})"
        for d in row[method][j]["dimensions"]
    )
    rows = [
        [names[j], interval("size_first", j), interval("size_second", j), interval("overlap", j),
         f"{row['top_k_ratio']['value'][j]:.1f} [{row['top_k_ratio']['low'][j]:.1f}, {row['top_k_ratio']['high'][j]:.1f}]"]
        for j in range(len(names))
    ]
    means = st["class_mean"]
    rows.append(["**mean**"] + [
        f"{means[m]['value']:.2f} [{means[m]['low']:.2f}, {means[m]['high']:.2f}]"
        for m in ("size_first", "size_second", "overlap", "top_k_ratio")
    ])
    return [
        "## Stable sets: what each method singles out",
        f"Each method fitted {st['fits']} times per class, on complementary halves of the codes ({st['pairs']} pairs; "
        f"Method B with its own key per fit, Method A by averaging each code's APCR over the half). π is the share of fits "
        f"whose top {st['q']} holds a dimension; the stable set is {{π ≥ {st['threshold']:g}}}, and the expected number of "
        f"its dimensions per class that are selected no better than at random is at most {st['error_bound']:.2f} "
        f"(Shah and Samworth 2013). Seed {seed}; {round(100 * st['confidence'])}% intervals resample the pairs. "
        "The last column is Table 1 as the paper reads it: Method A's top K on all codes against the top K of "
        "Method B's π.",
        _table(["class", "Method A: stable dims", "Method B: stable dims", "in both", "IR (top K of π)"], rows),
        "Each class's top K by π, stable ones in bold (Method B's are the sets the manipulation below moves "
        "along; Method A's manipulation uses its top K on all codes):",
        _table(["class", "Method A", "Method B"], [[names[j], listed("apcr", j), listed("weights", j)] for j in range(len(names))]),
    ]


def method_b_summary(a) -> str:
    """One line saying which reading of Method B ran, with its settings."""
    fits = (
        f"stability selection over {2 * a['stability']['pairs']} half-sample fits per class, each "
        if a["stability"]["pairs"] else "one run per seed and class: "
    )
    return fits + MethodBSettings.from_config(a).describe()


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(results: dict) -> str:
    cfg = results["config"]
    a = cfg["analysis"]
    quality = results["models"]["quality"]
    ir = results["intersection_ratio"]
    names = results["class_names"]
    paper = results["paper_table_1"] or [None] * len(names)
    parts = [
        "# latentjax reproduction report",
        f"latentjax {results['latentjax_version']}, dataset `{cfg['dataset']}`, models "
        f"`{results['models']['pretrained']}`"
        f"{' (trained by this run)' if results['models'].get('trained_here') else ''}, "
        f"seeds {list(a['seeds'])}.",
        "## What was run",
        f"- Latent sets: {a['latents']['samples_per_class']} prior codes per class with confidence ≥ {a['latents']['threshold']}.",
        f"- Method A: offsets k·δ for k = -{a['apcr']['m']}..{a['apcr']['m']}, δ = {a['apcr']['delta']}, "
        f"APCR relative={a['apcr']['relative']}, signed={a['apcr']['signed']}.",
        f"- Method B: {method_b_summary(a)}",
        f"- Sets: K = {results['k']}; chance level of the intersection ratio K/N = {results['chance_level']:.2f}.",
        "## Model quality",
    ]
    if quality:
        gan = quality["gan"]
        parts.append(
            _table(
                ["measure", "value"],
                [
                    ["classifier test accuracy", f"{100 * quality['classifier_test_accuracy']:.2f}%"],
                    [f"GAN samples with p ≥ {gan['confidence_threshold']}", f"{100 * gan['confident_share']:.1f}%"],
                    ["GAN class share, min..max", f"{100 * gan['class_histogram_min']:.1f}% .. {100 * gan['class_histogram_max']:.1f}%"],
                    ["Fréchet distance samples vs test", f"{gan['frechet_distance_samples_vs_test']:.2f}"],
                    ["Fréchet distance train vs test (real)", f"{gan['frechet_distance_train_vs_test']:.2f}"],
                    ["Fréchet distance untrained generator vs test", f"{gan.get('frechet_distance_untrained_vs_test', float('nan')):.2f}"],
                ],
            )
        )
    what, cells, mean = stable_sets.table1_cells(results)
    rows = [[names[j], cells[j], paper[j] if paper[j] is not None else "-"] for j in range(len(names))]
    paper_mean = f"{np.mean(results['paper_table_1']):.2f}" if results["paper_table_1"] else "-"
    rows.append(["**mean**", mean, paper_mean])
    reading = (
        " Method B's set is the top K of its selection probabilities π (below)." if results.get("stability") else ""
    )
    parts += [
        "## Table 1: intersection ratio of Methods A and B",
        f"Chance level K/N = {results['chance_level']:.2f}. Ours: {what}.{reading}"
        + ("" if results["paper_table_1"] else
           f" The paper prints intersection ratios for Fashion-MNIST only, none for `{cfg['dataset']}`: "
           "its column is empty here."),
        _table(["class", "latentjax", "paper"], rows),
        "![Table 1](table1_intersection_ratio.png)",
    ]
    parts += render_stability(results)
    parts += [
        "## Manipulation: top-K against bottom-K and random-K",
        f"Largest shift α = {a['manipulation']['alpha_max']}. Same class: codes move against the direction that raises their class; "
        "the rate is the share whose predicted class changes. Cross class: codes move along the target's set; the rate is "
        "the share predicted as the target.",
    ]
    rows = []
    for key, label in (("apcr_same", "same class, APCR sets"), ("weights_same", "same class, Method B sets"),
                       ("apcr_cross", "cross class, APCR sets"), ("weights_cross", "cross class, Method B sets")):
        for set_name in ("top", "bottom", "random"):
            e = results["manipulation"][key][set_name]
            rows.append([label, f"{set_name}-K", f"{e['probability_drop_at_alpha_max']:+.3f}", f"{100 * e['rate_at_alpha_max']:.1f}%"])
    parts.append(_table(["experiment", "set", "probability drop at α max", "rate at α max"], rows))
    parts += [f"### {FIGURES[name]}\n\n![{FIGURES[name]}]({name})" for name in ("figure5_same_class.png", "figure6_cross_class.png")]
    parts += render_dose_response(results)
    s = results["structure"]
    if results.get("finders"):
        parts += render_finders(results)
    parts += [
        "## Latent-space structure",
        f"{s['inverted_images']} real test images inverted (mean squared reconstruction error {s['reconstruction_mse_mean']:.3f} "
        f"per pixel; the classifier gives the true label to {100 * s['classifier_agrees_with_label']:.0f}% of the reconstructions). "
        f"Latent {a['knn_k']}-NN class accuracy: inverted codes {s['knn_accuracy_inverted']:.2f}, class-conditioned prior "
        f"samples {s['knn_accuracy_prior_samples']:.2f}, chance {s['knn_chance']:.2f}.",
        "## Figures",
    ]
    for name, caption in FIGURES.items():
        if name in BESIDE_THE_MANIPULATION:
            continue
        parts.append(f"### {caption}\n\n![{caption}]({name})")
    return "\n\n".join(parts) + "\n"


def render_html(markdown_text: str, folder: pathlib.Path | None = None) -> str:
    r"""The report as one self-contained HTML file (Python-Markdown, with its tables extension).

    Images that ``folder`` holds are embedded as ``data:`` URIs, so the file keeps its figures
    when it is downloaded or mailed on its own (report.md keeps its links).

    >>> '<table>' in render_html('| a | b |\n| --- | --- |\n| 1 | 2 |')
    True
    """
    markdown = require("markdown", "report", "The HTML report")

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    if folder is not None:
        def embed(match):
            path = pathlib.Path(folder) / match.group(1)
            if not path.is_file():
                return match.group(0)
            return f'src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}"'

        body = re.sub(r'src="([^":]+\.png)"', embed, body)
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto}img{max-width:100%}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>latentjax report</title>"
        f"<style>{style}</style></head><body>\n{body}\n</body></html>\n"
    )


def write_report(workdir, results, apcr, manip, struct, comparison=None) -> None:
    """Figures and report of a run: ``apcr`` is the first seed's :class:`~latentjax.APCRResult`,
    ``manip``, ``struct`` and ``comparison`` (``None`` when no finders ran) the results of
    :mod:`latentjax.experiment.stages`."""
    workdir = pathlib.Path(workdir)
    if comparison is not None:
        figure_finders(workdir / "finders_against_distance.png", results)
        figure_finder_images(workdir / "finders_same_class.png", results, comparison, "same")
        figure_finder_images(workdir / "finders_cross_class.png", results, comparison, "cross")
    figure_tsne(workdir / "figure1_tsne.png", results, struct)
    figure_curves(workdir / "figure3_curves.png", results, apcr)
    figure_histogram(workdir / "figure4_apcr_histogram.png", results, apcr)
    _manipulation_grid(workdir / "figure5_same_class.png", results, manip, "same", FIGURES["figure5_same_class.png"])
    _manipulation_grid(workdir / "figure6_cross_class.png", results, manip, "cross", FIGURES["figure6_cross_class.png"])
    figure_table1(workdir / "table1_intersection_ratio.png", results)
    if results.get("dose_response"):
        figure_dose_response(workdir / "dose_response.png", results)
    text = render_markdown(results)
    for name, content in (("report.md", text), ("report.html", render_html(text, workdir))):
        atomic_write_text(workdir / name, content)

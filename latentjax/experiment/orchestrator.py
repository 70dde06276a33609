"""The one driver of the analysis stages, shared by ``reproduce`` and ``sweep``.

A reproduction and a sweep cell run the same stages in the same order from the same typed
settings: the latent sets, Method A, Method B (stability selection or one run) and, when finders
are compared, a held-out draw of codes. :func:`shared_stages` runs them for a list of models
(stacked and ``vmap``-ped, or one after another) and all analysis seeds; every stage goes
through a **store**, which decides where its result lives and loads what an earlier run saved:

- :class:`RunStore` (``reproduce``): one run folder, ``<run>/artefacts/<stage>/`` with every
  seed stacked (what :func:`~latentjax.experiment.artefacts.load_artefact` reads);
- :class:`SeedStore` (``sweep``): ``<root>/<stage>-<hash>/`` per analysis seed, the hash taken
  over the models, the seed and the stage's settings (:func:`stages.stage_identity`), so cells
  and sweeps that share settings share results, and one more seed computes only that seed.

Both hand back results stacked over models (axis 0) and seeds (axis 1). What follows the shared
stages differs: a reproduction adds the manipulation, the finders and the latent structure and
writes results.json and the report; a sweep scores each of its cells.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import numpy as np

from latentjax.analysis.apcr import APCRResult
from latentjax.analysis.latents import ClassLatents
from latentjax.analysis.parallel import stack_pytrees
from latentjax.experiment import stages
from latentjax.experiment.artefacts import run_stage, stored_stage, to_tree
from latentjax.progress import stage_progress


class SharedStages(NamedTuple):
    """The stages a reproduction and a sweep cell share, each stacked over models and seeds."""

    latents: ClassLatents
    apcr: APCRResult
    weights: stages.MethodB
    held_out: ClassLatents | None


class Store(Protocol):
    def get(self, name: str, kind: Callable, identity: dict, compute: Callable[[tuple], Any]) -> Any:
        """``kind`` stacked over models and seeds; ``compute(seeds)`` gives those seeds' results
        stacked over models (axis 0) and the seeds (axis 1) when they must be computed."""


def resolve_layout(layout: str, models) -> str:
    """``'vmap'`` or ``'loop'``: ``'auto'`` is the loop on CPU or when architectures differ."""
    same = len({m.spec for m in models}) == 1
    if layout == "vmap" and not same:
        raise ValueError("model_layout='vmap' stacks the models: expected one architecture for all.")
    if layout == "auto":
        return "vmap" if same and len(models) > 1 and jax.default_backend() != "cpu" else "loop"
    return layout


def over_models(fn: Callable, models, layout: str, *per_model) -> Any:
    """``fn(generate, classify, *inputs)`` for every model, results stacked on a model axis.

    ``per_model``: inputs stacked over models (axis 0), sliced for each.
    """
    if layout == "vmap":
        generate = stack_pytrees([m.generate for m in models])
        classify = stack_pytrees([m.classify for m in models])
        return jax.vmap(fn)(generate, classify, *per_model)
    outputs = [
        fn(m.generate, m.classify, *jax.tree.map(lambda x: x[i], per_model))
        for i, m in enumerate(models)
    ]
    return stack_pytrees(outputs)


def seed_slice(tree, all_seeds, seeds: tuple):
    """The entries of ``seeds`` from a stage stacked over models and ``all_seeds`` (axis 1)."""
    index = np.asarray([list(all_seeds).index(s) for s in seeds])
    return jax.tree.map(lambda x: np.asarray(x)[:, index], tree)


def digest(record: Any) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


class RunStore:
    """One model's stages in one run folder, ``<workdir>/artefacts/<stage>/``, every seed in one
    artefact (the reproduction's layout). The run folder holds one config (the run directory
    refuses another), so the settings need no hash here. ``seconds`` collects the wall time of the
    stages this process computed; ``log_for(name)`` gives the function that receives a stage's
    lines."""

    def __init__(self, workdir: pathlib.Path, seeds, log_for: Callable[[str], Callable], seconds: dict | None = None):
        self.workdir, self.seeds, self.log_for, self.seconds = workdir, tuple(seeds), log_for, seconds

    def get(self, name: str, kind: Callable, identity: dict, compute: Callable[[tuple], Any]) -> Any:
        result = run_stage(
            self.workdir, name, lambda: jax.tree.map(lambda x: x[0], compute(self.seeds)),
            self.log_for(name), self.seconds,
        )
        return jax.tree.map(lambda x: np.asarray(x)[None], result)


class SeedStore:
    """Stage results stacked over models, saved once per analysis seed under
    ``<root>/<name>-<hash>`` (``root``: ``sweep.stages_dir``, or the sweep's ``stages/``).

    A stage's seeds are independent draws (each from its own key), so each seed's slice is its
    own artefact: a sweep with one more seed computes only that seed, and sweeps that point at
    one ``stages_dir`` share every stage whose settings they share. The missing seeds of a stage
    are still computed together, as one program.
    """

    def __init__(self, root: pathlib.Path, models: list, seeds, log):
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.models, self.seeds = models, tuple(seeds)
        self.log = log

    def path(self, name: str, identity: dict, seed: int) -> pathlib.Path:
        return self.root / f"{name}-{digest({'models': self.models, 'seeds': [seed], 'stage': name, **identity})}"

    def get(self, name: str, kind: Callable, identity: dict, compute: Callable[[tuple], Any]) -> Any:
        paths = {seed: self.path(name, identity, seed) for seed in self.seeds}
        missing = tuple(s for s, p in paths.items() if not p.exists())
        computed = None
        if missing:
            start = time.perf_counter()
            computed = to_tree(compute(missing))
            self.log(f"  stage {name} seeds {list(missing)} {identity}: {time.perf_counter() - start:.1f} s")
        slices = []
        for seed, path in paths.items():
            # Each artefact keeps a seed axis of length 1: [models, 1, ...].
            if seed in missing:
                slice_fn = lambda i=missing.index(seed): jax.tree.map(lambda x: x[:, i : i + 1], computed)
            else:  # used only when the saved artefact turns out damaged: this seed again
                slice_fn = lambda seed=seed: to_tree(compute((seed,)))
            tree, _ = stored_stage(path, name, slice_fn, self.log, {"stage": name, "seed": seed, "settings": identity})
            slices.append(tree)
        return kind(**jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *slices))


def snapshots_are_runs(method_b) -> bool:
    """Whether Method B's weights at step ``t`` of a longer run are a run of ``t`` steps: for
    L-BFGS and for Adam at a constant rate, not for Adam on a decaying schedule."""
    return method_b.solver == "lbfgs" or method_b.schedule == "constant"


def shared_stages(
    store: Store, models: list, layout: str, a, seeds, *, latent_dim: int, num_classes: int,
    method_b_steps: tuple[int, ...] = (), log: Callable[[str], Any] = print, labels=None,
) -> SharedStages:
    """The latent sets, Method A, Method B and (when ``a.finders`` names any) the held-out codes
    for ``models`` and the analysis ``seeds``, each through ``store``; the config ``a``
    (``config.analysis``) stops here: each stage receives its typed settings.

    ``method_b_steps``: the run lengths a sweep reads (``a.method_b.steps`` is the longest); one
    run keeps its weights at each of them (``MethodB.snapshots``) where its step ``t`` is a run of
    ``t`` steps (:func:`snapshots_are_runs`). ``labels``: each model's name in error messages.
    """
    seeds = tuple(seeds)
    shapes = dict(latent_dim=latent_dim, num_classes=num_classes)
    latent, method_a = stages.latent_settings(a), stages.apcr_settings(a)
    method_b, selection = stages.method_b_settings(a), stages.stability_settings(a)

    latents = store.get("latents", ClassLatents, stages.stage_identity("latents", a), lambda s: over_models(
        lambda g, c: stages.class_latents(g, c, latent, s, **shapes), models, layout))
    for index, label in enumerate(labels or [None] * len(models)):
        # Loaded results are checked too: another sweep may have saved them with other models.
        stages.check_latent_counts(jax.tree.map(lambda x: x[index], latents), latent, seeds,
                                   f"model {label}, " if label is not None else "")

    def on_latent_sets(fn):
        """``compute(seeds)`` for a stage that reads the latent sets of those seeds."""
        return lambda s: over_models(lambda g, c, l: fn(g, c, s, l), models, layout, seed_slice(latents, seeds, s))

    apcr = store.get("apcr", APCRResult, stages.stage_identity("apcr", a), on_latent_sets(
        lambda g, c, s, l: stages.correlation_scores(g, c, method_a, l, progress=stage_progress("apcr: chunks of rows", log))))
    snapshots = tuple(method_b_steps) if snapshots_are_runs(method_b) else ()
    weights = store.get(
        "weights", stages.method_b_from_tree, stages.stage_identity("weights", a, snapshot_steps=tuple(method_b_steps)),
        on_latent_sets(lambda g, c, s, l: stages.optimised_weights(
            g, c, method_b, selection, s, l, snapshot_steps=snapshots,
            progress=stage_progress("weights: steps", log))),
    )
    held_out = None
    if a.finders:
        held_out = store.get("held_out", ClassLatents, stages.stage_identity("held_out", a), lambda s: over_models(
            lambda g, c: stages.held_out_latents(g, c, latent, s, a.finder_samples_per_class, **shapes), models, layout))
    return SharedStages(latents, apcr, weights, held_out)

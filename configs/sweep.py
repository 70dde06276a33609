"""The sweep: Table 1 with intervals, and how IR and set stability settle with S and Method B.

Run (on a 2-core CPU; see docs/results.md for the measured time and numbers):

    latentjax sweep --config configs/sweep.py --workdir runs/sweep

Grid: codes per class S x Method B steps, each cell over the analysis seeds below, with the
shipped models. Cells that differ only in Method B's steps share one run (its snapshots), and
Method A is computed once per S. Independently trained GANs: export them
(configs/gan_seeds.py) and list their folders in sweep.models, e.g.

    latentjax sweep --config configs/sweep.py --workdir runs/sweep-gans \
        --config.sweep.models="('runs/gan-seeds-exported/seed1','runs/gan-seeds-exported/seed2','runs/gan-seeds-exported/seed3')"

Output: runs/sweep/table.csv (a row per cell and class), cells.csv, seeds.csv, report.md and the
convergence figures.
"""

import ml_collections

from default import SAMPLED_METHOD_B, get_config as _default, one_run_of_method_b  # configs/ is on sys.path while this file loads


def get_config() -> ml_collections.ConfigDict:
    config = _default()
    # The study of the paper's (sampled) reading of Method B, at its base learning rate
    # (docs/results.md records these sweeps at 0.01); configs/sweep_paper_scale.py sweeps S at
    # make run's settings.
    one_run_of_method_b(config.analysis, SAMPLED_METHOD_B)
    config.analysis.method_b.learning_rate = 1e-2
    # The Table 1 sweeps compare no direction finders (their recorded times are without them);
    # configs/sweep_finders.py does, or pass --config.analysis.finders="('apcr','sefa')".
    config.analysis.finders = ()
    config.sweep = ml_collections.ConfigDict(
        dict(
            # One entry per model seed: shipped names or exported folders.
            models=("fashion_mnist",),
            analysis_seeds=(0, 1),
            # {analysis setting: values}, nested as config.analysis is; every other setting
            # comes from config.analysis.
            grid=ml_collections.ConfigDict(
                dict(latents=dict(samples_per_class=(8, 16)), method_b=dict(steps=(60, 250)))
            ),
            # 'auto': stack the model seeds and vmap them off CPU, loop over them on CPU.
            model_layout="auto",
            # A folder of stage artefacts shared between sweeps ('' = the sweep's own stages/):
            # one artefact per stage, settings and analysis seed, computed once for all of them.
            stages_dir="",
            bootstrap_resamples=2000,
            confidence=0.95,
        )
    )
    return config

"""Table 1 at the paper's scale: S = 64, 128 and 256 codes per class, analysis seeds 0 and 1.

Run (on a 2-core CPU, resumable; Method A at S = 128 takes about 35 minutes per analysis seed and
at S = 256 about twice that, Method B about 7 minutes per seed whatever S):

    latentjax sweep --config sweep_paper_scale --workdir runs/sweep-paper-scale

Method B is the paper's sampled reading at make run's settings (250 Adam steps on batches of 8
codes, so its cost does not grow with S). The converged reading (CONVERGED_METHOD_B in
configs/default.py) costs O(S) per step and, on the shipped models, does not settle either
(docs/results.md, "Method B: one answer?").

The stage artefacts (latent sets, Method A, Method B, one per analysis seed) go to the shared
folder ``runs/stages``, so another sweep over the same settings reuses them, and adding an
analysis seed computes only that seed:

    latentjax sweep --config sweep_paper_scale --workdir runs/sweep-paper-scale-3 \\
        --config.sweep.analysis_seeds='(0, 1, 2)'

Measured numbers: docs/results.md, "Table 1 at the paper's scale".
"""

import ml_collections

from sweep import get_config as _sweep  # configs/ is on sys.path while this file loads
from default import SAMPLED_METHOD_B, get_analysis_config, one_run_of_method_b


def get_config() -> ml_collections.ConfigDict:
    config = _sweep()
    config.analysis = get_analysis_config()  # make run's Method A
    # One run of Method B per seed and class (its sampled reading), as these numbers were recorded.
    one_run_of_method_b(config.analysis, SAMPLED_METHOD_B)
    config.analysis.finders = ()  # Table 1 only
    config.sweep.analysis_seeds = (0, 1)
    config.sweep.stages_dir = "runs/stages"
    config.sweep.grid = ml_collections.ConfigDict(dict(latents=dict(samples_per_class=(64, 128, 256))))
    return config

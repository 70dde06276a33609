"""Table 1 at the paper's scale: S = 64, 128 and 256 codes per class, converged Method B.

Run (on a 2-core CPU, resumable; Method A at S = 256 is about half an hour per analysis seed):

    latentjax sweep --config configs/sweep_paper_scale.py --workdir runs/sweep-paper-scale

The stage artefacts (latent sets, Method A, Method B, one per analysis seed) go to the shared
folder ``runs/stages``, so another sweep over the same settings (configs/sweep_definitions.py at
S = 64) reuses them, and adding an analysis seed computes only that seed:

    latentjax sweep --config configs/sweep_paper_scale.py --workdir runs/sweep-paper-scale-3 \\
        --config.sweep.analysis_seeds='(0, 1, 2)'

Measured numbers: docs/results.md, "Table 1 at the paper's scale".
"""

import ml_collections

from sweep import get_config as _sweep  # configs/ is on sys.path while this file loads
from default import CONVERGED_METHOD_B, get_analysis_config


def get_config() -> ml_collections.ConfigDict:
    config = _sweep()
    config.analysis = get_analysis_config()
    config.analysis.update(CONVERGED_METHOD_B)
    config.analysis.finders = ()  # Table 1 only
    config.sweep.analysis_seeds = (0, 1)
    config.sweep.stages_dir = "runs/stages"
    config.sweep.grid = ml_collections.ConfigDict(dict(samples_per_class=(64, 128, 256)))
    return config

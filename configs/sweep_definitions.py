"""Which of the readings the paper leaves open move Table 1: one sweep per reading.

Each axis is its own sweep over make run's settings (the shipped models, S = 16 codes per class,
Method B's sampled reading at 250 steps), with two analysis seeds and one shared stages folder,
so the default reading's latent sets, Method A and Method B are computed once for all of them:

    latentjax sweep --config sweep_definitions --workdir runs/definitions-apcr         # relative or absolute
    latentjax sweep --config sweep_definitions --workdir runs/definitions-signed \\
        "--config.sweep.grid={'apcr': {'signed': (False, True)}}"
    latentjax sweep --config sweep_definitions --workdir runs/definitions-penalty \\
        "--config.sweep.grid={'method_b': {'penalty': ('l2', 'l2_squared', 'l1')}}"
    latentjax sweep --config sweep_definitions --workdir runs/definitions-k \\
        "--config.sweep.grid={'k': (5, 10, 20)}"
    latentjax sweep --config sweep_definitions --workdir runs/definitions-offsets \\
        "--config.sweep.grid={'apcr': {'delta': (0.5, 1.0), 'm': (3, 6)}}"
    latentjax sweep --config sweep_definitions --workdir runs/definitions-xi \\
        "--config.sweep.grid={'method_b': {'xi_range': ((1.0, 2.0), (1.0, 3.0), (1.0, 5.0))}}"
    latentjax sweep --config sweep_definitions --workdir runs/definitions-threshold \\
        "--config.sweep.grid={'latents': {'threshold': (0.8, 0.9, 0.95)}}"

Each workdir's cells.csv gives the mean IR with its interval over the seeds and both methods'
set stability (Jaccard of the top-K sets between seeds) per reading. S = 16 is make run's size,
not the paper's: at S = 64 every Method A reading costs four times as much (about 45 minutes for
two seeds on a 2-core CPU), so this is the first pass.

Expected (measured, docs/results.md, "Which unstated definitions matter"; 2 seeds, mean IR): the
default 0.48; absolute APCR the same sets; signed APCR 0.02; penalty l2_squared 0.49, l1 0.48;
K = 5 / 20: 0.48 / 0.57; offsets to ±1.5 / ±6: 0.45 / 0.51; ξ_max 2 / 5: 0.53 / 0.45; τ 0.8 /
0.95: 0.54 / 0.55. About 60 minutes for all seven on a 2-core CPU.
"""

import ml_collections

from sweep import get_config as _sweep  # configs/ is on sys.path while this file loads
from default import SAMPLED_METHOD_B, get_analysis_config, one_run_of_method_b


def get_config() -> ml_collections.ConfigDict:
    config = _sweep()
    config.analysis = get_analysis_config()  # make run's readings: the default of every axis
    # ... as they were when these numbers were recorded: S = 16, one run of Method B per seed.
    one_run_of_method_b(config.analysis, SAMPLED_METHOD_B)
    config.analysis.latents.samples_per_class = 16
    config.analysis.finders = ()  # Table 1 and the sets only
    config.sweep.analysis_seeds = (0, 1)
    config.sweep.stages_dir = "runs/stages-definitions"
    config.sweep.grid = ml_collections.ConfigDict(dict(apcr=dict(relative=(True, False))))
    return config

"""The experiment layer, where models, data and the analysis meet.

- :mod:`latentjax.experiment.stages`: one function per pipeline stage, each with a typed result;
- :mod:`latentjax.experiment.reproduce`: the staged, resumable paper run (``latentjax reproduce``);
- :mod:`latentjax.experiment.artefacts`: stage results saved and loaded (:func:`load_artefact`);
- :mod:`latentjax.experiment.summaries`: every number of a run, as ``results.json`` holds it;
- :mod:`latentjax.experiment.sweep`: grids of settings over model and analysis seeds;
- :mod:`latentjax.experiment.report`: figures and the report;
- :mod:`latentjax.experiment.workflows`: evaluating, exporting and training models for a run.
"""

from latentjax.extras import require

for _module in ("flax", "orbax.checkpoint", "ml_collections"):
    require(_module, "models", "latentjax.experiment")


"""The experiment layer, where models, data and the analysis meet.

- :mod:`latentjax.experiment.stages`: one function per pipeline stage, each with a typed result;
- :mod:`latentjax.experiment.reproduce`: the staged, resumable paper run (``latentjax reproduce``);
- :mod:`latentjax.experiment.report`: figures and the report;
- :mod:`latentjax.experiment.workflows`: evaluating, exporting and training models for a run.
"""

from latentjax._extras import require

for _module in ("flax", "orbax.checkpoint", "ml_collections"):
    require(_module, "models", "latentjax.experiment")


"""Optional dependencies: a clear message naming the extra to install when one is missing.

The analysis core needs only jax, optax and numpy; the rest comes with extras of the package
(``pyproject.toml``): ``models`` (Flax, Orbax, ml_collections), ``data`` (tensorflow-datasets;
TensorFlow from the runtime or the ``tf-cpu`` extra), ``report`` (matplotlib, scikit-learn,
Markdown).
"""

from __future__ import annotations

import importlib
from types import ModuleType


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Imports ``module``, or raises ImportError saying which extra of latentjax brings it.

    >>> require("json", "report", "this example").__name__
    'json'
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".")[0]
        raise ImportError(
            f"{purpose} needs the package {package!r}, which is not installed: "
            f"pip install 'latentjax[{extra}]'."
        ) from exc

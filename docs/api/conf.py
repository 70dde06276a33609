"""Sphinx configuration of the API reference (built from the docstrings; ``make docs``)."""

project = "latentjax"
author = "The latentjax developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon"]
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the signatures carry them; jax's long aliases only add noise
napoleon_google_docstring = True
napoleon_numpy_docstring = False
html_theme = "alabaster"
exclude_patterns = ["_build"]
nitpicky = False
napoleon_use_ivar = True  # NamedTuple fields documented once, under "Attributes"

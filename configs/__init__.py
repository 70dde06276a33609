"""The shipped experiment configs (installed as ``latentjax.configs``; each file's docstring gives
its command and the result it should reproduce). Load one by name: ``--config default``, or
``latentjax.config.load_config("default")``."""

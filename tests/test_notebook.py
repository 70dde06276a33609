"""The walkthrough notebook runs top to bottom (small sizes), so it cannot silently rot."""


import nbformat
from nbclient import NotebookClient

from conftest import REPO

import pytest

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


def test_walkthrough_notebook_executes(tfds_dir, monkeypatch, tmp_path):
    monkeypatch.setenv("LATENTJAX_NOTEBOOK_TINY", "1")
    monkeypatch.setenv("TFDS_DATA_DIR", str(tfds_dir))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = nbformat.read(REPO / "notebooks" / "latentjax_walkthrough.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("mean" in o.get("text", "") for o in outputs)

"""The API reference builds from the docstrings with no warning (warnings are errors)."""

import subprocess
import sys

import pytest

from conftest import REPO

# End to end (data, training, the reproduction, subprocesses): out of the quick tier, `-m "not slow"`.
pytestmark = pytest.mark.slow


def test_the_api_reference_builds_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         str(REPO / "docs" / "api"), str(tmp_path / "html")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "html" / "index.html").is_file()

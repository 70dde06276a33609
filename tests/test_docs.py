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


def readme_first_look():
    """The README's first example and the output it shows: ``(code, expected)``."""
    text = (REPO / "README.md").read_text()
    section = text.split("## A first look", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    shown = section.split("prints", 1)[1].split("```\n", 1)[1].split("```", 1)[0]
    return code, shown


def test_the_readme_first_example_prints_what_the_readme_shows():
    import contextlib
    import io

    code, shown = readme_first_look()
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, "README.md", "exec"), {})
    assert printed.getvalue().splitlines() == shown.splitlines()

"""The checkout stands on its own: no file in it names a place outside it."""

import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# The one documented exception: the optional data folder beside a checkout, which the Makefile
# uses when it exists (README, "Data").
MAY_NAME_THE_DATA_FOLDER = {"Makefile", "README.md"}


def tracked_text_files():
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (an sdist or a copy): nothing to list")
    for name in listed.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file():
            data = path.read_bytes()
            if b"\0" not in data[:8192]:
                yield name, data.decode("utf-8", errors="replace")


def test_no_file_names_the_checkouts_own_location_or_a_folder_beside_it():
    parent = str(ROOT.parent)
    outside = re.compile(r"\.\./shared|SPEC\.md|STYLE\.md")
    found = []
    for name, text in tracked_text_files():
        if len(parent) > 4 and (str(ROOT) in text or parent + "/" in text):
            found.append(f"{name}: names {parent}")
        if name not in MAY_NAME_THE_DATA_FOLDER and outside.search(text):
            found.append(f"{name}: {outside.search(text).group()}")
    assert not found, found

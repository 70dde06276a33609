"""What survives anything: atomic folders, checksums, locks, unwritable folders.

The end-to-end cases (a reproduce run killed or damaged, a training checkpoint with flipped
bytes, the CLI's one-line errors) live beside the runs they damage, in test_reproduce.py,
test_training.py and test_cli_and_export.py.
"""

import os
import pathlib
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from latentjax.storage import files as storage
from latentjax.errors import IntegrityError, RunDirectoryError
from latentjax.models import checkpoints


def flip_bytes(path: pathlib.Path, count: int = 16) -> None:
    """Flips ``count`` bytes in the middle of a file (as a failing disk or a bad copy would)."""
    raw = bytearray(path.read_bytes())
    middle = len(raw) // 2
    for i in range(middle, min(middle + count, len(raw))):
        raw[i] ^= 0xFF
    path.write_bytes(bytes(raw))


def largest_file(folder: pathlib.Path) -> pathlib.Path:
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != storage.CHECKSUM_FILE]
    return max(files, key=lambda p: p.stat().st_size)


def test_atomic_write_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "results.json"
    storage.atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with storage.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_committed_directory_appears_only_when_complete(tmp_path):
    target = tmp_path / "stage"
    with pytest.raises(RuntimeError):
        with storage.committed_directory(target) as staging:
            staging.mkdir()
            (staging / "a.bin").write_bytes(b"1234")
            raise RuntimeError("killed while saving")
    assert not target.exists()
    # The next attempt discards the staging folder left behind and commits.
    with storage.committed_directory(target) as staging:
        staging.mkdir()
        (staging / "a.bin").write_bytes(b"5678")
    assert (target / "a.bin").read_bytes() == b"5678"
    assert not (tmp_path / "stage.partial").exists()
    storage.verify_checksums(target)
    with pytest.raises(RunDirectoryError, match="refusing to overwrite"):
        with storage.committed_directory(target):
            pass


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: flip_bytes(d / "a.bin", 2), "a.bin' does not match its checksum"),
        (lambda d: (d / "a.bin").write_bytes(b"12"), "a.bin' does not match its checksum"),
        (lambda d: (d / "a.bin").unlink(), "a.bin' is missing"),
        (lambda d: (d / "extra.bin").write_bytes(b"x"), "extra.bin' was added"),
        (lambda d: (d / storage.CHECKSUM_FILE).unlink(), "has no latentjax-checksums.json"),
        (lambda d: (d / storage.CHECKSUM_FILE).write_text("{not json"), "is damaged"),
    ],
    ids=["flipped", "truncated", "missing", "extra", "no-record", "bad-record"],
)
def test_every_kind_of_damage_names_the_file(tmp_path, damage, message):
    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "a.bin").write_bytes(bytes(range(256)) * 8)
    storage.write_checksums(folder)
    storage.verify_checksums(folder)
    damage(folder)
    with pytest.raises(IntegrityError, match=message):
        storage.verify_checksums(folder)


def test_flipped_bytes_in_a_checkpoint_are_an_error_naming_the_file(tmp_path):
    tree = {"w": jnp.arange(4096, dtype=jnp.float32)}
    checkpoints.save_final(tmp_path / "ckpt", tree, {"note": 1})
    restored, _ = checkpoints.load_final(tmp_path / "ckpt", tree)
    np.testing.assert_array_equal(restored["w"], tree["w"])
    victim = largest_file(tmp_path / "ckpt")
    flip_bytes(victim)
    with pytest.raises(IntegrityError, match=str(victim.name)):
        checkpoints.load_final(tmp_path / "ckpt", tree)
    with pytest.raises(IntegrityError):
        checkpoints.restore_metadata(tmp_path / "ckpt")


def test_a_damaged_newest_step_is_set_aside_for_the_previous_one(tmp_path):
    manager = checkpoints.open_manager(tmp_path / "c", max_to_keep=2)
    for step in (1, 2):
        checkpoints.save(manager, step, {"x": jnp.full((1024,), step, jnp.float32)})
    flip_bytes(largest_file(tmp_path / "c" / "2"))
    messages = []
    assert checkpoints.newest_intact_step(manager, log=messages.append) == 1
    assert "checkpoint step 2 is damaged" in messages[0]
    assert manager.latest_step() == 1
    assert [p.name.split(".")[1][:7] for p in (tmp_path / "c").iterdir() if p.name.startswith("2.")] == ["damaged"]
    restored, _ = checkpoints.restore(manager, {"x": jnp.zeros((1024,), jnp.float32)})
    assert float(restored["x"][0]) == 1.0


def test_a_checkpoint_of_another_model_is_a_clear_error(tmp_path):
    from latentjax.errors import CheckpointMismatchError

    checkpoints.save_final(tmp_path / "ckpt", {"a": jnp.zeros(3)}, {})
    with pytest.raises(CheckpointMismatchError, match="holds other arrays than the model"):
        checkpoints.load_final(tmp_path / "ckpt", {"b": jnp.zeros(3), "c": jnp.zeros(2)})


def test_a_run_folder_admits_one_process(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from latentjax.storage.files import FolderLock
            with FolderLock({str(folder)!r}):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirectoryError, match="in use by another latentjax process"):
            with storage.FolderLock(folder):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # The operating system released the dead process's lock: no stale lock to clean up.
    with storage.FolderLock(folder):
        with storage.FolderLock(folder):  # the same process may take it again
            pass


def test_unwritable_folders_are_refused_before_any_work(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(RunDirectoryError, match="cannot be written"):
        storage.check_writable(blocker / "run", "run directory")
    if os.geteuid() == 0:
        return  # root writes into read-only folders: the mode test below means nothing here
    locked = tmp_path / "read-only"
    locked.mkdir(mode=0o555)
    with pytest.raises(RunDirectoryError, match="cannot be written"):
        storage.check_writable(locked / "run", "run directory")

"""Files that are either complete or absent: atomic writes, committed folders, checksums, locks.

Every file and folder latentjax writes goes through here, so one set of rules holds everywhere:

- a file or folder appears under its final name only when complete (written under a temporary
  name, then one ``os.replace`` / ``os.rename``, atomic on POSIX file systems);
- a committed folder carries ``latentjax-checksums.json`` (SHA-256 of every file in it), checked
  on every load, so flipped or truncated bytes are an error that names the file, never numbers;
- one process at a time per run folder (an exclusive ``fcntl`` lock on ``<run>/.lock``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pathlib
import shutil
import time

from latentjax.errors import IntegrityError, RunDirectoryError

CHECKSUM_FILE = "latentjax-checksums.json"
LOCK_FILE = ".lock"


def _temporary_name(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yields a temporary path beside ``path``; renamed onto ``path`` only if the block succeeds.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / 'x.txt'
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text('done')
    >>> target.read_text()
    'done'
    """
    path = pathlib.Path(path)
    tmp = _temporary_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Writes ``text`` to ``path`` so that readers see the old file or the new one, never half."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def sha256_file(path: str | os.PathLike) -> str:
    """The SHA-256 of a file, read a megabyte at a time."""
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _files(directory: pathlib.Path) -> dict[str, pathlib.Path]:
    return {
        p.relative_to(directory).as_posix(): p
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != CHECKSUM_FILE
    }


def write_checksums(directory: str | os.PathLike) -> None:
    """Records the SHA-256 of every file under ``directory`` in its checksum file.

    Also the way to adopt a folder written by a latentjax that predates checksums, once its
    content is trusted: ``latentjax.models.checkpoints.write_checksums(folder)``.
    """
    directory = pathlib.Path(directory)
    digests = {name: sha256_file(p) for name, p in _files(directory).items()}
    atomic_write_text(directory / CHECKSUM_FILE, json.dumps({"sha256": digests}, indent=1))


def verify_checksums(directory: str | os.PathLike) -> None:
    """Raises :class:`IntegrityError` naming the first file that is missing, extra or changed."""
    directory = pathlib.Path(directory)
    record = directory / CHECKSUM_FILE
    if not record.is_file():
        raise IntegrityError(
            f"{str(directory)!r} has no {CHECKSUM_FILE}: it was not completely written (or was "
            "written by a latentjax without checksums); write it again."
        )
    try:
        expected = json.loads(record.read_text())["sha256"]
    except (ValueError, KeyError, TypeError) as exc:
        raise IntegrityError(f"{str(record)!r} is damaged ({exc}); write the folder again.") from exc
    found = _files(directory)
    for name, digest in expected.items():
        if name not in found:
            raise IntegrityError(f"{str(directory / name)!r} is missing; write the folder again.")
        if sha256_file(found[name]) != digest:
            raise IntegrityError(
                f"{str(directory / name)!r} does not match its checksum (damaged or changed "
                "after it was written); write the folder again."
            )
    extra = sorted(set(found) - set(expected))
    if extra:
        raise IntegrityError(
            f"{str(directory / extra[0])!r} was added after the folder was written; remove it "
            "or write the folder again."
        )


@contextlib.contextmanager
def committed_directory(path: str | os.PathLike, *, checksums: bool = True):
    """Yields a staging folder; when the block succeeds, checksums it and renames it to ``path``.

    ``checksums=False`` where the content carries its own (Orbax steps written by
    :func:`latentjax.models.checkpoints.save`).

    A staging folder left by an interrupted process is discarded first (callers hold the run's
    lock, so no live process owns it). ``path`` must not exist.
    """
    path = pathlib.Path(path)
    if path.exists():
        raise RunDirectoryError(f"{str(path)!r} exists; refusing to overwrite it.")
    staging = path.with_name(path.name + ".partial")
    if staging.exists():
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    yield staging
    if checksums:
        write_checksums(staging)
    os.rename(staging, path)


def set_aside(path: str | os.PathLike) -> pathlib.Path:
    """Renames a damaged folder to ``<name>.damaged-<time>`` (kept for inspection, not deleted)."""
    path = pathlib.Path(path)
    target = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}")
    os.rename(path, target)
    return target


def unwritable_ancestor(folder: str | os.PathLike) -> pathlib.Path | None:
    """``None`` if ``folder`` (or, if it does not exist yet, its nearest existing parent) is a
    writable folder; else that nearest existing path."""
    existing = pathlib.Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.is_dir() and os.access(existing, os.W_OK | os.X_OK):
        return None
    return existing


def check_writable(folder: str | os.PathLike, what: str) -> None:
    """Fails unless :func:`unwritable_ancestor` finds ``folder`` writable."""
    blocked = unwritable_ancestor(folder)
    if blocked is not None:
        raise RunDirectoryError(
            f"{what} {str(pathlib.Path(folder).absolute())!r} cannot be written "
            f"({str(blocked)!r} is not a writable folder); choose a folder you can write to."
        )


class FolderLock:
    """An exclusive lock on a run folder for the life of this object's ``with`` block.

    Held with ``fcntl.flock`` on ``<folder>/.lock``: the operating system releases it when the
    process ends however it ends, so a killed run never leaves a stale lock. The same process may
    take a folder's lock again (a resume inside a run): the lock counts its holders.
    """

    _held: dict[str, list] = {}

    def __init__(self, folder: str | os.PathLike):
        self.folder = pathlib.Path(folder).absolute()

    def __enter__(self) -> pathlib.Path:
        key = str(self.folder)
        if key in self._held:
            self._held[key][1] += 1
            return self.folder
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self.folder / LOCK_FILE, "a+")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock, as before
            self._held[key] = [handle, 1]
            return self.folder
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise RunDirectoryError(
                f"run directory {str(self.folder)!r} is in use by another latentjax process; "
                "wait for it to finish (or stop it), or choose another --workdir."
            ) from None
        self._held[key] = [handle, 1]
        return self.folder

    def __exit__(self, *exc) -> None:
        entry = self._held[str(self.folder)]
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[str(self.folder)]
            entry[0].close()  # closing releases the flock

"""What a result was computed with: package versions, the backend and its devices, the git commit."""

from __future__ import annotations

import importlib.metadata
import pathlib
import subprocess

import jax

PACKAGES = ("latentjax", "jax", "jaxlib", "flax", "orbax-checkpoint", "optax", "numpy")


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """The commit of the checkout latentjax runs from, when it runs from one (else ``None``)."""
    root = pathlib.Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def provenance(stage_seconds: dict[str, float] | None = None) -> dict:
    """``{'versions', 'backend', 'devices', 'git_commit', 'stage_seconds'}`` for results.json.

    >>> sorted(provenance())
    ['backend', 'devices', 'git_commit', 'stage_seconds', 'versions']
    """
    devices = jax.devices()
    return {
        "versions": {name: _version(name) for name in PACKAGES},
        "backend": jax.default_backend(),
        "devices": {"count": len(devices), "kinds": sorted({d.device_kind for d in devices})},
        "git_commit": git_commit(),
        "stage_seconds": dict(stage_seconds or {}),
    }

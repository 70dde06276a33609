"""Directions as files: a round trip, the checks on loading, and the export from a run."""

import json

import jax
import numpy as np
import pytest
from jax.tree_util import Partial

import latentjax as lj
from latentjax.errors import IntegrityError


def test_a_round_trip_keeps_the_directions_and_their_record(tmp_path):
    directions = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)  # [F, C, N]
    generate = Partial(lambda w, z: z @ w, np.ones((5, 4), np.float32))
    path = lj.save_directions(tmp_path / "d.npz", directions, finder=["sefa", "ganspace"],
                              names=["a", "b", "c"], generator=generate, settings={"k": 3}, note="x")
    loaded = lj.load_directions(path, latent_dim=5, generator=generate)
    np.testing.assert_array_equal(loaded.directions, directions)
    assert loaded.metadata["finder"] == ["sefa", "ganspace"] and loaded.metadata["note"] == "x"
    assert loaded.metadata["generator_fingerprint"] == lj.model_fingerprint(generate)
    # Readable without latentjax: the array in the archive, the record beside it.
    np.testing.assert_array_equal(np.load(path)["directions"], directions)
    assert json.loads((tmp_path / "d.json").read_text())["names"] == ["a", "b", "c"]


def test_loading_refuses_another_latent_size_another_generator_and_damage(tmp_path):
    generate = Partial(lambda w, z: z @ w, np.ones((4, 2), np.float32))
    other = Partial(lambda w, z: z @ w, np.full((4, 2), 2.0, np.float32))
    path = lj.save_directions(tmp_path / "d.npz", np.eye(2, 4), finder="apcr", generator=generate)
    with pytest.raises(ValueError, match=r"latent size 4: expected 100"):
        lj.load_directions(path, latent_dim=100)
    with pytest.raises(ValueError, match="was saved for generator .* not this one"):
        lj.load_directions(path, generator=other)
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(IntegrityError, match="damaged.npz: not a readable directions file"):
        lj.load_directions(damaged)
    # A valid archive whose array was changed after saving: the checksum no longer matches.
    with np.load(path) as archive:
        record = str(archive["metadata"])
    np.savez(tmp_path / "edited.npz", directions=np.eye(2, 4, dtype=np.float32) * 2, metadata=np.array(record))
    with pytest.raises(IntegrityError, match="do not match their recorded checksum"):
        lj.load_directions(tmp_path / "edited.npz")


def test_saving_checks_its_input_and_never_overwrites(tmp_path):
    with pytest.raises(ValueError, match=r"shape \(5,\): expected \[C, N\] or \[F, C, N\]"):
        lj.save_directions(tmp_path / "a.npz", np.ones(5))
    with pytest.raises(ValueError, match="NaN or infinite"):
        lj.save_directions(tmp_path / "a.npz", np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="names has 1 entries: expected one per row, 2"):
        lj.save_directions(tmp_path / "a.npz", np.ones((2, 3)), names=["x"])
    with pytest.raises(ValueError, match="ending in .npz"):
        lj.save_directions(tmp_path / "a.npy", np.ones((2, 3)))
    path = lj.save_directions(tmp_path / "a.npz", np.ones((2, 3)))
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        lj.save_directions(path, np.zeros((2, 3)))
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary file left behind


def test_a_saved_direction_moves_codes_as_before(tmp_path):
    """What a user does next: load a direction and manipulate with it."""
    generate = lambda z: z
    classify = lambda x: jax.nn.softmax(np.float32(3.0) * x[:, :2], axis=-1)
    direction = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], np.float32)
    path = lj.save_directions(tmp_path / "d.npz", direction, finder="apcr")
    codes = np.zeros((4, 3), np.float32)
    loaded = lj.load_directions(path, latent_dim=3).directions
    moved = lj.manipulate(generate, classify, codes, loaded[0], 0, alphas=np.array([0.0, 2.0], np.float32))
    assert float(moved.mean_probability[-1]) < 0.1 < float(moved.mean_probability[0])  # same-class mode: out of the class

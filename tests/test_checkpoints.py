"""Checkpoint round trips and the refusal to overwrite."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from latentjax.models import checkpoints


def _tree():
    params = {"w": jnp.arange(6.0).reshape(2, 3), "b": jnp.ones(3, jnp.float32)}
    return {"params": params, "opt": optax.adam(1e-3).init(params), "step": jnp.int32(7)}


def test_manager_round_trip_restores_values_types_and_metadata(tmp_path):
    tree = _tree()
    manager = checkpoints.open_manager(tmp_path / "ckpt")
    checkpoints.save(manager, 3, tree, {"note": "hello"})
    manager.close()
    like = jax.tree.map(jnp.zeros_like, tree)
    restored, metadata = checkpoints.restore(checkpoints.open_manager(tmp_path / "ckpt"), like)
    assert metadata == {"note": "hello"}
    chex.assert_trees_all_equal_dtypes(restored, tree)
    chex.assert_trees_all_equal(restored, tree)


def test_latest_step_is_newest(tmp_path):
    manager = checkpoints.open_manager(tmp_path / "c", max_to_keep=2)
    for step in (1, 2, 3):
        checkpoints.save(manager, step, {"x": jnp.float32(step)})
    assert manager.latest_step() == 3 and sorted(manager.all_steps()) == [2, 3]
    restored, _ = checkpoints.restore(manager, {"x": jnp.float32(0)})
    assert float(restored["x"]) == 3.0


def test_save_final_refuses_to_overwrite(tmp_path):
    checkpoints.save_final(tmp_path / "final", {"x": jnp.ones(2)}, {"a": 1})
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        checkpoints.save_final(tmp_path / "final", {"x": jnp.zeros(2)}, {"a": 2})
    restored, metadata = checkpoints.load_final(tmp_path / "final", {"x": jnp.zeros(2)})
    np.testing.assert_array_equal(restored["x"], [1.0, 1.0])
    assert metadata == {"a": 1}


def test_restore_from_empty_directory_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        checkpoints.restore(checkpoints.open_manager(tmp_path / "empty"), {"x": jnp.ones(1)})


def test_load_final_without_a_target_returns_arrays_as_saved(tmp_path):
    tree = {"apcr": jnp.arange(6.0).reshape(3, 2), "sets": jnp.array([[True, False]])}
    checkpoints.save_final(tmp_path / "a", tree, {})
    restored, _ = checkpoints.load_final(tmp_path / "a")
    np.testing.assert_array_equal(restored["apcr"], tree["apcr"])
    assert restored["sets"].dtype == np.bool_

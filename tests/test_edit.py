"""Editing with a saved direction: the library's `edit_codes` and `latentjax edit` end to end."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import latentjax as lj
from latentjax import cli


def softmax_of_first(x):
    return jax.nn.softmax(jnp.stack([x[:, 0], -x[:, 0]], -1))


def test_edit_codes_moves_each_code_by_each_distance_along_the_unit_direction():
    codes = jax.random.normal(jax.random.key(0), (3, 4))
    direction = jnp.array([0.0, 3.0, 0.0, -4.0])  # length 5
    edit = lj.edit_codes(lambda z: 2.0 * z, softmax_of_first, codes, direction, [-5.0, 0.0, 10.0])
    expected = codes[None] + jnp.array([-5.0, 0.0, 10.0])[:, None, None] * (direction / 5.0)[None, None, :]
    np.testing.assert_allclose(edit.codes, expected, rtol=1e-6)
    np.testing.assert_allclose(edit.images, 2.0 * expected, rtol=1e-6)
    np.testing.assert_allclose(edit.probabilities, softmax_of_first(2.0 * expected.reshape(-1, 4)).reshape(3, 3, 2), rtol=1e-6)
    assert edit.images.shape == (3, 3, 4) and edit.probabilities.shape == (3, 3, 2)


@pytest.mark.parametrize(
    "direction, distances, message",
    [
        (jnp.zeros(4), [1.0], "direction of norm 0.0: expected a finite, non-zero direction"),
        (jnp.ones(5), [1.0], r"direction of shape \(5,\): expected \(4,\)"),
        (jnp.ones(4), [1.0, float("nan")], "distances .*: expected a non-empty list of finite numbers"),
        (jnp.ones(4), [], "distances .*: expected a non-empty list"),
    ],
)
def test_edit_codes_refuses_bad_directions_and_distances(direction, distances, message):
    with pytest.raises(ValueError, match=message):
        lj.edit_codes(lambda z: z, softmax_of_first, jnp.zeros((2, 4)), direction, distances)


# The command-line tests load and compile the shipped models: out of the quick tier, like the
# other end-to-end files (`-m "not slow"`).
cli_test = pytest.mark.slow


@pytest.fixture(scope="module")
def saved_directions(tmp_path_factory):
    """Two finders' directions for the shipped Fashion-MNIST generator, named by class."""
    from latentjax.models.pretrained import load_pretrained

    models = load_pretrained("fashion_mnist")
    path = tmp_path_factory.mktemp("directions") / "directions.npz"
    directions = np.random.default_rng(0).normal(size=(2, 10, models.spec.latent_dim))
    names = [f"class{i}" for i in range(10)]
    lj.save_directions(path, directions, finder=["apcr", "sefa"], names=names, generator=models.generate)
    return path, directions, models


@cli_test
def test_cli_edit_writes_a_grid_a_gif_and_the_edited_codes_with_their_scores(tmp_path, capsys, saved_directions):
    from PIL import Image

    path, directions, models = saved_directions
    output = tmp_path / "edit"
    argv = ["edit", "--directions", str(path), "--finder", "sefa", "--row", "class7", "--num-codes", "3",
            "--distances=-4,0,4", "--seed", "5", "--output", str(output)]
    assert cli.main(argv) == 0
    assert "edit.gif, edit.json, edited.npz, grid.png" in capsys.readouterr().out
    edited = np.load(output / "edited.npz")
    unit = directions[1, 7] / np.linalg.norm(directions[1, 7])
    prior = np.asarray(jax.random.normal(jax.random.key(5), (3, models.spec.latent_dim)))
    np.testing.assert_allclose(edited["codes"], prior[None] + np.array([-4.0, 0.0, 4.0])[:, None, None] * unit, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(edited["probabilities"].sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(  # the scores are the classifier's on the moved codes
        edited["probabilities"][2], models.classify(models.generate(edited["codes"][2])), rtol=1e-4, atol=1e-6
    )
    with Image.open(output / "edit.gif") as gif, Image.open(output / "grid.png") as grid:
        assert gif.n_frames == 4  # -4, 0, 4, then back through 0
        assert grid.size == (2 * (3 * 29 + 1), 2 * (3 * 29 + 1))  # 3 codes x 3 distances
    record = json.loads((output / "edit.json").read_text())
    assert (record["finder"], record["row"], record["name"]) == ("sefa", 7, "class7")
    # Never over an existing folder.
    assert cli.main(argv) == 2
    assert "exists; refusing to overwrite" in capsys.readouterr().err


@cli_test
@pytest.mark.parametrize(
    "flags, message",
    [
        ({"--finder": "pca"}, "finder='pca': this file holds the sets ['apcr', 'sefa']"),
        ({"--row": "class12"}, "row='class12': expected an index in [0, 10) or one of the names"),
        ({"--row": "10"}, "row='10': expected an index in [0, 10)"),
        ({"--distances": "-4,x"}, "--distances='-4,x': expected comma-separated numbers"),
    ],
)
def test_cli_edit_names_a_bad_choice_in_one_line(tmp_path, capsys, saved_directions, flags, message):
    options = {"--directions": str(saved_directions[0]), "--finder": "apcr", "--row": "1",
               "--output": str(tmp_path / "edit"), **flags}
    assert cli.main(["edit", *(f"{k}={v}" for k, v in options.items())]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "edit").exists()


@cli_test
def test_cli_edit_refuses_another_latent_size_and_a_damaged_file(tmp_path, capsys, saved_directions):
    from test_reliability import flip_bytes

    other = tmp_path / "other.npz"
    lj.save_directions(other, np.ones((10, 64)), finder="apcr")
    assert cli.main(["edit", "--directions", str(other), "--row", "0", "--output", str(tmp_path / "a")]) == 2
    assert "holds directions of latent size 64: expected 100" in capsys.readouterr().err
    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes(saved_directions[0].read_bytes())
    flip_bytes(damaged)
    assert cli.main(["edit", "--directions", str(damaged), "--finder", "apcr", "--row", "0", "--output", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err or "not a readable directions file" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_photos_are_read_as_the_generators_images_and_unreadable_files_are_named(tmp_path):
    from PIL import Image

    from latentjax.images import read_photos

    Image.new("RGB", (40, 30), (255, 255, 255)).save(tmp_path / "white.png")
    half = np.zeros((20, 20, 3), np.uint8)
    half[:, 10:] = 255  # left black, right white
    Image.fromarray(half).save(tmp_path / "half.jpg", quality=100)
    grey = read_photos([tmp_path / "white.png", tmp_path / "half.jpg"], 28, 28, 1)
    assert grey.shape == (2, 28, 28, 1) and grey.dtype == np.float32
    np.testing.assert_array_equal(grey[0], 1.0)
    assert grey[1, :, :10].max() < -0.9 and grey[1, :, 18:].min() > 0.9  # resized whole, not cropped
    colour = read_photos([tmp_path / "half.jpg"], 64, 64, 3)
    assert colour.shape == (1, 64, 64, 3) and -1.0 <= colour.min() and colour.max() <= 1.0
    (tmp_path / "notes.txt").write_text("not a photo")
    with pytest.raises(ValueError, match=r"notes.txt: not a readable image .* expected a photo"):
        read_photos([tmp_path / "white.png", tmp_path / "notes.txt"], 28, 28, 1)
    with pytest.raises(ValueError, match=r"channels=2: expected 1 \(grey\) or 3 \(RGB\)"):
        read_photos([tmp_path / "white.png"], 28, 28, 2)


@cli_test
def test_cli_edit_inverts_photos_then_moves_them(tmp_path, capsys, saved_directions):
    from PIL import Image

    path, _, models = saved_directions
    photos = []
    for index, value in enumerate((40, 200)):
        photo = np.zeros((56, 56), np.uint8)
        photo[8:48, 16:40] = value  # a light block on black, as Fashion-MNIST draws its garments
        photos.append(tmp_path / f"photo{index}.png")
        Image.fromarray(photo).save(photos[-1])
    output = tmp_path / "edit"
    argv = ["edit", "--directions", str(path), "--finder", "apcr", "--row", "class0", "--images",
            *map(str, photos), "--distances=0,4", "--no-gif", "--output", str(output)]
    assert cli.main(argv) == 0
    edited = np.load(output / "edited.npz")
    assert edited["codes"].shape == (2, 2, models.spec.latent_dim)
    record = json.loads((output / "edit.json").read_text())
    assert record["codes"]["images"] == [str(p) for p in photos]
    (tmp_path / "broken.png").write_bytes(b"not a png")
    argv[argv.index(str(photos[1]))] = str(tmp_path / "broken.png")
    argv[-1] = str(tmp_path / "other")
    assert cli.main(argv) == 2
    assert "broken.png: not a readable image" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()

"""A harder planted problem, built so that a wrong method fails it (tests/planted.py is the easy one).

Latent width 16, four classes. Class ``j``'s score is a graded, signed sum over three planted
dimensions, strongest first, plus a small leak from every dimension:

    s_j = sum_r GAINS[r] z[PLANTED[j][r]] + sum_i LEAK[i, j] z_i,      GAINS = (2.0, -1.2, 0.6)

and the classifier saturates: ``softmax(4 tanh(s / 3))``. So the order of the top dimensions
matters (K = 1 must be the strongest), one planted dimension per class lowers its class (a method
must keep signs), dimensions off the plant move the class a little (never exactly zero), and no
linear reading of the logits is exact. Every dimension also drives eight nuisance pixels that the
classifier ignores.
"""

import jax
import jax.numpy as jnp
import numpy as np

LATENT_DIM = 16
NUM_CLASSES = 4
PLANTED = ((3, 11, 6), (5, 14, 1), (0, 9, 13), (7, 12, 2))  # per class, strongest first
GAINS = (2.0, -1.2, 0.6)
LEAK_SCALE = 0.08  # the largest off-plant effect is well under the weakest planted one (0.6)

_MIX = np.random.default_rng(3).uniform(-LEAK_SCALE, LEAK_SCALE, (LATENT_DIM, NUM_CLASSES)).astype(np.float32)
for _j, _dims in enumerate(PLANTED):
    for _gain, _i in zip(GAINS, _dims):
        _MIX[_i, _j] = _gain
MIX = jnp.asarray(_MIX)
NUISANCE = jax.random.normal(jax.random.key(42), (LATENT_DIM, 8)) / 4.0


def generate(z):
    return jnp.concatenate([z @ MIX, jnp.tanh(z @ NUISANCE)], axis=-1)


def classify(x):
    return jax.nn.softmax(4.0 * jnp.tanh(x[:, :NUM_CLASSES] / 3.0), axis=-1)


def attribute_probabilities(x):
    """The same scores read as four independent attributes: ``sigmoid(3 tanh(s_a / 3))``. A code
    can have several attributes or none, and its rows do not sum to one."""
    return jax.nn.sigmoid(3.0 * jnp.tanh(x[:, :NUM_CLASSES] / 3.0))


def strongest(k: int) -> np.ndarray:
    """``[C, N]`` mask of each class's ``k`` strongest planted dimensions (``k <= 3``)."""
    mask = np.zeros((NUM_CLASSES, LATENT_DIM), bool)
    for j, dims in enumerate(PLANTED):
        mask[j, list(dims[:k])] = True
    return mask


def raising_signs() -> np.ndarray:
    """``[C, 3]``: the sign of each planted dimension's move that raises its class."""
    return np.array([[np.sign(g) for g in GAINS]] * NUM_CLASSES)


def class_codes(samples_per_class=32, seed=0, classify=classify):
    from latentjax import sample_class_latents

    return sample_class_latents(
        generate, classify, jax.random.key(seed), latent_dim=LATENT_DIM, num_classes=NUM_CLASSES,
        samples_per_class=samples_per_class, threshold=0.9, batch_size=1024, max_draws=200_000,
    ).codes


def ranks_like_the_plant(scores, ranked=None) -> bool:
    """``scores[C, N]``: K = 1 is each class's strongest planted dimension; its planted dimensions
    rank in the order of their gains; and K = 12 (more than the plant) holds all three."""
    import latentjax as lj

    ranked = lj.ranked_indices if ranked is None else ranked
    scores = jnp.asarray(scores)
    top_one = np.array_equal(np.asarray(lj.top_k_mask(scores, 1)), strongest(1))
    in_order = ranked(scores, jnp.asarray(strongest(3))) == [list(d) for d in PLANTED]
    wide = bool(np.all(np.asarray(lj.top_k_mask(scores, 12))[strongest(3)]))
    return top_one and in_order and wide


def signs_like_the_plant(directions) -> bool:
    """``directions[C, N]``: on each planted dimension, the sign of the move that raises the class."""
    picked = np.stack([np.asarray(directions)[j, list(d)] for j, d in enumerate(PLANTED)])
    return np.array_equal(np.sign(picked), raising_signs())

"""A generator and classifier whose controlling dimensions are known (planted).

Latent width 16, four classes. Class ``j``'s logit is ``GAIN * sum(z[PLANTED[j]])``: the
generator writes those sums into four "semantic" pixels, which are all the classifier reads.
Every latent dimension (planted or not) also drives eight "nuisance" pixels through a fixed
random matrix; the classifier ignores them, so unplanted dimensions change the image but never
the class.
"""

import jax
import jax.numpy as jnp
import numpy as np

LATENT_DIM = 16
NUM_CLASSES = 4
PLANTED = ((3, 11), (5, 14), (0, 9), (7, 12))
UNPLANTED = tuple(sorted(set(range(LATENT_DIM)) - {i for dims in PLANTED for i in dims}))
GAIN = 3.0
K = 2

_SELECT = np.zeros((LATENT_DIM, NUM_CLASSES), np.float32)
for _j, _dims in enumerate(PLANTED):
    _SELECT[list(_dims), _j] = 1.0
SELECT = jnp.asarray(_SELECT)
NUISANCE = jax.random.normal(jax.random.key(42), (LATENT_DIM, 8)) / 4.0


def generate(z):
    return jnp.concatenate([z @ SELECT, jnp.tanh(z @ NUISANCE)], axis=-1)


def classify(x):
    return jax.nn.softmax(GAIN * x[:, :NUM_CLASSES], axis=-1)


def planted_mask():
    return jnp.asarray(_SELECT.T > 0)  # [C, N]


def class_codes(samples_per_class=32, seed=0):
    from latentjax import sample_class_latents

    return sample_class_latents(
        generate,
        classify,
        jax.random.key(seed),
        latent_dim=LATENT_DIM,
        num_classes=NUM_CLASSES,
        samples_per_class=samples_per_class,
        batch_size=256,
    ).codes

"""Flax models: a DCGAN-style generator and discriminator, and a CNN classifier.

We use Flax Linen rather than NNX because every model is then already the functional face the
analysis needs: ``module.apply(variables, x)`` is a pure function of a plain pytree of arrays, so
``jax.vmap`` over a stack of per-seed variables, ``jax.jit`` and Orbax checkpointing need no
``split``/``merge`` step and no special transforms.

The generator upsamples with sub-pixel convolutions (a convolution to ``4x`` channels followed by
depth-to-space) instead of ``ConvTranspose``: with the same shapes it is a few times faster to
train on XLA:CPU, where the transposed convolution's gradient is very slow.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.tree_util import Partial

#: Flax's BatchNorm epsilon (its default), used where the first block is computed from weights.
BATCH_NORM_EPSILON = 1e-5

Variables = Any  # {'params': ..., 'batch_stats': ...}

# The classifier standardises its own input with its data set's pixel statistics on the [0, 1]
# scale (from the config: configs/default.py, configs/zappos.py), so callers always pass images
# in the generator's range [-1, 1]. Without them it leaves the [0, 1] scale as it is.
NO_STANDARDISATION = (0.0, 1.0)


def depth_to_space(x: jax.Array, block: int = 2) -> jax.Array:
    """Rearranges ``[B, H, W, C * block**2]`` into ``[B, H * block, W * block, C]``."""
    b, h, w, c = x.shape
    out_c = c // (block * block)
    x = x.reshape(b, h, w, block, block, out_c)
    x = x.transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * block, w * block, out_c)


def max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pooling with stride 2 (``VALID``: an odd last row or column is dropped), the same
    values as ``flax.linen.max_pool(x, (2, 2), strides=(2, 2))``.

    As a reshape and a max, because its gradient is then a mask: ``max_pool``'s
    select-and-scatter gradient is about 5x slower on XLA:CPU, and Method B differentiates through
    the classifier at every step (docs/results.md, "Method B against PyTorch").

    >>> import jax.numpy as jnp
    >>> max_pool_2x2(jnp.arange(16.0).reshape(1, 4, 4, 1))[0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    b, h, w, c = x.shape
    x = x[:, : h - h % 2, : w - w % 2]
    return x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def num_upsamplings(image_size: int) -> int:
    """How many 2x upsamplings take a start grid of at most 8 pixels to ``image_size``."""
    n = 0
    size = image_size
    while size > 8:
        if size % 2:
            raise ValueError(
                f"image_size={image_size} cannot be reached by 2x upsampling from a grid of at "
                "most 8 pixels; expected a size such as 28 or 64."
            )
        size //= 2
        n += 1
    return n


class Generator(nn.Module):
    """``z[B, latent_dim] -> x[B, size, size, channels]`` in [-1, 1] (tanh output)."""

    latent_dim: int = 100
    image_size: int = 28
    channels: int = 1
    base_width: int = 64
    bn_momentum: float = 0.9

    @nn.compact
    def __call__(self, z: jax.Array, train: bool = False) -> jax.Array:
        n_up = num_upsamplings(self.image_size)
        start = self.image_size // 2**n_up
        width = self.base_width * 2**n_up
        norm = lambda: nn.BatchNorm(
            use_running_average=not train, momentum=self.bn_momentum, epsilon=BATCH_NORM_EPSILON
        )
        x = nn.Dense(start * start * width)(z)
        x = nn.relu(norm()(x)).reshape(z.shape[0], start, start, width)
        for _ in range(n_up):
            width //= 2
            x = depth_to_space(nn.Conv(4 * width, (3, 3))(x))
            x = nn.relu(norm()(x))
        return jnp.tanh(nn.Conv(self.channels, (3, 3))(x))


class Discriminator(nn.Module):
    """``x[B, size, size, channels] -> logit[B]`` (real is positive)."""

    base_width: int = 64

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        width = self.base_width
        while x.shape[1] > 7:
            x = nn.leaky_relu(nn.Conv(width, (4, 4), strides=(2, 2))(x), 0.2)
            width *= 2
        return nn.Dense(1)(x.reshape(x.shape[0], -1))[:, 0]


PixelStatistic = float | tuple[float, ...]  # one value, or one per channel


class Classifier(nn.Module):
    """VGG-style CNN: ``x[B, H, W, C]`` in [-1, 1] to class logits ``[B, num_classes]``.

    It standardises its input itself (``mean``/``std`` on the [0, 1] scale, one value or one
    per channel), so ``classify(generate(z))`` and ``classify(real_image)`` see the same
    preprocessing. ``blocks`` stages of two convolutions and a 2x2 max-pool, each twice as wide
    as the last, shrink the image by ``2**blocks`` before the dense layers (2 for 28x28, 3 for
    64x64 keeps the dense layer small).
    """

    num_classes: int = 10
    width: int = 32
    hidden: int = 256
    dropout: float = 0.3
    mean: PixelStatistic = NO_STANDARDISATION[0]
    std: PixelStatistic = NO_STANDARDISATION[1]
    blocks: int = 2

    @nn.compact
    def __call__(
        self, x: jax.Array, train: bool = False, return_features: bool = False
    ) -> jax.Array:
        norm = lambda: nn.BatchNorm(use_running_average=not train, momentum=0.9)
        # A scalar, or one value per channel on the last axis.
        mean = jnp.asarray(self.mean, dtype=x.dtype).reshape(-1)[(None,) * (x.ndim - 1)]
        std = jnp.asarray(self.std, dtype=x.dtype).reshape(-1)[(None,) * (x.ndim - 1)]
        x = ((x + 1.0) / 2.0 - mean) / std
        for width in (self.width * 2**b for b in range(self.blocks)):
            for _ in range(2):
                x = nn.relu(norm()(nn.Conv(width, (3, 3), use_bias=False)(x)))
            x = max_pool_2x2(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        features = nn.relu(norm()(nn.Dense(self.hidden, use_bias=False)(x)))
        if return_features:
            return features
        x = nn.Dropout(0.5, deterministic=not train)(features)
        return nn.Dense(self.num_classes)(x)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Architecture hyper-parameters shared by training, export and loading."""

    latent_dim: int
    image_size: int
    channels: int
    num_classes: int
    generator_width: int
    discriminator_width: int
    classifier_width: int
    classifier_hidden: int
    classifier_dropout: float
    pixel_mean: PixelStatistic = NO_STANDARDISATION[0]
    pixel_std: PixelStatistic = NO_STANDARDISATION[1]
    classifier_blocks: int = 2  # models exported before this field have 2

    def __post_init__(self):
        # Per-channel statistics come back from JSON metadata as lists; modules must hash.
        for name in ("pixel_mean", "pixel_std"):
            value = getattr(self, name)
            if isinstance(value, (list, tuple)):
                object.__setattr__(self, name, tuple(float(v) for v in value))

    @classmethod
    def from_config(cls, config) -> "ModelSpec":
        return cls(
            latent_dim=config.latent_dim,
            image_size=config.image_size,
            channels=config.channels,
            num_classes=config.num_classes,
            generator_width=config.generator.base_width,
            discriminator_width=config.discriminator.base_width,
            classifier_width=config.classifier.width,
            classifier_hidden=config.classifier.hidden,
            classifier_dropout=config.classifier.dropout,
            pixel_mean=config.classifier.pixel_mean,
            pixel_std=config.classifier.pixel_std,
            classifier_blocks=config.classifier.get("blocks", 2),
        )

    def generator(self) -> Generator:
        return Generator(self.latent_dim, self.image_size, self.channels, self.generator_width)

    def discriminator(self) -> Discriminator:
        return Discriminator(self.discriminator_width)

    def classifier(self) -> Classifier:
        return Classifier(
            self.num_classes,
            self.classifier_width,
            self.classifier_hidden,
            self.classifier_dropout,
            self.pixel_mean,
            self.pixel_std,
            self.classifier_blocks,
        )


@dataclasses.dataclass(frozen=True)
class ModelApply:
    """``apply(variables, x)``: one frozen network's forward pass, the function of a model pytree.

    A frozen dataclass of the (hashable) Flax module, so two models of one architecture have
    *equal* apply functions: jitted code that takes ``Partial(ModelApply(...), variables)`` as
    an argument compiles once for both, and their variables stack for ``jax.vmap``.
    """

    module: nn.Module
    output: str  # 'images' or 'first_block' (generator), 'probabilities' or 'features' (classifier)

    def __call__(self, variables: Variables, x: jax.Array) -> jax.Array:
        if self.output == "images":
            return self.module.apply(variables, x, train=False)
        if self.output == "first_block":
            # Dense -> BatchNorm (running statistics) -> ReLU, computed from the weights: no
            # forward pass through the rest of the network.
            dense, norm = variables["params"]["Dense_0"], variables["params"]["BatchNorm_0"]
            stats = variables["batch_stats"]["BatchNorm_0"]
            y = x @ dense["kernel"] + dense["bias"][None]
            y = (y - stats["mean"][None]) * jax.lax.rsqrt(stats["var"][None] + BATCH_NORM_EPSILON)
            return jax.nn.relu(y * norm["scale"][None] + norm["bias"][None])
        if self.output == "features":
            return self.module.apply(variables, x, train=False, return_features=True)
        return jax.nn.softmax(self.module.apply(variables, x, train=False), axis=-1)


def make_generate(spec: ModelSpec, variables: Variables) -> Partial:
    """The frozen generator as a model pytree: ``generate(z[B, N]) -> x[B, H, W, C]``.

    It is ``jax.tree_util.Partial(ModelApply(generator, 'images'), variables)``: callable like a
    function, and a pytree whose leaves are the weights, so jitted analysis code traces the
    weights instead of baking them in, and ``latentjax.stack_pytrees`` stacks seeds for ``vmap``.
    """
    return Partial(ModelApply(spec.generator(), "images"), variables)


def make_generator_layer(spec: ModelSpec, variables: Variables) -> Partial:
    """The generator's first block as a model pytree, ``z -> relu(BN(z W + b))[B, D]``: the early
    layer whose activations GANSpace analyses (``find_directions('ganspace', ..., layer=...)``).

    After the nonlinearity, not the linear output: PCA of ``z W + b`` over Gaussian ``z`` has the
    eigenvectors of ``W W^T`` for directions, which is SeFa's answer again.
    """
    return Partial(ModelApply(spec.generator(), "first_block"), variables)


def make_classify(spec: ModelSpec, variables: Variables) -> Partial:
    """The frozen classifier as a model pytree: ``classify(x) -> probs[B, C]`` (softmax)."""
    return Partial(ModelApply(spec.classifier(), "probabilities"), variables)


def make_features(spec: ModelSpec, variables: Variables) -> Partial:
    """The classifier's penultimate features as a model pytree, ``x -> f[B, hidden]``."""
    return Partial(ModelApply(spec.classifier(), "features"), variables)

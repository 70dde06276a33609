"""What a classifier's outputs mean: one softmax over classes, or independent attributes.

Every method reads ``Q_j``, the probability the classifier gives to class or attribute ``j``.
Two kinds of classifier give it:

- **classes** (the default): ``classify(x)[B, C]`` is a softmax, each row non-negative and
  summing to one; a code *belongs to* class ``j`` when ``j`` is its argmax.
- **attributes**: ``classify(x)[B, A]`` holds ``A`` independent probabilities in ``[0, 1]``
  (sigmoid outputs: smiling, boot height, ...); a code *has* attribute ``a`` when
  ``Q_a >= 0.5``, and may have several or none. Wrap such a classifier with
  :func:`attribute_classifier`.

The kind travels with the classifier as its pytree type, so it is known when a program is traced
and costs nothing at run time. APCR, Method B and the sets read ``Q_j`` alone and are the same for
both kinds; what changes is which rows are valid outputs, which prior codes enter ``Z_j``, and
what a *flip* is: leaving the argmax for classes, ``Q_a`` falling below 0.5 for attributes.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from latentjax.analysis.parallel import as_pytree

#: ``Q_a`` at or above which a code has attribute ``a``.
ATTRIBUTE_DECISION = 0.5


@jax.tree_util.register_pytree_node_class
class AttributeClassifier:
    """A classifier whose outputs ``[B, A]`` are independent per-attribute probabilities.

    A pytree whose one child is the wrapped classifier (as :func:`as_pytree` gives it), so its
    weights stay traced arguments: a new model does not recompile, and stacked models vmap.
    """

    def __init__(self, classify: Callable):
        self.classify = as_pytree(classify)

    def __call__(self, images):
        return self.classify(images)

    def tree_flatten(self):
        return (self.classify,), None

    @classmethod
    def tree_unflatten(cls, _, children):
        wrapped = object.__new__(cls)
        (wrapped.classify,) = children
        return wrapped

    def __repr__(self) -> str:
        return f"attribute_classifier({self.classify!r})"


def attribute_classifier(classify: Callable) -> AttributeClassifier:
    """Marks ``classify`` as returning independent attribute probabilities ``[B, A]``.

    Pass the result wherever a classifier is taken; ``Z_a`` then holds codes with
    ``Q_a >= threshold``, and a code flips when ``Q_a`` falls below 0.5.

    >>> import jax, jax.numpy as jnp
    >>> smiling_and_tall = attribute_classifier(lambda x: jax.nn.sigmoid(4.0 * x[:, :2]))
    >>> [round(float(p), 3) for p in smiling_and_tall(jnp.array([[1.0, 1.0, 0.0]]))[0]]  # not summing to 1
    [0.982, 0.982]
    >>> is_attribute_classifier(smiling_and_tall), is_attribute_classifier(lambda x: x)
    (True, False)
    """
    if isinstance(classify, AttributeClassifier):
        return classify
    if not callable(classify):
        raise TypeError(f"expected a callable classifier, got {type(classify).__name__}: {classify!r}")
    return AttributeClassifier(classify)


def is_attribute_classifier(classify) -> bool:
    """Whether ``classify`` returns independent attributes (see :func:`attribute_classifier`):
    ``Q[b, a] in [0, 1]`` each on its own, rather than a softmax with ``sum_j Q[b, j] = 1``.

    >>> import jax
    >>> is_attribute_classifier(jax.nn.softmax), is_attribute_classifier(attribute_classifier(jax.nn.sigmoid))
    (False, True)"""
    return isinstance(classify, AttributeClassifier)


def decisions(probs: jax.Array, independent: bool) -> jax.Array:
    """``bool[..., C]``: which classes or attributes each row of ``probs[..., C]`` is decided as.

    Classes: exactly one, the argmax. Attributes: each with ``Q_a >= 0.5``.

    >>> import jax.numpy as jnp
    >>> p = jnp.array([[0.6, 0.7], [0.2, 0.1]])
    >>> decisions(p, independent=False).tolist(), decisions(p, independent=True).tolist()
    ([[False, True], [True, False]], [[True, True], [False, False]])
    """
    if independent:
        return probs >= ATTRIBUTE_DECISION
    return jax.nn.one_hot(jnp.argmax(probs, axis=-1), probs.shape[-1], dtype=jnp.bool_)

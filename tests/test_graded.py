"""Methods A and B on the graded plant (tests/graded.py), and wrong versions that it catches.

The easy plant (tests/planted.py: equal gains, K equal to the planted size, no effect off the
plant, a linear classifier) lets every method score IR = 1 and never looks at the order or the
signs. Each check below is used twice: on the method (it must pass) and on a named wrong version
(it must fail); where the easy plant's test passed the wrong version, the test shows that too.
"""

import jax
import jax.numpy as jnp
import pytest

import latentjax as lj

import graded
import planted


@pytest.fixture(scope="module")
def codes():
    return graded.class_codes(samples_per_class=16)


@pytest.fixture(scope="module")
def apcr(codes):
    return lj.compute_apcr(graded.generate, graded.classify, codes, m=3)


@pytest.fixture(scope="module")
def weights(codes):
    return lj.optimize_weights(graded.generate, graded.classify, codes, jax.random.key(0), settings=lj.CONVERGED_READING).weights


def test_method_a_ranks_and_signs_the_graded_plant(apcr):
    assert graded.ranks_like_the_plant(apcr.apcr.T)
    assert graded.signs_like_the_plant(apcr.directions.T)


def test_method_b_ranks_and_signs_the_graded_plant(weights):
    assert graded.ranks_like_the_plant(jnp.abs(weights))
    assert graded.signs_like_the_plant(weights)


def test_the_paper_finders_keep_the_plants_signs(codes):
    # K = 12 holds every planted dimension (see graded.ranks_like_the_plant); the signs must survive.

    for name, options in (("apcr", dict(m=3)), ("weights", dict(settings=lj.CONVERGED_READING))):
        directions = lj.find_directions(name, graded.generate, graded.classify, codes, jax.random.key(0), k=12, **options)
        assert graded.signs_like_the_plant(directions), name


def test_wrong_rankings_and_unsigned_sets_fail_the_graded_checks(apcr):
    # Reversed order (lowest score first): the easy plant's test never read the order.
    reversed_ranking = lambda scores, mask: [row[::-1] for row in lj.ranked_indices(scores, mask)]
    assert not graded.ranks_like_the_plant(apcr.apcr.T, ranked=reversed_ranking)
    assert not graded.ranks_like_the_plant(-apcr.apcr.T)  # the smallest scores taken as the largest
    # Unsigned sets (every sign +1): the easy plant, whose gains are all positive, passed them.
    unsigned = jnp.abs(apcr.directions.T)
    assert not graded.signs_like_the_plant(unsigned)
    easy = lj.compute_apcr(planted.generate, planted.classify, planted.class_codes(16), m=3)
    assert bool(jnp.all(jnp.abs(easy.directions.T)[planted.planted_mask()] == easy.directions.T[planted.planted_mask()]))

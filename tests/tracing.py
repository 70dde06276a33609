"""Compile counts through the public API: a model function that counts its own calls.

JAX calls a model's Python function only while it traces a program, never when it runs a compiled
one, so a count that stays put across two calls of a public function means the second call
reused the first one's program (a new trace is a new compilation).
"""

from __future__ import annotations

import functools


def counting_traces(fn):
    """``(counted, calls)``: ``counted`` does what ``fn`` does and appends to ``calls`` each time
    it is called. Build it once per test: it is the same function (the same cache key) for every
    call that receives it, alone or as the function of a ``jax.tree_util.Partial``.
    """
    calls = []

    @functools.wraps(fn)
    def counted(*args, **kwargs):
        calls.append(None)
        return fn(*args, **kwargs)

    return counted, calls

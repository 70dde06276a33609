"""APCR sweep speed of the shipped models against the rows per chunk (and device).

Run with the device count under test, e.g.:

    XLA_FLAGS=--xla_force_host_platform_device_count=2 .venv/bin/python benchmarks/chunk_sizes.py 128 256 512

Prints evaluations per second for each chunk size (S=2 codes per class, m=6). Repeat runs: on a
shared 2-core machine the spread between runs is about 15%. Results in docs/results.md.
"""

import sys
import time

import jax

import latentjax as lj


def main(chunk_sizes: list[int]) -> None:
    models = lj.load_pretrained()
    codes = jax.random.normal(jax.random.key(1), (10, 2, 100))
    evaluations = 10 * 2 * (100 * 12 + 1)
    print(f"{jax.local_device_count()} device(s)")
    for chunk in chunk_sizes:
        sweep = lambda: lj.compute_apcr(models.generate, models.classify, codes, chunk_size=chunk).apcr
        jax.block_until_ready(sweep())  # compile
        start = time.perf_counter()
        jax.block_until_ready(sweep())
        print(f"chunk {chunk}: {evaluations / (time.perf_counter() - start):.0f} evaluations/s", flush=True)


if __name__ == "__main__":
    main([int(c) for c in sys.argv[1:]] or [128, 256, 512, 1024])

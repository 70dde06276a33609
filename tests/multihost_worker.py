"""One process of a 2-process CPU run of the multi-host path (started by test_pytrees.py).

Usage: python multihost_worker.py PORT PROCESS_ID OUTPUT.npz
It joins the run with ``jax.distributed.initialize``, takes its share of four model seeds with
``latentjax.process_share`` and writes the APCR of each to OUTPUT.npz.
"""

import sys

import jax
import numpy as np


def main(port: str, process_id: int, output: str) -> None:
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=2, process_id=process_id
    )

    import latentjax as lj

    from test_pytrees import SEEDS_CODES, flax_models

    assert jax.process_count() == 2 and jax.process_index() == process_id
    mine = lj.process_share(range(4))
    _, classify = flax_models(0)
    results = {
        f"seed{seed}": np.asarray(lj.compute_apcr(flax_models(seed)[0], classify, SEEDS_CODES(), m=1).apcr)
        for seed in mine
    }
    np.savez(output, **results)
    jax.distributed.shutdown()


if __name__ == "__main__":  # pytest imports this file when it collects doctests
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])

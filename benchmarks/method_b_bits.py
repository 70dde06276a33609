"""A digest of make run's Method B weights for one analysis seed, to compare commits or machines.

Two checkouts (or two machines) that print the same digests compute the same latent sets and the
same Method B path, bit for bit; where the latent digest agrees and the weights digest does not,
the arithmetic of Method B differs (docs/results.md, "make run").

    .venv/bin/python benchmarks/method_b_bits.py [--seed 0] [--steps 40]

The first ``--steps`` of Method B's 250 run the same compiled block as the whole run, so a few
dozen steps are enough to tell. Prints ``latents <sha256[:12]> weights <sha256[:12]>``.
"""

import argparse
import hashlib
import pathlib

import numpy as np

import latentjax as lj
from latentjax.config import load_config
from latentjax.experiment import stages


def digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array)).tobytes()).hexdigest()[:12]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    lj.use_host_cores()  # as the latentjax command runs it
    config = load_config(str(pathlib.Path(__file__).resolve().parents[1] / "configs" / "default.py"))
    a = config.analysis
    a.seeds, a.method_b.steps = (args.seed,), args.steps
    models = lj.load_pretrained(a.pretrained)
    latents = stages.class_latents(
        models.generate, models.classify, stages.latent_settings(a), a.seeds, latent_dim=config.latent_dim,
        num_classes=config.num_classes,
    )
    weights = stages.optimised_weights(
        models.generate, models.classify, stages.method_b_settings(a), stages.stability_settings(a), a.seeds, latents
    )
    print(f"latents {digest(latents.codes)} weights {digest(weights.weights)}")


if __name__ == "__main__":
    main()

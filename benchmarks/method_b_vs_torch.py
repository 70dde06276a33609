"""Method B against a straightforward PyTorch loop of the same objective, measured in one run.

The same work on both sides: the shipped Fashion-MNIST generator and classifier (their weights
copied into PyTorch modules of the same architecture, checked to give the same probabilities),
C = 10 classes optimised together, a batch of 8 codes per class and step, one ``u ~ U[1, 3]``
per code, both signs of ``xi``, the exact ``1 - max_s |dS|`` plus ``0.2 ||w||_2``, Adam at
learning rate 0.03, and the projection onto ``[-1, 1]`` after every step (``make run``'s
settings). Both are timed over ``--steps`` steps after a warm-up run of the same length (for
JAX, the warm-up is the compilation). Prints class-steps per second for each and their ratio.

Run:  .venv/bin/python benchmarks/method_b_vs_torch.py [--steps 40] [--repeats 3] [--one-device]
(needs ``pip install torch``; PyTorch uses as many threads as XLA:CPU has cores. latentjax runs
as the ``latentjax`` command does, one XLA device per core, unless ``--one-device``.)
Results go to docs/results.md by hand.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import numpy as np

import latentjax as lj
from latentjax.models.pretrained import load_pretrained

NUM_CLASSES, BATCH, LAM, LEARNING_RATE, XI_RANGE = 10, 8, 0.2, 3e-2, (1.0, 3.0)


def torch_models(models):
    """The shipped generator and classifier as PyTorch modules with the same weights (NCHW)."""
    import torch
    from torch import nn

    t = lambda a: torch.from_numpy(np.array(a, np.float32))
    gv, cv = models.generator_variables, models.classifier_variables

    def conv(p, bias=True):
        kernel = p["kernel"]
        layer = nn.Conv2d(kernel.shape[2], kernel.shape[3], kernel.shape[:2], padding="same", bias=bias)
        layer.weight.data = t(kernel).permute(3, 2, 0, 1).contiguous()
        if bias:
            layer.bias.data = t(p["bias"])
        return layer

    def linear(p, bias=True):
        layer = nn.Linear(*p["kernel"].shape, bias=bias)
        layer.weight.data = t(p["kernel"]).T.contiguous()
        if bias:
            layer.bias.data = t(p["bias"])
        return layer

    def norm(params, stats, cls):
        layer = cls(params["scale"].shape[0], eps=1e-5)
        layer.weight.data, layer.bias.data = t(params["scale"]), t(params["bias"])
        layer.running_mean.data, layer.running_var.data = t(stats["mean"]), t(stats["var"])
        return layer

    def depth_to_space(x):  # NCHW in, the same channel order as latentjax.models.depth_to_space
        b, c, h, w = x.shape
        x = x.permute(0, 2, 3, 1).reshape(b, h, w, 2, 2, c // 4).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(b, 2 * h, 2 * w, c // 4).permute(0, 3, 1, 2)

    gp, gs = gv["params"], gv["batch_stats"]
    width = gp["Conv_0"]["kernel"].shape[2]
    start = int(round((gp["Dense_0"]["kernel"].shape[1] / width) ** 0.5))

    class Generator(nn.Module):
        def __init__(self):
            super().__init__()
            self.dense, self.norm0 = linear(gp["Dense_0"]), norm(gp["BatchNorm_0"], gs["BatchNorm_0"], nn.BatchNorm1d)
            self.convs = nn.ModuleList([conv(gp["Conv_0"]), conv(gp["Conv_1"])])
            self.norms = nn.ModuleList([norm(gp[f"BatchNorm_{i}"], gs[f"BatchNorm_{i}"], nn.BatchNorm2d) for i in (1, 2)])
            self.out = conv(gp["Conv_2"])

        def forward(self, z):
            x = torch.relu(self.norm0(self.dense(z))).reshape(-1, start, start, width).permute(0, 3, 1, 2)
            for c, n in zip(self.convs, self.norms):
                x = torch.relu(n(depth_to_space(c(x))))
            return torch.tanh(self.out(x))

    cp, cs = cv["params"], cv["batch_stats"]
    spec = models.spec

    class Classifier(nn.Module):
        def __init__(self):
            super().__init__()
            self.convs = nn.ModuleList([conv(cp[f"Conv_{i}"], bias=False) for i in range(4)])
            self.norms = nn.ModuleList([norm(cp[f"BatchNorm_{i}"], cs[f"BatchNorm_{i}"], nn.BatchNorm2d) for i in range(4)])
            self.hidden = linear(cp["Dense_0"], bias=False)
            self.norm_hidden = norm(cp["BatchNorm_4"], cs["BatchNorm_4"], nn.BatchNorm1d)
            self.out = linear(cp["Dense_1"])

        def forward(self, x):
            x = ((x + 1.0) / 2.0 - spec.pixel_mean) / spec.pixel_std
            for i in range(4):
                x = torch.relu(self.norms[i](self.convs[i](x)))
                if i % 2:
                    x = torch.nn.functional.max_pool2d(x, 2)
            x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # flattened as Flax does (NHWC)
            return torch.softmax(self.out(torch.relu(self.norm_hidden(self.hidden(x)))), dim=-1)

    return Generator().eval(), Classifier().eval()


def torch_method_b(generate, classify, codes, base, steps, seed=0):
    """The straightforward loop: one Adam step of all classes per iteration, then the box."""
    import torch

    torch.manual_seed(seed)
    num_classes, num_codes, latent_dim = codes.shape
    for p in list(generate.parameters()) + list(classify.parameters()):
        p.requires_grad_(False)
    w = torch.full((num_classes, latent_dim), 0.5, requires_grad=True)
    optimizer = torch.optim.Adam([w], lr=LEARNING_RATE)
    own = torch.arange(num_classes)
    for _ in range(steps):
        idx = torch.randint(0, num_codes, (num_classes, BATCH))
        batch = torch.gather(codes, 1, idx[..., None].expand(-1, -1, latent_dim))  # [C, B, N]
        b = torch.gather(base, 1, idx)
        xi = torch.empty(num_classes, BATCH, 1).uniform_(*XI_RANGE)
        step = xi * w[:, None, :]
        moved = torch.stack([batch + step, batch - step]).reshape(-1, latent_dim)
        probs = classify(generate(moved)).reshape(2, num_classes, BATCH, -1)
        scores = probs[:, own, :, own]  # [C, 2, B]: each class's own probability
        change = torch.abs(scores - b[:, None, :]).amax(dim=1)
        loss = (1.0 - change).mean(dim=1) + LAM * torch.sqrt((w * w).sum(dim=1) + 1e-12)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        with torch.no_grad():
            w.clamp_(-1.0, 1.0)
    return w.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each, best kept")
    parser.add_argument("--one-device", action="store_true",
                        help="one XLA device for all cores (default: one per core, as the latentjax command runs)")
    args = parser.parse_args()
    if not args.one_device:
        lj.use_host_cores()
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(cores)
    models = load_pretrained("fashion_mnist")
    codes = jax.random.normal(jax.random.key(0), (NUM_CLASSES, 16, models.spec.latent_dim))
    t_generate, t_classify = torch_models(models)
    with torch.no_grad():
        z = torch.from_numpy(np.array(codes[0]))
        gap = np.abs(t_classify(t_generate(z)).numpy() - np.asarray(models.classify(models.generate(codes[0])))).max()
    print(f"backend {jax.default_backend()} x{jax.device_count()}, torch {torch.__version__} "
          f"({torch.get_num_threads()} threads), jax {jax.__version__}; max |p_torch - p_jax| {gap:.1e}")

    def run_jax():
        result = lj.optimize_weights(
            models.generate, models.classify, codes, jax.random.key(1), steps=args.steps,
            batch_size=BATCH, learning_rate=LEARNING_RATE, lam=LAM, xi_range=XI_RANGE,
        )
        return jax.block_until_ready(result.weights)

    t_codes = torch.from_numpy(np.array(codes))
    with torch.no_grad():
        probs = t_classify(t_generate(t_codes.reshape(-1, t_codes.shape[-1]))).reshape(NUM_CLASSES, 16, -1)
        t_base = probs[torch.arange(NUM_CLASSES), :, torch.arange(NUM_CLASSES)]
    run_torch = lambda: torch_method_b(t_generate, t_classify, t_codes, t_base, args.steps)

    rates = {}
    for name, run in (("latentjax", run_jax), ("pytorch", run_torch)):
        run()  # warm-up (compilation for JAX)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - start)
        rates[name] = NUM_CLASSES * args.steps / best
        print(f"{name:10s} {rates[name]:6.1f} class-steps/s  ({best:.2f} s for {args.steps} steps of {NUM_CLASSES} classes)")
    print(f"ratio latentjax / pytorch: {rates['latentjax'] / rates['pytorch']:.2f}x")


if __name__ == "__main__":
    main()

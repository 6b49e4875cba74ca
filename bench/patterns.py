"""Activation patterns of a small VGG-style CNN: `activation_patterns` against a hook pass.

A hook pass is the floor: one forward pass of the user's own module in float32 with forward hooks
that keep the sign of every ReLU input and the argmax index of every max-pool window. Patterns
need nothing more than that, so the ratio says what our conversion, float64 and bit layout cost.
(Issue 16 measured 4.9 s per 2,048 images against 0.42 s for the hook pass, 12x, before max
pooling used torch's own pooling indices instead of unfolding every window.)

Run: python bench/patterns.py [--images 2048] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from torch import nn

import reluscope


def vgg_small():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 16, 10),
    ).eval()


@torch.no_grad()
def hook_pass(model, x):
    kept = []

    def keep(module, inputs, output):
        if isinstance(module, nn.ReLU):
            kept.append(inputs[0] > 0)
        else:
            kept.append(nn.functional.max_pool2d(inputs[0], module.kernel_size, module.stride, return_indices=True)[1])

    handles = [m.register_forward_hook(keep) for m in model.modules() if isinstance(m, (nn.ReLU, nn.MaxPool2d))]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return kept


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    model = vgg_small()
    x = torch.rand(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    floor = best(lambda: hook_pass(model, x), args.repeats)
    ours = best(lambda: reluscope.activation_patterns(model, x), args.repeats)
    bits = reluscope.activation_patterns(model, x[:2]).shape[1]
    print(f"VGG-style CNN, {args.images} images 3x32x32, {bits} bits each")
    print(f"hook pass {floor:.3f} s, activation_patterns {ours:.3f} s: ratio {ours / floor:.1f}x the hook pass")


if __name__ == "__main__":
    main()

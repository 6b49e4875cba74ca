"""Benchmark: `tangent_similarity` on a resnet18-style network (issue 16), against the previous code.

The model is `reluscope.testing.models.TinyResNet(BasicBlock, layers=(2, 2, 2, 2), width=64,
num_classes=10)`: resnet18's layout with a 3x3 stride-1 stem for 16 x 16 inputs, 11.2M parameters in
62 tensors (conv weights, batch-norm scales and shifts, fc), eval mode, random weights.

Baselines, measured in the same run with the same memory budget (the previous library code, kept
here verbatim in spirit):
- block: torch.func.jvp once per parameter tensor with a zero tangent on every other tensor (each of
  the 62 passes ran the whole network with a tangent everywhere). Ours: groups of 8 tensors share
  one primal pass (vmap over their tangents), only the group's tensors carry tangents.
- euclidean (per output): symmetric gram in chunks of the per-sample gradient size; when the
  features did not fit half the budget, every row chunk (one input of 447 MB here) recomputed the
  features of all later columns: N (N + 1) / 2 jacobians. Ours: per-output tiles filling half the
  budget, columns recomputed once per tile.
Run: python bench/tangent_resnet.py [--n 8] [--budget-mib 512] [--metrics block,euclidean] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import torch
from torch.func import functional_call, jvp

from reluscope.tangent import tangent_similarity
from reluscope.tangent.features import iter_features, trainable_parameters
from reluscope.testing.models import BasicBlock, tiny_resnet


def old_block(model, x):
    params = trainable_parameters(model)
    theta = params.as_dict()

    def f(p):
        return functional_call(model, p, (x,)).reshape(x.shape[0], -1)

    cols = []
    with torch.no_grad():
        for name in params.names:
            tangent = {n: (t if n == name else torch.zeros_like(t)) for n, t in theta.items()}
            cols.append(jvp(f, (theta,), (tangent,))[1])
    s = torch.stack(cols, dim=1)
    return torch.einsum("nbk,mbk->nm", s, s)


def old_euclidean(model, x, budget):
    from reluscope.tangent.features import Normalization

    params = trainable_parameters(model)

    def feats(z):
        for rows, g in iter_features(model, params, z, per_output=True, normalize=Normalization.NONE,
                                     memory_budget=budget // 2):
            yield rows, g.reshape(g.shape[0], -1)

    out = torch.zeros(x.shape[0], x.shape[0], dtype=params.dtype)
    for rows, fx in feats(x):
        for cols, fy in feats(x[rows.start:]):
            cols = slice(cols.start + rows.start, cols.stop + rows.start)
            block = fx @ fy.T
            out[rows, cols] = block
            out[cols, rows] = block.T
    return out


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--budget-mib", type=int, default=512)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--metrics", default="block,euclidean")
    args = ap.parse_args()
    model = tiny_resnet(BasicBlock, layers=(2, 2, 2, 2), width=args.width, num_classes=10)
    x = torch.randn(args.n, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    budget = args.budget_mib * 2**20
    p = sum(t.numel() for t in model.parameters())
    print(f"resnet18-style, {p:,} parameters, N = {args.n}, 16 x 16, float32, budget {args.budget_mib} MiB, "
          f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}")
    with torch.no_grad():
        t_fwd, _ = timed(model, x)
    print(f"one forward of the N inputs: {t_fwd:.2f} s")
    for metric in args.metrics.split(","):
        t_new, k_new = timed(lambda: tangent_similarity(model, x, metric=metric, memory_budget=budget))
        line = f"{metric:9s} ours {t_new:7.1f} s ({t_new / t_fwd:.0f} forwards)"
        if not args.skip_baseline:
            base = (lambda: old_block(model, x)) if metric == "block" else (lambda: old_euclidean(model, x, budget))
            t_old, k_old = timed(base)
            rel = float((k_new - k_old).abs().max() / k_old.abs().max())
            line += f"  previous {t_old:7.1f} s  ratio {t_old / t_new:.2f}x  max rel diff {rel:.1e}"
        print(line, flush=True)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10:.0f} MiB")


if __name__ == "__main__":
    main()

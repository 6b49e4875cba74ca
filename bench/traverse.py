"""Benchmark: exact traversal vs 1,000-point sampling of MNIST segments (digit 1 -> digit 4).

Trains a 784-256-256-256-10 ReLU MLP (Adam, seed 0, 1 epoch), then for `--pairs` test pairs
(image of a 1 -> image of a 4) measures, in the same run:
  * exact traversal (`traverse_many`, float64) in segments/s and regions per segment;
  * the same traversal proposed in float32 and checked in float64 (dtype="float32-checked"): its
    time against float64's, and that it returns the same pieces;
  * sampling each segment at 1,000 equally spaced points with batched `Network.bits`, in the
    model's float32 (the cheap way a user would do it) and in float64, and how many of the exact
    regions the samples miss.
Target: exact traversal no slower than the float32 1,000-point sampling on CPU.

    python bench/traverse.py --pairs 1000 [--device cpu|cuda] [--batch-size N]
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from reluscope.data import load_mnist
from reluscope.network import to_network
from reluscope.train import mlp, train_classifier
from reluscope.traversal import traverse_many


def sample_runs(net, x0, x1, n_points: int, chunk: int) -> tuple[float, int]:
    """Seconds and total number of runs of equal consecutive patterns over all segments."""
    t = torch.linspace(0, 1, n_points, dtype=x0.dtype, device=x0.device)
    runs = 0
    start = time.perf_counter()
    with torch.no_grad():
        for s in range(0, x0.shape[0], chunk):
            a, b = x0[s : s + chunk], x1[s : s + chunk]
            x = a[:, None, :] + t[None, :, None] * (b - a)[:, None, :]
            bits = net.bits(x.reshape(-1, x.shape[-1])).reshape(a.shape[0], n_points, -1)
            runs += int(a.shape[0] + (bits[:, 1:] != bits[:, :-1]).any(dim=2).sum())
    if x0.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="cap on segments per traverse_many batch (default: sized from the memory budget)")
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved runs per method; best time kept")
    args = parser.parse_args()
    torch.manual_seed(0)

    x_train, y_train = load_mnist("train")
    x_test, y_test = load_mnist("test")
    model = mlp(784, [256, 256, 256], 10, seed=0)
    t0 = time.perf_counter()
    result = train_classifier(model, x_train, y_train, x_val=x_test, y_val=y_test, epochs=args.epochs, seed=0)
    train_s = time.perf_counter() - t0
    acc = result.history[-1].val_accuracy

    g = torch.Generator().manual_seed(0)
    ones, fours = x_test[y_test == 1], x_test[y_test == 4]
    ia = torch.randint(0, ones.shape[0], (args.pairs,), generator=g)
    ib = torch.randint(0, fours.shape[0], (args.pairs,), generator=g)
    dev = torch.device(args.device)
    x0, x1 = ones[ia].to(dev), fours[ib].to(dev)

    model = model.to(dev).eval()
    nets = {dtype: to_network(model).to(dtype=dtype, device=dev) for dtype in (torch.float32, torch.float64)}
    traverse_many(model, x0[:4].double(), x1[:4].double(), batch_size=args.batch_size)  # warm-up
    traverse_many(model, x0[:4].double(), x1[:4].double(), batch_size=args.batch_size, dtype="float32-checked")
    for net in nets.values():
        sample_runs(net, x0[:4].to(net.dtype), x1[:4].to(net.dtype), args.points, 16)
    # the machine is shared and noisy: run the methods interleaved and keep each one's best time
    times = {"exact": [], "checked": [], torch.float32: [], torch.float64: []}
    found = {}
    for _ in range(args.repeat):
        start = time.perf_counter()
        trs = traverse_many(model, x0.double(), x1.double(), batch_size=args.batch_size)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times["exact"].append(time.perf_counter() - start)
        start = time.perf_counter()
        checked = traverse_many(model, x0.double(), x1.double(), batch_size=args.batch_size, dtype="float32-checked")
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times["checked"].append(time.perf_counter() - start)
        for dtype, net in nets.items():
            sec, found[dtype] = sample_runs(net, x0.to(dtype), x1.to(dtype), args.points, 16)
            times[dtype].append(sec)
    regions = torch.tensor([float(tr.n_pieces) for tr in trs])
    exact_s = min(times["exact"])
    rows = [("exact traversal (float64)", exact_s, int(regions.sum())),
            ("exact, float32 checked in f64", min(times["checked"]), int(checked.n_pieces.sum()))]
    for dtype in nets:
        rows.append((f"{args.points}-point sampling ({str(dtype)[6:]})", min(times[dtype]), found[dtype]))

    n = args.pairs
    print(f"MLP 784-256-256-256-10, {args.epochs} epoch(s) in {train_s:.1f}s, test accuracy {acc:.3f}; "
          f"{n} pairs digit 1 -> digit 4 on {dev} ({torch.get_num_threads()} threads), "
          f"best of {args.repeat} interleaved runs; load {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print(f"regions per segment (exact): mean {regions.mean():.1f}, median {regions.median():.0f}, "
          f"min {regions.min():.0f}, max {regions.max():.0f}")
    print(f"{'method':<30} {'seconds':>9} {'segments/s':>11} {'regions found':>14} {'missed':>8} {'time / exact':>13}")
    for name, sec, found in rows:
        missed = 1 - found / float(regions.sum())
        print(f"{name:<30} {sec:9.2f} {n / sec:11.1f} {found:14d} {missed:8.1%} {sec / exact_s:13.2f}")
    same = torch.equal(checked.offsets, trs.offsets) and torch.equal(checked.patterns, trs.patterns)
    gap = float((checked.t - trs.t).abs().max()) if same else float("nan")
    print(f"float32 checked in float64 / float64: {rows[1][1] / exact_s:.2f} of the time; same pieces and patterns: "
          f"{same}, largest breakpoint difference {gap:.1e}")
    ratio = rows[2][1] / exact_s
    print(f"target (exact no slower than float32 {args.points}-point sampling): "
          f"{'MET' if ratio >= 1 else 'NOT MET'} (sampling / exact = {ratio:.2f})")


if __name__ == "__main__":
    main()

"""Benchmark: tangent similarities and the factorised empirical tangent kernel, on CPU.

1. The 2,000 x 2,000 block-metric similarity matrix (per-output, the library default) on the
   authors' CNN adapted to 28x28 MNIST (width 64, 215,562 parameters), against an explicit
   per-sample autograd loop (one forward and K = 10 backward passes per image, block inner
   products with theta taken on the fly) measured in the same run on a subset and extrapolated
   linearly (its cost is per image; forming the 2,000 x 2,000 matrix from the scores is
   negligible). Both normalize=False (pure forward mode) and normalize=True (exact min-max, which
   adds a chunked per-sample gradient pass) are timed.
2. The empirical tangent kernel of a 784-512-512-10 MLP for 10,000 MNIST images through the
   per-layer factorisation, against explicit features (vmap) on a subset, extrapolated
   (features linearly, the Gram product quadratically); explicit features for all 10,000 inputs
   would need N x P x 4 bytes = 26.8 GB.

Memory is the peak growth of the process's resident set during each measurement (sampled every
5 ms by a thread), run one after the other. Weights are random (timing does not depend on
training). Run: python bench/tangent.py [--quick]
"""

from __future__ import annotations

import argparse
import gc
import resource
import threading
import time

import torch
import torch.nn as nn

from reluscope.experiments.tangent import tangent_cnn
from reluscope.tangent import empirical_tangent_kernel, tangent_features, tangent_similarity

BUDGET = 512 * 2**20  # the library's default memory budget for per-sample gradients / streams


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def measure(fn, *args):
    """(seconds, peak RSS growth in MiB sampled every 5 ms, result) of fn(*args) in this process."""
    gc.collect()
    start = _rss_mb()
    peak = [start]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.005)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        out = fn(*args)
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        watcher.join()
    return seconds, max(0.0, peak[0] - start), out


def loop_block_scores(model, x):
    """Explicit per-sample autograd: per image, 10 backward passes, block dot products with theta."""
    params = [p for p in model.parameters() if p.requires_grad]
    out = torch.zeros(x.shape[0], len(params), 10)
    for i, xi in enumerate(x):
        f = model(xi.unsqueeze(0)).reshape(-1)
        for k in range(f.numel()):
            grads = torch.autograd.grad(f[k], params, retain_graph=k + 1 < f.numel())
            for b, (g, p) in enumerate(zip(grads, params)):
                out[i, b, k] = (g * p).sum()
    return out


def ours_similarity(model, x, normalize):
    with torch.no_grad():
        s = tangent_similarity(model, x, metric="block", per_output=True, normalize=normalize, memory_budget=BUDGET)
    return s[:3, :3].clone()


def loop_similarity(model, x):
    s = loop_block_scores(model, x)
    return torch.einsum("nbk,mbk->nm", s, s)[:3, :3].clone()


def factorised_kernel(model, x):
    k = empirical_tangent_kernel(model, x, memory_budget=BUDGET)
    return k[:3, :3].clone(), float(k.trace())


def explicit_kernel(model, x):
    t0 = time.perf_counter()
    f = tangent_features(model, x, memory_budget=BUDGET)
    t_feat = time.perf_counter() - t0
    t0 = time.perf_counter()
    k = f @ f.T
    t_gram = time.perf_counter() - t0
    return k, t_feat, t_gram


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke test)")
    args = parser.parse_args()
    n_sim, n_loop, n_ntk, n_ntk_sub = (200, 10, 1000, 100) if args.quick else (2000, 40, 10_000, 200)

    try:
        from reluscope.data import load_mnist

        x_img, _ = load_mnist("test", flatten=False)
        x_flat, _ = load_mnist("train")
    except Exception as err:  # pragma: no cover - bench without data
        print(f"(MNIST unavailable: {err}; using random inputs)")
        x_img, x_flat = torch.rand(10_000, 1, 28, 28), torch.rand(60_000, 784)

    print("== 1. block similarity, authors' CNN on 28x28 (per-output) ==")
    model = tangent_cnn((1, 28, 28), width=64).eval()
    p = sum(q.numel() for q in model.parameters())
    x = x_img[:n_sim]
    print(f"parameters: {p:,}; N = {n_sim}; loop subset = {n_loop}; memory budget {BUDGET / 2**20:.0f} MiB")
    t_loop, m_loop, ref = measure(loop_similarity, model, x[:n_loop])
    ref = ref.detach()
    t_loop_full = t_loop * n_sim / n_loop
    print(f"per-sample autograd loop: {t_loop:.1f} s for {n_loop} -> {t_loop_full:.0f} s for {n_sim} (extrapolated), peak +{m_loop:.0f} MiB")
    t_raw, m_raw, got = measure(ours_similarity, model, x, False)
    print(f"tangent_similarity(block, normalize=False): {t_raw:.1f} s, peak +{m_raw:.0f} MiB, speed-up {t_loop_full / t_raw:.1f}x")
    _, _, small = measure(ours_similarity, model, x[:n_loop], False)
    print(f"  agreement with the loop on the subset: max rel. error {float((small - ref).abs().max() / ref.abs().max()):.2e}")
    n_norm = n_sim if args.quick else 200
    t_norm, m_norm, _ = measure(ours_similarity, model, x[:n_norm], True)
    t_norm_full = t_norm * n_sim / n_norm
    print(
        f"tangent_similarity(block, normalize=True) on {n_norm}: {t_norm:.1f} s -> {t_norm_full:.0f} s for {n_sim}"
        f"{' (extrapolated)' if n_norm < n_sim else ''}, peak +{m_norm:.0f} MiB, speed-up {t_loop_full / t_norm_full:.1f}x"
    )

    print("\n== 2. empirical tangent kernel, MLP 784-512-512-10 ==")
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10)).eval()
    p = sum(q.numel() for q in mlp.parameters())
    xf = x_flat[:n_ntk]
    t_fact, m_fact, (k_small, _) = measure(factorised_kernel, mlp, xf)
    print(f"parameters: {p:,}; factorised kernel for {n_ntk} inputs: {t_fact:.1f} s, peak +{m_fact:.0f} MiB "
          f"(the [N, N] float32 result alone is {n_ntk**2 * 4 / 2**20:.0f} MiB)")
    t_exp, m_exp, (k_exp, t_feat, t_gram) = measure(explicit_kernel, mlp, xf[:n_ntk_sub])
    est = t_feat * n_ntk / n_ntk_sub + t_gram * (n_ntk / n_ntk_sub) ** 2
    print(f"explicit features on {n_ntk_sub}: {t_exp:.1f} s (features {t_feat:.1f} s, Gram {t_gram:.2f} s), peak +{m_exp:.0f} MiB;"
          f" extrapolated to {n_ntk}: {est:.0f} s and {n_ntk * p * 4 / 2**30:.1f} GiB of features -> speed-up {est / t_fact:.1f}x")
    err = float((k_small - k_exp[:3, :3]).abs().max() / k_exp[:3, :3].abs().max())
    print(f"  agreement factorised vs explicit (first 3x3 block): max rel. error {err:.2e}")


if __name__ == "__main__":
    main()

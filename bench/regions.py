"""Exact 2-D regions: reluscope.regions_2d against regioncam (Rust core), in the same run.

Cases: MLPs 2-16-16-1, 2-16-16-2 (the browser explorer's size), 2-32-32-1, 2-64^3-1, 2-128^3-1 and
2-128-128-128-128-1 (PyTorch default init after torch.manual_seed(0)) on [-1, 1]^2, and a 784-128-128-10 MLP (seed 0, trained one epoch on 10,000
MNIST images) on regioncam's plane through three MNIST test digits (the same plane and box are
given to reluscope). Region counts must agree; we print the best-of-N time of each and the
ratio (target: reluscope within 2x of regioncam on CPU), and memory: the size of reluscope's
result per region, and the peak memory growth of each method (in forked children).

Run: python bench/regions.py [--repeats N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
import torch
import torch.nn as nn


def mlp(widths):
    torch.manual_seed(0)
    layers = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1]).eval()


def mnist_case():
    from reluscope.data import load_mnist
    from reluscope.train import train_classifier

    net = mlp([784, 128, 128, 10]).train()
    x, y = load_mnist("train")
    train_classifier(net, x[:10000], y[:10000], epochs=1, lr=1e-3, seed=0)
    xt, yt = load_mnist("test")
    picks = [int(torch.nonzero(yt == d)[0]) for d in (0, 1, 7)]
    return net.eval(), xt[picks].numpy().astype(np.float32)


def run_regioncam(net, points=None):
    import regioncam

    if points is None:
        rc = regioncam.Regioncam(size=1.0)
    else:
        rc = regioncam.Regioncam.through_points(points)
    rc.add(net)
    return rc


def run_reluscope(net, box, plane):
    from reluscope.regions import regions_2d

    return regions_2d(net, box=box, plane=plane)


def best_time(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def _rss_kib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def peak_growth_mib(fn) -> float:
    """Peak RSS growth of fn() in a forked child (MiB)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        base = _rss_kib()
        fn()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        os.write(w, str(max(peak - base, 0)).encode())
        os._exit(0)
    os.close(w)
    data = os.read(r, 64)
    os.waitpid(pid, 0)
    return int(data or b"0") / 1024


def result_bytes(rm) -> int:
    return sum(getattr(rm, k).nbytes for k in ("vertices", "edges", "edge_faces", "face_vertices", "face_offsets", "areas", "patterns", "A", "c"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from reluscope.regions import Plane
    from reluscope._checks import single_thread

    torch.set_num_threads(1)  # both sides single-threaded (regioncam's core is)
    print(f"torch {torch.__version__}, threads 1, repeats {args.repeats} (best time)")
    cases = [(f"{'-'.join(map(str, w))} on [-1,1]^2", mlp(w), None) for w in (
        [2, 16, 16, 1], [2, 16, 16, 2], [2, 32, 32, 1], [2, 64, 64, 64, 1], [2, 128, 128, 128, 1],
        [2, 128, 128, 128, 128, 1])]
    with single_thread():
        net, pts = mnist_case()
    cases.append(("784-128-128-10 MNIST plane (digits 0,1,7)", net, pts))
    ok = True
    header = f"{'case':44s} {'regioncam':>10s} {'reluscope':>10s} {'rc ms':>9s} {'rs ms':>9s} {'ratio':>6s} {'B/region':>9s} {'rc peak':>8s} {'rs peak':>8s}"
    print(header)
    for name, net, pts in cases:
        rc = run_regioncam(net, pts)
        if pts is None:
            box, plane = (-1.0, 1.0, -1.0, 1.0), None
        else:
            P = rc.plane
            plane = Plane(torch.tensor(P.bias, dtype=torch.float64), torch.tensor(P.weight[0], dtype=torch.float64),
                          torch.tensor(P.weight[1], dtype=torch.float64))
            # the same map from plane coordinates to inputs as regioncam's
            probe = np.array([[0.3, -0.2]], dtype=np.float32)
            assert np.allclose(P.forward(probe), plane.to_input(torch.tensor(probe, dtype=torch.float64)).numpy(), atol=1e-5)
            vi = np.asarray(rc.vertex_inputs, dtype=np.float64)
            box = (float(vi[:, 0].min()), float(vi[:, 0].max()), float(vi[:, 1].min()), float(vi[:, 1].max()))
        # small nets take milliseconds: more repeats for a stable best time
        reps = args.repeats * (10 if rc.num_faces < 2000 else 1)
        t_rc, rc = best_time(lambda: run_regioncam(net, pts), reps)
        t_rs, rm = best_time(lambda: run_reluscope(net, box, plane), reps)
        m_rc = peak_growth_mib(lambda: run_regioncam(net, pts))
        m_rs = peak_growth_mib(lambda: run_reluscope(net, box, plane))
        same = rc.num_faces == rm.n_regions
        ok &= same
        print(f"{name:44s} {rc.num_faces:10d} {rm.n_regions:10d} {t_rc * 1e3:8.2f}m {t_rs * 1e3:8.2f}m {t_rs / t_rc:6.2f} "
              f"{result_bytes(rm) / rm.n_regions:9.0f} {m_rc:7.1f}M {m_rs:7.1f}M" + ("" if same else "  COUNTS DIFFER"))
    print("ratio = reluscope time / regioncam time (< 2 is the target); B/region = size of reluscope's RegionMap arrays;"
          " peak = peak RSS growth of one call in a forked child")
    if not ok:
        print("region counts differ (regioncam computes in float32, reluscope in float64)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

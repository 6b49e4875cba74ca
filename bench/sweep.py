"""Sweep speed: the same grid as a plain loop, on Ray with 1 worker, and on Ray with all cores.

The grid is `--nets` trainings of the folding depth study (depths 3-6 x widths 10-16, seeds; each a
ReLU MLP trained `--epochs` epochs on `--n-train` MNIST images, then chi on `--pairs` segments
between test digits 1 and 4), one CPU thread per task. Prints the speed-up of all cores over one
worker (target >= 1.7x on 2 cores) and Ray's overhead per task against the plain loop. Workers are
warmed up first (torch imported, MNIST loaded), so the figures are steady-state; Ray's start-up
and the cold start are printed apart. On a shared machine the wall times depend on the other load:
`uptime` is printed with them.

    python bench/sweep.py [--nets 16] [--epochs 2] [--n-train 5000] [--pairs 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from reluscope.sweep import result_type, run_sweep
from reluscope.sweep._ray import connect, machine_cpus
from reluscope.testing.sweep import depth_net


def uptime() -> str:
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--n-train", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=100)
    args = parser.parse_args()
    grid = [(d, w) for d in (3, 4, 5, 6) for w in (10, 12, 14, 16)]
    configs = [{"depth": d, "width": w, "seed": i // len(grid), "epochs": args.epochs, "n_train": args.n_train,
                "n_val": 1000, "pairs": args.pairs}
               for i, (d, w) in zip(range(args.nets), grid * (args.nets // len(grid) + 1))]
    cores = machine_cpus()
    print(f"{len(configs)} nets, {cores} cores; {uptime()}")

    torch.set_num_threads(1)
    depth_net({**configs[0], "epochs": 1, "pairs": 2})  # load MNIST, import everything
    t0 = time.perf_counter()
    plain = [depth_net(c) for c in configs]
    t_plain = time.perf_counter() - t0
    print(f"plain loop, 1 thread:  {t_plain:7.1f} s  ({t_plain / len(configs):.2f} s/net)  {uptime()}")

    t0 = time.perf_counter()
    connect(None, num_cpus=cores)
    t_start = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        warm = [{**c, "epochs": 1, "pairs": 2, "seed": 10_000 + i} for i, c in enumerate(configs[:cores])]
        run_sweep(depth_net, warm, out=os.path.join(tmp, "warm"), progress=False)
        t_warm = time.perf_counter() - t0
        print(f"Ray start-up {t_start:.1f} s; warm-up of {cores} workers {t_warm:.1f} s")
        times = {}
        for workers in (1, None):
            s = run_sweep(depth_net, configs, out=os.path.join(tmp, f"w{workers}"), workers=workers, progress=False)
            if s.failed:
                raise SystemExit(f"{s.failed} tasks failed: {s.rows(status='failed')[0]['error']}")
            if s.results(result_type(depth_net)) != plain:
                raise SystemExit("rows differ from the plain loop")
            times[workers] = s.seconds
            print(f"Ray, {s.workers} worker(s):     {s.seconds:7.1f} s  ({s.seconds / len(configs):.2f} s/net)  {uptime()}")
    import ray

    ray.shutdown()
    overhead = (times[1] - t_plain) / len(configs)
    print(f"speed-up of {cores} workers over 1: {times[1] / times[None]:.2f}x (target >= 1.7x on 2 cores); "
          f"Ray overhead per task against the plain loop: {overhead * 1000:+.0f} ms "
          f"({overhead / (t_plain / len(configs)) * 100:+.1f} %); rows equal to the plain loop's")


if __name__ == "__main__":
    main()

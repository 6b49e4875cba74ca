"""The explorer's redraw: what one frame costs, against the exact region map alone, in one run.

Target (issue 15): for a 2-16-16-2 net a redraw (regions, boundary, charts) takes under 50 ms end
to end, so training animates at 10+ frames per second on the 2-core CPU. We measure, for
2-16-16-2 and larger nets, the median of
  * `regions_2d` alone (the floor: the exact map must be made),
  * one server frame: training steps + map + Fiedler split + Betti numbers + JSON,
  * one HTTP round trip of the frame through uvicorn on 127.0.0.1,
  * and, where Chromium is installed, the page's own redraw time (fetch + draw, from the page),
and print each against the map alone and against the 50 ms budget.

Run: python bench/explore.py [--frames N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import urllib.request

from reluscope.explore import ExploreConfig, ExploreRun
from reluscope.explore.server import Trainer, bind_socket, create_app, one_thread_process, serve_in_thread
from reluscope.regions import regions_2d

BUDGET_MS = 50.0


def median_ms(fn, n):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(1e3 * (time.perf_counter() - t))
    return statistics.median(times)


def server_side(widths, frames):
    run = ExploreRun(ExploreConfig(widths=widths, steps_per_frame=5))
    run.step(300)  # a partly trained net: more regions near the boundary than at init
    floor = median_ms(lambda: regions_2d(run.model, box=run.box), frames)

    def one_frame():
        run.step(run.config.steps_per_frame)
        json.dumps(run.frame(force_map=True).to_dict())

    frame = median_ms(one_frame, frames)
    return run, floor, frame


def http_round_trip(widths, frames):
    trainer = Trainer(ExploreRun(ExploreConfig(widths=widths, steps_per_frame=5)))
    sock = bind_socket(0)
    server, thread = serve_in_thread(create_app(trainer=trainer), sock)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def step():
        req = urllib.request.Request(base + "/api/control/step", data=b"{}", method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()
        urllib.request.urlopen(base + "/api/frame?since=-1").read()

    try:
        return median_ms(step, frames), base, (server, thread, trainer)
    except Exception:
        server.should_exit = True
        raise


def browser_redraws(base, trainer, seconds=8.0):
    from reluscope.explore.browser import chromium_paths, open_page, wait_for

    if isinstance(chromium_paths(), str):
        return None
    driver = open_page(base + "/")
    try:
        wait_for(lambda: driver.execute_script("return document.body.dataset.ready"), what="page load")
        trainer.play()
        time.sleep(seconds)
        trainer.pause()
        values = driver.execute_script("return window.reluscopeRedraws.slice(1)")
        return values, trainer.run.steps
    finally:
        driver.quit()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=30)
    args = ap.parse_args()
    one_thread_process()  # as `reluscope explore` does
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print(f"{'net':>14} {'regions':>8} {'map ms':>8} {'frame ms':>9} {'frame/map':>9} {'frame/50ms':>10}")
    for widths in [(16, 16), (32, 32), (64, 64, 64)]:
        run, floor, frame = server_side(widths, args.frames)
        name = "2-" + "-".join(map(str, widths)) + "-2"
        print(f"{name:>14} {run.last_frame.n_regions:>8} {floor:>8.1f} {frame:>9.1f} {frame / floor:>9.2f} {frame / BUDGET_MS:>10.2f}")
    http_ms, base, (server, thread, trainer) = http_round_trip((16, 16), args.frames)
    print(f"2-16-16-2 step + frame over HTTP (uvicorn, 127.0.0.1): {http_ms:.1f} ms = {http_ms / BUDGET_MS:.2f} x the 50 ms budget")
    try:
        seen = browser_redraws(base, trainer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    if seen is None:
        print("page redraw: skipped (no headless Chromium; apt-get install chromium chromium-driver)")
    else:
        values, steps = seen
        if values:
            med = statistics.median(values)
            print(f"page redraw (fetch + draw, in Chromium) 2-16-16-2: median {med:.1f} ms over {len(values)} frames "
                  f"= {med / BUDGET_MS:.2f} x the 50 ms budget; {len(values) / 8.0:.1f} frames/s, {steps} steps")
        else:
            print("page redraw: no frame arrived")


if __name__ == "__main__":
    main()

"""Report section: a screenshot of `reluscope explore` in headless Chromium, with its redraw times.

Skipped (and said so in the report) where no headless Chromium is installed: the demo must not
fail on a machine without a browser.
"""

from __future__ import annotations

import base64
import html
import statistics
import time

from ..explore import ExploreConfig, ExploreRun
from ..explore.browser import chromium_paths, open_page, wait_for
from ..explore.server import Trainer, bind_socket, create_app, serve_in_thread
from .base import DemoContext, Section

__all__ = ["section"]


def section(ctx: DemoContext) -> Section:
    title = "Live explorer (reluscope explore)"
    paths = chromium_paths()
    if isinstance(paths, str):
        return Section(title, f"<p>Screenshot skipped: {html.escape(paths)}.</p>", {"skipped": paths})
    run = ExploreRun(ExploreConfig(seed=ctx.seed))
    run.step(150 if ctx.quick else 400)
    trainer = Trainer(run)
    sock = bind_socket(0)
    server, thread = serve_in_thread(create_app(trainer=trainer), sock)
    driver = None
    try:
        driver = open_page(f"http://127.0.0.1:{sock.getsockname()[1]}/")
        wait_for(lambda: driver.execute_script("return document.body.dataset.ready"), what="the explorer page")
        trainer.play()
        time.sleep(3.0)
        trainer.pause()
        time.sleep(0.5)
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.by import By

        canvas = driver.find_element(By.ID, "map")
        w = canvas.size["width"]
        ActionChains(driver).move_to_element_with_offset(canvas, -w // 3, -w // 12).click().perform()
        ActionChains(driver).move_to_element_with_offset(canvas, w // 3, w // 10).click().perform()
        chi = wait_for(lambda: driver.find_element(By.ID, "chi").get_attribute("data-value"), what="chi")
        redraws = driver.execute_script("return window.reluscopeRedraws.slice(1)") or []
        png = driver.get_screenshot_as_png()
    finally:
        if driver is not None:
            driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
    summary = {
        "steps": run.steps, "regions": run.last_frame.n_regions, "segment_chi": float(chi),
        "page_redraw_ms_median": round(statistics.median(redraws), 1) if redraws else None,
        "frames_seen": len(redraws),
    }
    img = base64.b64encode(png).decode()
    body = (
        "<p>The page <code>reluscope explore</code> serves on 127.0.0.1, driven by headless Chromium: "
        f"a 2-16-16-2 ReLU net trained on moons for {run.steps} steps, its {summary['regions']} exact regions "
        f"(coloured by pattern), the decision boundary, and a clicked segment with chi = {float(chi):.4f}.</p>"
        f'<img src="data:image/png;base64,{img}" alt="the explorer page" style="max-width:100%">'
    )
    return Section(title, body, summary)

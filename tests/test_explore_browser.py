"""The explorer in a real browser: train, pause, click two points, and read chi off the page.

Uses Debian's headless Chromium through selenium; skipped (saying why) where it is missing.
`make test` installs it when run as root.
"""

import json

import pytest
import torch

from reluscope.explore.browser import chromium_paths

paths = chromium_paths()
if isinstance(paths, str):
    pytest.skip(paths, allow_module_level=True)
pytest.importorskip("uvicorn", reason="the explorer needs the 'explore' extra")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from reluscope.explore import ExploreConfig, ExploreRun  # noqa: E402
from reluscope.explore.browser import open_page, save_screenshot, wait_for  # noqa: E402
from reluscope.explore.server import Trainer, bind_socket, create_app, serve_in_thread  # noqa: E402
from reluscope.folding import path_folding  # noqa: E402


@pytest.fixture(scope="module")
def page():
    trainer = Trainer(ExploreRun(ExploreConfig(n_points=120, widths=(12, 12), steps_per_frame=4)))
    app = create_app(trainer=trainer)
    sock = bind_socket(0)
    server, thread = serve_in_thread(app, sock)
    driver = open_page(f"http://127.0.0.1:{sock.getsockname()[1]}/")
    try:
        yield driver, trainer
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)


def _text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def test_train_click_and_read_chi(page, tmp_path):
    driver, trainer = page
    wait_for(lambda: driver.find_element(By.TAG_NAME, "body").get_attribute("data-ready"), what="page load")
    driver.find_element(By.ID, "play").click()
    wait_for(lambda: int(_text(driver, "step-count")) >= 40, timeout=120, what="40 training steps on the page")
    driver.find_element(By.ID, "play").click()  # pause
    wait_for(lambda: not trainer.playing, what="pause")
    # let the frame in flight land, then make sure the page shows the last one
    version = wait_for(lambda: _stable_version(trainer), what="a settled frame")
    wait_for(lambda: _text(driver, "step-count") == str(trainer.run.last_frame.step), what="the last frame drawn")
    assert _text(driver, "regions") == str(trainer.run.last_frame.n_regions)

    canvas = driver.find_element(By.ID, "map")
    w = canvas.size["width"]
    ActionChains(driver).move_to_element_with_offset(canvas, -w // 3, -w // 10).click().perform()
    ActionChains(driver).move_to_element_with_offset(canvas, w // 3, w // 8).click().perform()
    chi_text = wait_for(lambda: driver.find_element(By.ID, "chi").get_attribute("data-value"), what="chi on the page")
    p0, p1 = json.loads(canvas.get_attribute("data-clicks"))
    assert trainer.run.version == version
    ref = path_folding(trainer.run._frame_model, torch.tensor(p0, dtype=torch.float64), torch.tensor(p1, dtype=torch.float64))
    assert float(chi_text) == pytest.approx(ref.chi, abs=1e-12)
    assert _text(driver, "pieces") == str(ref.n_patterns)
    assert float(_text(driver, "redraw-ms")) > 0
    save_screenshot(driver, tmp_path / "explore.png")
    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def _stable_version(trainer):
    import time

    v = trainer.run.version
    time.sleep(0.5)
    return v if trainer.run.version == v else None

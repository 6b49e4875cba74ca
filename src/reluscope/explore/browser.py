"""Drive the explorer page in a real headless Chromium (tests and the demo's screenshot).

Only the system's browser is used (Debian's `chromium` and `chromium-driver`), passed to selenium
by path, so selenium never looks for or downloads a browser or driver of its own.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..io_utils import write_bytes_atomic

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

__all__ = ["chromium_paths", "open_page", "wait_for"]

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def chromium_paths() -> tuple[str, str] | str:
    """(browser, driver) paths, or a sentence saying what is missing and how to install it."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'reluscope[explore-test]')"
    browser = next((p for p in map(shutil.which, _BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        return "no headless Chromium here (apt-get install chromium chromium-driver; `make test` does it as root)"
    return browser, driver


def open_page(url: str, *, width: int = 1180, height: int = 860):
    """A headless Chromium at `url` that records the page's console; the caller quits it."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    paths = chromium_paths()
    if isinstance(paths, str):
        raise RuntimeError(paths)
    options = webdriver.ChromeOptions()
    options.binary_location = paths[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(paths[1]), options=options)
    driver.set_page_load_timeout(60)
    driver.get(url)
    return driver


def wait_for(condition: Callable[[], object], *, timeout: float = 60.0, interval: float = 0.1, what: str = "the page"):
    """Poll `condition()` until it returns something truthy; that value is returned."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"{what} did not happen within {timeout:.0f} s")


def save_screenshot(driver: Any, path: str | Path) -> Path:
    """PNG of the page, written atomically."""
    return write_bytes_atomic(path, driver.get_screenshot_as_png())

"""Headless Chromium from Debian's packages (``chromium``, ``chromium-driver``), driven by Selenium.

``browser()`` starts one with the flags this machine needs (no sandbox as root, nothing that
reaches out to the network: with a closed network Chromium's own background connections are
refused and slow it down) and a fresh profile folder, or says why it cannot (``Unavailable``).
Every wait is on a condition, with a generous bound: the tests run on busy 2-core machines.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

CHROMIUM = os.environ.get("EVENTBUS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EVENTBUS_CHROMEDRIVER", "/usr/bin/chromedriver")
#: A laptop screen.
WINDOW = (1366, 900)
WAIT = 30.0

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)

T = TypeVar("T")


class Unavailable(Exception):
    """No Chromium to test with here (the message says what is missing)."""


def missing() -> str | None:
    """What is missing to run the browser tests, or ``None``."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -e '.[test]'"
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return f"{path} not found: install Debian's {package} package (.ci/run does)"
    return None


@contextmanager
def browser() -> Iterator[Any]:
    reason = missing()
    if reason is not None:
        raise Unavailable(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="eventbus-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    # The page's console messages (a script that ran would say so there).
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # On a machine busy with other test processes Chromium can miss chromedriver's start-up
    # deadline once; a browser that fails three starts in a row is really not there.
    for attempt in range(3):
        try:
            driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
            break
        except Exception as exc:
            if attempt < 2:
                continue
            shutil.rmtree(profile, ignore_errors=True)
            raise Unavailable(f"Chromium did not start: {type(exc).__name__}: {str(exc)[:500]}") from exc
    try:
        driver.set_page_load_timeout(WAIT * 2)
        driver.set_script_timeout(WAIT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(driver: Any, condition: Callable[[Any], T], what: str, timeout: float = WAIT) -> T:
    """``condition(driver)`` once it is truthy; fails naming ``what`` after ``timeout`` seconds."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    def attempt(d: Any) -> T | bool:
        try:
            return condition(d)
        except WebDriverException as exc:
            # A node the page replaced between finding it and reading it: chromedriver says so
            # as an inspector error, not always as a stale element. Look again.
            if "does not belong to the document" in str(exc):
                return False
            raise

    found: T = WebDriverWait(driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)).until(
        attempt, f"waited {timeout:g} s for {what}"
    )
    return found

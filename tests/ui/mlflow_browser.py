"""The MLflow UI in a real headless Chromium: a server on a free port, a driver, waits.

Debian's ``chromium`` and ``chromium-driver`` (``/usr/bin/chromium``, ``/usr/bin/chromedriver``;
``.ci/run`` installs them); Selenium from the lock drives them, with the driver's path given
so that nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def missing() -> str | None:
    """Why the browser test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} not found (apt-get install chromium chromium-driver)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mlflow_ui(store: str, log: Path) -> Iterator[str]:
    """``mlflow ui`` over ``store`` on 127.0.0.1; yields its base URL once it answers."""
    port = free_port()
    mlflow = Path(sys.executable).with_name("mlflow")
    with log.open("w") as out:
        process = subprocess.Popen([str(mlflow), "ui", "--backend-store-uri", store,
                                    "--host", "127.0.0.1", "--port", str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{base}/health", timeout=2)
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        tail = log.read_text()[-2000:]
                        raise RuntimeError(f"mlflow ui did not start: {tail}") from None
                    time.sleep(0.5)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1600,1000"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver, predicate, what: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    """``predicate(driver)``'s first truthy value within ``timeout`` s, else a failure that
    says what was awaited and what the page showed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate(driver)
        except Exception:  # the page is still rendering: an element went stale or is absent
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            body = driver.find_element("tag name", "body").text[:1500]
            raise AssertionError(f"timed out waiting for {what}; the page shows:\n{body}")
        time.sleep(0.3)


def body_text(driver) -> str:  # type: ignore[no-untyped-def]
    return str(driver.find_element("tag name", "body").text)

"""A served city and Debian's headless chromium driving the viewer: shared by ``viewer_shots.py`` and ``bench_viewer.py``."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]


@contextlib.contextmanager
def served(config: Path):
    """``lutece serve`` of ``config`` on a free loopback port, stopped on exit; yields its URL."""
    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "server.cli", "--config", str(config), "serve", "--host",
                                "127.0.0.1", "--port", str(port), "--workers", "2"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
        else:
            raise SystemExit("Error: the server did not start; run `lutece --config CONFIG serve` to see why")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def open_viewer(chromium, url: str, width: int = 1000, height: int = 640):
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.goto(url)
    return page


def wait(page, flag: str, timeout: float = 120) -> None:
    page.wait_for_function(f"window.lutece && window.lutece.{flag}", timeout=timeout * 1000)

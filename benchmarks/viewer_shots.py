"""Screenshots of the web viewer (2D map, 3D scene) on a served city, for a person to look at (`make viewer-shots`).

    python benchmarks/viewer_shots.py --config build/demo/lutece.yml --out build/viewer-shots
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viewer_browser import browser, open_viewer, served, wait  # noqa: E402


def globe_loaded(page, timeout: float = 60) -> None:
    """Wait for the globe's tiles (terrain and draped rasters) to be loaded, at most ``timeout`` seconds."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        page.wait_for_function("window.lutece.scene.viewer.scene.globe.tilesLoaded", timeout=timeout * 1000)
    except PlaywrightTimeout:
        print(f"the globe's tiles were still loading after {timeout:.0f} s", file=sys.stderr)
    page.wait_for_timeout(1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the city's lutece.yml")
    parser.add_argument("--out", type=Path, default=Path("build/viewer-shots"))
    parser.add_argument("--view", default="", help="extra URL fragment (e.g. layers=buildings,dtm&colour=height)")
    args = parser.parse_args()
    if not args.config.is_file():
        raise SystemExit(f"Error: {args.config} does not exist; publish a city first (SERVE=0 make demo)")
    args.out.mkdir(parents=True, exist_ok=True)
    with served(args.config) as url, browser() as chromium:
        page = open_viewer(chromium, f"{url}/viewer#{args.view}")
        wait(page, "ready2d")
        page.wait_for_timeout(1000)
        page.screenshot(path=str(args.out / "viewer-2d.png"))
        page.click("#mode-3d")
        wait(page, "ready3d")
        globe_loaded(page)
        page.screenshot(path=str(args.out / "viewer-3d.png"))
    for name in ("viewer-2d.png", "viewer-3d.png"):
        print(args.out / name)


if __name__ == "__main__":
    main()

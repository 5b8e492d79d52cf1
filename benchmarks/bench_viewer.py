"""The web viewer in headless chromium (SwiftShader, no GPU): time to the first drawn frame in 2D and in 3D, and
frames per second while the 3D camera orbits for 5 s. Printed, not asserted.

    python benchmarks/bench_viewer.py --config build/demo/lutece.yml [--rounds 3]

Time to first frame: from navigation to the map's first ``idle`` (every visible layer's tiles drawn), and from
the 3D button to every visible tileset's first view loaded and drawn. Baseline beside them: the same page with
no layer (the libraries' own start-up), so the table shows what the city's layers cost.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from viewer_browser import browser, open_viewer, served, wait  # noqa: E402

ORBIT = """async (seconds) => {
  const scene = window.lutece.scene.viewer.scene, camera = window.lutece.scene.viewer.camera;
  const tileset = [...window.lutece.scene.tilesets.values()].find((t) => t.show);
  const centre = tileset ? tileset.boundingSphere.center : camera.positionWC;
  let frames = 0;
  const count = () => { frames += 1; };
  scene.postRender.addEventListener(count);
  const start = performance.now();
  await new Promise((resolve) => {
    const step = () => {
      camera.rotate(Cesium.Cartesian3.normalize(centre, new Cesium.Cartesian3()), 0.02);
      if (performance.now() - start < seconds * 1000) requestAnimationFrame(step); else resolve();
    };
    requestAnimationFrame(step);
  });
  scene.postRender.removeEventListener(count);
  return frames / ((performance.now() - start) / 1000);
}"""


def one_round(chromium, url: str, fragment: str) -> dict:
    started = time.perf_counter()
    page = open_viewer(chromium, f"{url}/viewer#{fragment}")
    wait(page, "ready2d")
    first_2d = time.perf_counter() - started
    started = time.perf_counter()
    page.click("#mode-3d")
    wait(page, "ready3d")
    first_3d = time.perf_counter() - started
    fps = page.evaluate(ORBIT, 5)
    page.close()
    return {"2d": first_2d, "3d": first_3d, "fps": fps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the city's lutece.yml")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not args.config.is_file():
        raise SystemExit(f"Error: {args.config} does not exist; publish a city first (SERVE=0 make demo)")
    with served(args.config) as url, browser() as chromium:
        cases = {"no layer (baseline)": "layers=", "every layer": ""}
        results = {name: [one_round(chromium, url, fragment) for _ in range(args.rounds)]
                   for name, fragment in cases.items()}
    print(f"{'case':22} {'2D first frame s':>17} {'3D first frame s':>17} {'3D orbit fps':>13}")
    for name, rounds in results.items():
        print(f"{name:22} {statistics.median(r['2d'] for r in rounds):17.2f} "
              f"{statistics.median(r['3d'] for r in rounds):17.2f} {statistics.median(r['fps'] for r in rounds):13.1f}")


if __name__ == "__main__":
    main()

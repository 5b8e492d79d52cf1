"""Helpers of the tiles tests: the Khronos glTF validator and the tile size used on the sample district."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

VALIDATOR = Path(__file__).resolve().parent / "gltf_validator"
MAX_POINTS = 20_000  # small tiles so that the sample district makes a deep octree


def validate_gltf(files: list[Path]) -> list[dict]:
    """The Khronos glTF validator's verdict on each file (installed by the set-up under gltf_validator/)."""
    if not (VALIDATOR / "node_modules" / "gltf-validator").is_dir():
        if shutil.which("npm") is None:
            pytest.fail("npm is missing: run 'make setup' (it installs Debian's npm and the glTF validator)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--prefix", str(VALIDATOR)], check=True,
                       capture_output=True)
    verdicts = []
    for start in range(0, len(files), 200):
        run = subprocess.run(["node", str(VALIDATOR / "validate.js"), *map(str, files[start:start + 200])],
                             check=True, capture_output=True, text=True)
        verdicts += [json.loads(line) for line in run.stdout.splitlines()]
    return verdicts

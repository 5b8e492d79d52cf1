"""Shared fixtures: the committed sample district and the real IGN tiles."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_DISTRICT = ROOT / "sample_data" / "district"
# LUTECE_IGN_LIDAR points elsewhere (a worktree whose parent holds no shared folder)
IGN_LIDAR = Path(os.environ.get("LUTECE_IGN_LIDAR", ROOT.parent / "shared" / "data" / "lidar"))


@pytest.fixture(scope="session")
def district() -> Path:
    """The committed sample district (regenerate with `make sample`)."""
    if not (SAMPLE_DISTRICT / "manifest.json").is_file():
        pytest.fail(f"{SAMPLE_DISTRICT} is missing; run 'make sample' to regenerate it")
    return SAMPLE_DISTRICT


@pytest.fixture(scope="session")
def district_manifest(district: Path) -> dict:
    return json.loads((district / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def ign_tiles() -> list[Path]:
    """The real IGN LiDAR HD tiles of ../shared/data/lidar; skipped where that folder is absent."""
    tiles = sorted(IGN_LIDAR.glob("*.laz")) if IGN_LIDAR.is_dir() else []
    if not tiles:
        pytest.skip(f"real IGN LiDAR HD tiles not found in {IGN_LIDAR}")
    return tiles

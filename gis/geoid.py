"""The geoid model shared by the 3D Tiles placement (:mod:`tiles.geo`) and the server's ellipsoidal heights.

Lutèce's heights (NGF-IGN69) are orthometric; 3D Tiles and web globes want
heights above the WGS84 ellipsoid. Both sides add the same geoid grid's
separation, through PROJ's ``vgridshift``, so a terrain served in EPSG:4979
lies under the tilesets as the heights were measured.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_GEOID = "egm96_15.gtx"  # EGM96 at 15', shipped by Debian's proj-data
GEOID_DIRS = (Path("/usr/share/proj"),)


def find_default_geoid() -> Path:
    """EGM96's grid in PROJ's data folders; the path where it is expected when it is nowhere."""
    import pyproj

    folders = [Path(pyproj.datadir.get_data_dir()), *GEOID_DIRS]
    for folder in folders:
        if (folder / DEFAULT_GEOID).is_file():
            return folder / DEFAULT_GEOID
    return GEOID_DIRS[0] / DEFAULT_GEOID


def ellipsoidal_heights(lon: np.ndarray, lat: np.ndarray, heights: np.ndarray, grid: Path | None = None) -> np.ndarray:
    """Orthometric ``heights`` at WGS84 ``lon``, ``lat`` (degrees) plus the geoid's separation there.

    Raises
    ------
    ValueError
        The grid is missing or does not cover a point (PROJ answers infinity there).
    """
    import pyproj

    grid = grid or find_default_geoid()
    if not grid.is_file():
        raise ValueError(f"geoid grid {grid}: no such file (Debian's proj-data ships {DEFAULT_GEOID})")
    shift = pyproj.Transformer.from_pipeline(
        "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
        f"+step +proj=vgridshift +grids={grid} +multiplier=1 +step +proj=unitconvert +xy_in=rad +xy_out=deg")
    _, _, shifted = shift.transform(np.asarray(lon, float), np.asarray(lat, float), np.asarray(heights, float))
    if not np.isfinite(shifted).all():
        raise ValueError(f"geoid grid {grid.name} does not cover every point")
    return shifted

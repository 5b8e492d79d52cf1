"""Linear interpolation over a Delaunay triangulation (a TIN), rasterised onto a grid's cell centres.

scipy's Delaunay (Qhull) triangulates the points; each triangle then writes
the plane through its three vertices into the cells whose centres it covers
(a compiled loop over the triangles and the cells of each one's bounding
box). This is what scipy's ``LinearNDInterpolator`` computes, but its point
location walks the triangulation for every query: minutes for the millions
of cells of a sparse tile, where the rasterisation takes a fraction of a
second. A TIN has no preferred direction: what it fills under a building or
a pond is the same whichever way the grid runs (the row-and-column fill it
replaces drew cross-hatching there).
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.spatial import Delaunay, QhullError

from pipelines.raster import Grid


def tin_onto_grid(x: np.ndarray, y: np.ndarray, z: np.ndarray, grid: Grid, wanted: np.ndarray) -> np.ndarray:
    """Heights of the TIN of the points at the centres of the ``wanted`` cells of ``grid``; NaN elsewhere.

    Cells outside the points' convex hull stay NaN, as do all cells when the
    points cannot be triangulated (fewer than 3, or all on a line).
    """
    out = np.full(grid.shape, np.nan)
    if len(x) < 3 or not wanted.any():
        return out
    origin = np.array([grid.xmin, grid.ymax])
    xy = np.column_stack([x - origin[0], origin[1] - y])  # metres east and south of the grid's corner
    try:
        triangles = Delaunay(xy).simplices
    except QhullError:  # collinear or duplicate points only
        return out
    _rasterise(xy / grid.resolution - 0.5, np.asarray(z, dtype=np.float64), triangles.astype(np.int64),
               wanted, out)
    return out


@numba.njit(cache=True, nogil=True)
def _rasterise(uv, z, triangles, wanted, out):  # pragma: no cover - compiled
    """Write each triangle's plane into the wanted cells whose centre (integer u, v) it covers."""
    rows, cols = out.shape
    for t in range(triangles.shape[0]):
        a, b, c = triangles[t, 0], triangles[t, 1], triangles[t, 2]
        ua, va, ub, vb, uc, vc = uv[a, 0], uv[a, 1], uv[b, 0], uv[b, 1], uv[c, 0], uv[c, 1]
        det = (vb - vc) * (ua - uc) + (uc - ub) * (va - vc)
        if det == 0.0:
            continue
        c0 = max(0, int(np.ceil(min(ua, ub, uc) - 1e-9)))
        c1 = min(cols - 1, int(np.floor(max(ua, ub, uc) + 1e-9)))
        r0 = max(0, int(np.ceil(min(va, vb, vc) - 1e-9)))
        r1 = min(rows - 1, int(np.floor(max(va, vb, vc) + 1e-9)))
        for row in range(r0, r1 + 1):
            for col in range(c0, c1 + 1):
                if not wanted[row, col]:
                    continue
                wa = ((vb - vc) * (col - uc) + (uc - ub) * (row - vc)) / det
                wb = ((vc - va) * (col - uc) + (ua - uc) * (row - vc)) / det
                wc = 1.0 - wa - wb
                if wa >= -1e-9 and wb >= -1e-9 and wc >= -1e-9:
                    out[row, col] = wa * z[a] + wb * z[b] + wc * z[c]

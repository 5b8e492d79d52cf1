"""Roof planes of one building: RANSAC planes, the roof type they make, and the roof points' fit to them.

Planes are found one after the other (RANSAC on the points not yet taken, then a least-squares fit of
the inliers), as ``z = a x + b y + c``: a roof face is never vertical. The roof they model is the lowest
of the planes at each point, which is exact for the convex roofs of LoD2.2's common types (flat, shed,
gable, hip, mansard: each face is the lowest plane over its own part of the footprint). The RMSE is the
vertical distance of every roof point to that model (no smaller than the distance along the normal
that 3DBAG reports).

Deterministic: the random draws come from a generator seeded by the number of points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FLAT_SLOPE = 0.15  # rise per metre below which a plane is flat (8.5 degrees)
STEEP_SLOPE = 1.2  # above it, the steep lower face of a mansard (50 degrees)


@dataclass(frozen=True)
class PlaneOptions:
    threshold: float = 0.15  # metres: a point this close to a plane (vertically) is one of its inliers
    min_share: float = 0.04  # a plane needs this share of the roof points (and at least 30)
    max_planes: int = 8
    hypotheses: int = 300


@dataclass
class RoofFit:
    """The planes (k, 3) of ``z = a x + b y + c`` (centred coordinates), the roof type and the RMSE."""

    planes: np.ndarray
    roof_type: str
    rmse: float
    centre: np.ndarray

    def height(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The modelled roof at (x, y): the lowest plane."""
        dx, dy = x - self.centre[0], y - self.centre[1]
        return np.min(self.planes[:, 0, None] * dx + self.planes[:, 1, None] * dy + self.planes[:, 2, None], axis=0)


def fit_roof(points: np.ndarray, options: PlaneOptions = PlaneOptions()) -> RoofFit | None:
    """The roof planes of a building's roof points (n, 3); None when no plane holds enough points."""
    centre = points[:, :2].mean(axis=0)
    local = np.column_stack([points[:, :2] - centre, points[:, 2]])
    rng = np.random.default_rng(len(points))
    needed = max(30, int(options.min_share * len(points)))
    remaining = np.arange(len(points))
    planes = []
    while len(planes) < options.max_planes and len(remaining) >= needed:
        plane, inliers = _ransac(local[remaining], options, rng)
        if plane is None or inliers.sum() < needed:
            break
        planes.append(plane)
        remaining = remaining[~inliers]
    if not planes:
        return None
    fit = RoofFit(np.array(planes), "", 0.0, centre)
    residual = points[:, 2] - fit.height(points[:, 0], points[:, 1])
    fit.rmse = float(np.sqrt(np.mean(residual ** 2)))
    fit.roof_type = roof_type(fit.planes)
    return fit


def _ransac(points: np.ndarray, options: PlaneOptions, rng: np.random.Generator):
    """The plane with the most inliers among random triples, refitted to them by least squares."""
    triples = rng.integers(0, len(points), (options.hypotheses, 3))
    design = np.concatenate([points[triples][:, :, :2], np.ones((options.hypotheses, 3, 1))], axis=2)
    usable = np.abs(np.linalg.det(design)) > 1e-6
    if not usable.any():
        return None, None
    candidates = np.linalg.solve(design[usable], points[triples[usable]][:, :, 2, None])[:, :, 0]  # (h, 3): a, b, c
    predicted = points[:, 0, None] * candidates[:, 0] + points[:, 1, None] * candidates[:, 1] + candidates[:, 2]
    counts = (np.abs(points[:, 2, None] - predicted) < options.threshold).sum(axis=0)
    best = candidates[int(np.argmax(counts))]
    inliers = np.abs(points[:, 2] - points[:, :2] @ best[:2] - best[2]) < options.threshold
    if inliers.sum() < 3:
        return None, None
    on = points[inliers]
    refit = np.linalg.lstsq(np.column_stack([on[:, :2], np.ones(len(on))]), on[:, 2], rcond=None)[0]
    inliers = np.abs(points[:, 2] - points[:, :2] @ refit[:2] - refit[2]) < options.threshold
    return refit, inliers


def roof_type(planes: np.ndarray) -> str:
    """flat, shed, gable, hip, mansard or complex, from the planes' slopes."""
    slopes = np.hypot(planes[:, 0], planes[:, 1])
    flat, steep = slopes < FLAT_SLOPE, slopes > STEEP_SLOPE
    if len(planes) == 1:
        return "flat" if flat[0] else "shed"
    if flat.any():
        return "mansard" if flat.sum() == 1 and steep[~flat].all() else "complex"
    if len(planes) == 2:
        return "gable"
    return "hip" if len(planes) <= 4 else "complex"

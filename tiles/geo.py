"""Placement on the globe: the one place where working-CRS coordinates become ECEF.

Heights of French lidar (NGF-IGN69) are orthometric; 3D Tiles clients need
ellipsoidal heights. pyproj silently drops a vertical datum it has no grid
for, so the geoid model is applied here explicitly, through a PROJ pipeline
naming the grid (``vgridshift``), and a grid that does not cover the data is
an error, never a silent fallback. ``heights="ellipsoidal"`` says the input
heights already are ellipsoidal.

Tile contents are written in a local east-north-up frame (:class:`LocalFrame`)
whose origin is near the data, so that float32 positions relative to a tile's
centre keep sub-millimetre precision; the tileset's root transform takes that
frame to ECEF (EPSG:4978).

Speed: PROJ runs the exact transform on a lattice of a few thousand nodes per
call; the points are then placed by a cubic fit of the geometry and a bilinear
interpolation of the geoid on a 10 m lattice, checked against the exact
transform on sample points of every call (``MAX_FIT_ERROR``). The exact path
(:meth:`Placement.to_ecef`) stays available and is used when a fit is not
good enough.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pyproj

from gis.errors import InputError
from gis.geoid import DEFAULT_GEOID, find_default_geoid

log = logging.getLogger(__name__)

MAX_FIT_ERROR = 0.0005  # metres: the fast placement must agree with PROJ's exact transform within this
LATTICE_STEP = 10.0  # metres between the geoid lattice nodes (error < 1e-4 of the grid's slope changes)
HEIGHTS = ("orthometric", "ellipsoidal")


@dataclass(frozen=True)
class HeightModel:
    """How input heights become ellipsoidal: through a geoid grid, or as they are.

    Parameters
    ----------
    heights
        ``"orthometric"`` (a geoid grid is applied) or ``"ellipsoidal"`` (nothing is).
    grid
        The geoid grid file (GTX or GeoTIFF, anything PROJ's ``vgridshift`` reads); None when ellipsoidal.
    """

    heights: str = "orthometric"
    grid: Path | None = None

    @classmethod
    def resolve(cls, heights: str = "orthometric", geoid: str | Path | None = None) -> HeightModel:
        """The model for a ``--heights`` value and an optional ``--geoid`` path; one clear error otherwise."""
        if heights not in HEIGHTS:
            raise InputError(f"--heights {heights}: use one of {', '.join(HEIGHTS)}")
        if heights == "ellipsoidal":
            if geoid is not None:
                raise InputError("--geoid was given with --heights ellipsoidal; ellipsoidal heights need no geoid")
            return cls("ellipsoidal", None)
        grid = Path(geoid) if geoid is not None else find_default_geoid()
        if not grid.is_file():
            raise InputError(f"geoid grid {grid}: no such file; give a grid PROJ can read with --geoid PATH "
                             "(e.g. RAF20 for France), or --heights ellipsoidal if the heights already are")
        return cls("orthometric", grid.resolve())

    @property
    def name(self) -> str:
        if self.grid is None:
            return "none (input heights are ellipsoidal)"
        return "EGM96 (egm96_15.gtx)" if self.grid.name == DEFAULT_GEOID else self.grid.name

    @cached_property
    def grid_sha256(self) -> str | None:
        return hashlib.sha256(self.grid.read_bytes()).hexdigest() if self.grid is not None else None

    def describe(self) -> dict[str, str | None]:
        """What the tileset's metadata and the lineage record about the heights."""
        return {"heights": self.heights, "geoid": self.name,
                "geoid_grid": str(self.grid) if self.grid else None, "geoid_sha256": self.grid_sha256}


class Placement:
    """Working-CRS coordinates to ECEF (EPSG:4978) and back, with the height model applied.

    Parameters
    ----------
    crs
        The working CRS of the points (projected; a compound CRS's horizontal part is used).
    model
        The :class:`HeightModel`.

    Examples
    --------
    >>> placement = Placement(pyproj.CRS("EPSG:2154"), HeightModel.resolve())
    >>> X, Y, Z = placement.to_ecef(np.array([651000.0]), np.array([6861000.0]), np.array([35.0]))
    """

    def __init__(self, crs: pyproj.CRS, model: HeightModel) -> None:
        self.crs = crs.sub_crs_list[0] if crs.is_compound else crs
        if not self.crs.is_projected:
            raise InputError(f"the working CRS {self.crs.name} is not projected; use a projected CRS such as EPSG:2154")
        self.model = model
        self._to_lonlat = pyproj.Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
        grid = "" if model.grid is None else f"+step +proj=vgridshift +grids={model.grid} +multiplier=1 "
        # lon, lat in degrees and the input height -> ECEF, adding the geoid's separation to the height
        self._lonlat_to_ecef = pyproj.Transformer.from_pipeline(
            f"+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad {grid}+step +proj=cart +ellps=WGS84")
        self._ellipsoid_to_ecef = pyproj.Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad +step +proj=cart +ellps=WGS84")

    def lonlat(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Longitudes and latitudes (degrees, WGS84) of working-CRS coordinates."""
        return self._to_lonlat.transform(x, y)

    def separation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The geoid's height above the ellipsoid at each point (0 for ellipsoidal heights); raises where uncovered."""
        x, y = np.atleast_1d(np.asarray(x, dtype=float)), np.atleast_1d(np.asarray(y, dtype=float))
        lon, lat = self.lonlat(x, y)
        zeros = np.zeros_like(lon)
        with_geoid = np.column_stack(self._lonlat_to_ecef.transform(lon, lat, zeros))
        without = np.column_stack(self._ellipsoid_to_ecef.transform(lon, lat, zeros))
        self._refuse_uncovered(with_geoid, lon, lat)
        return _along_normal(with_geoid - without, lon, lat)

    def to_ecef(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Exact ECEF coordinates (n, 3) of working-CRS points through PROJ; raises where the geoid is missing."""
        lon, lat = self.lonlat(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        ecef = np.column_stack(self._lonlat_to_ecef.transform(lon, lat, np.asarray(z, dtype=float)))
        self._refuse_uncovered(ecef, lon, lat)
        return ecef

    def from_ecef(self, ecef: np.ndarray) -> np.ndarray:
        """Working-CRS coordinates (n, 3) of ECEF points: the inverse of :meth:`to_ecef`."""
        lon, lat, h = self._lonlat_to_ecef.transform(ecef[:, 0], ecef[:, 1], ecef[:, 2], direction="INVERSE")
        x, y = self._to_lonlat.transform(lon, lat, direction="INVERSE")
        return np.column_stack([x, y, h])

    def check_covers(self, bounds: tuple[float, float, float, float]) -> None:
        """Raise unless the height model covers the box (xmin, ymin, xmax, ymax) of the working CRS."""
        xs, ys = np.meshgrid(np.linspace(bounds[0], bounds[2], 9), np.linspace(bounds[1], bounds[3], 9))
        self.separation(xs.ravel(), ys.ravel())

    def local_frame(self, bounds: tuple[float, float, float, float], height: float = 0.0) -> LocalFrame:
        """An east-north-up frame at the centre of ``bounds`` (working CRS), ``height`` above the geoid."""
        cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        origin = self.to_ecef(np.array([cx]), np.array([cy]), np.array([height]))[0]
        lon, lat = self.lonlat(cx, cy)
        return LocalFrame(origin=origin, rotation=enu_rotation(float(lon), float(lat)))

    def to_local(self, frame: LocalFrame, x: np.ndarray, y: np.ndarray, z: np.ndarray,
                 dtype: type = np.float64) -> np.ndarray:
        """Coordinates (n, 3) of working-CRS points in ``frame``, within ``MAX_FIT_ERROR`` of the exact transform.

        ``dtype`` float32 halves the memory and keeps 0.1 mm within a few kilometres of the frame's origin.
        """
        if len(x) == 0:
            return np.empty((0, 3), dtype=dtype)
        bounds = (float(x.min()), float(y.min()), float(x.max()), float(y.max()))
        fit = _FastPlacement.build(self, frame, bounds)
        sample = np.random.default_rng(0).choice(len(x), size=min(len(x), 2048), replace=False)
        exact = frame.from_ecef(self.to_ecef(x[sample], y[sample], z[sample]))
        if fit is not None and np.abs(fit.place(x[sample], y[sample], z[sample]) - exact).max() <= MAX_FIT_ERROR:
            return fit.place(x, y, z, dtype=dtype)
        log.info("placement: the fast fit misses PROJ by more than %g m over %s; exact transform", MAX_FIT_ERROR, bounds)
        return frame.from_ecef(self.to_ecef(x, y, z)).astype(dtype, copy=False)

    def _refuse_uncovered(self, ecef: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> None:
        bad = ~np.all(np.isfinite(ecef), axis=1)
        if bad.any():
            where = f"lon {np.min(lon[bad]):.4f}..{np.max(lon[bad]):.4f}, lat {np.min(lat[bad]):.4f}..{np.max(lat[bad]):.4f}"
            raise InputError(f"geoid grid {self.model.grid}: does not cover the data ({where}); give a grid "
                             "that covers it with --geoid PATH, or --heights ellipsoidal if the heights already are")


@dataclass(frozen=True)
class LocalFrame:
    """A local east-north-up frame: ``local = rotation @ (ecef - origin)``."""

    origin: np.ndarray
    rotation: np.ndarray

    def to_ecef(self, local: np.ndarray) -> np.ndarray:
        return local @ self.rotation + self.origin

    def from_ecef(self, ecef: np.ndarray) -> np.ndarray:
        return (ecef - self.origin) @ self.rotation.T

    @property
    def transform(self) -> np.ndarray:
        """The 4x4 matrix taking local coordinates to ECEF (a tileset root's ``transform``)."""
        matrix = np.identity(4)
        matrix[:3, :3] = self.rotation.T
        matrix[:3, 3] = self.origin
        return matrix


def enu_rotation(lon: float, lat: float) -> np.ndarray:
    """Rows east, north, up at a geodetic longitude and latitude (degrees), in ECEF axes."""
    lam, phi = np.radians(lon), np.radians(lat)
    return np.array([[-np.sin(lam), np.cos(lam), 0.0],
                     [-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)],
                     [np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)]])


def _along_normal(offset: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The length of ECEF offsets along the ellipsoid's normal at (lon, lat)."""
    lam, phi = np.radians(lon), np.radians(lat)
    normal = np.column_stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    return np.einsum("ij,ij->i", offset, normal)


@dataclass
class _FastPlacement:
    """local(x, y, H) = surface(x, y) + (H + N(x, y)) * normal(x, y), the exact form of geodetic -> cartesian.

    ``surface`` (the ellipsoid point) is a cubic of (x, y) fitted to PROJ on a lattice, ``normal`` a linear
    one, and the geoid's separation N a bilinear interpolation of PROJ's values on a 10 m lattice.
    """

    centre: np.ndarray
    half: np.ndarray
    surface: np.ndarray  # (10, 3) cubic coefficients
    normal: np.ndarray  # (3, 3) linear coefficients
    geoid: np.ndarray  # (ny, nx) separations on the lattice
    lattice_origin: np.ndarray
    step: float

    @classmethod
    def build(cls, placement: Placement, frame: LocalFrame, bounds) -> _FastPlacement | None:
        xmin, ymin, xmax, ymax = bounds
        centre = np.array([(xmin + xmax) / 2, (ymin + ymax) / 2])
        half = np.maximum(np.array([xmax - xmin, ymax - ymin]) / 2, 1.0)
        u, v = np.meshgrid(np.linspace(-1, 1, 21), np.linspace(-1, 1, 21))
        x, y = centre[0] + u.ravel() * half[0], centre[1] + v.ravel() * half[1]
        lon, lat = placement.lonlat(x, y)
        ellipsoid = placement._ellipsoid_to_ecef
        surface = frame.from_ecef(np.column_stack(ellipsoid.transform(lon, lat, np.zeros_like(x))))
        above = frame.from_ecef(np.column_stack(ellipsoid.transform(lon, lat, np.full_like(x, 1000.0))))
        terms = _cubic_terms(u.ravel(), v.ravel())
        surface_fit = np.linalg.lstsq(terms, surface, rcond=None)[0]
        normal_fit = np.linalg.lstsq(terms[:, :3], (above - surface) / 1000.0, rcond=None)[0]
        nx = int(np.ceil((xmax - xmin) / LATTICE_STEP)) + 2
        ny = int(np.ceil((ymax - ymin) / LATTICE_STEP)) + 2
        gx, gy = np.meshgrid(xmin + LATTICE_STEP * np.arange(nx), ymin + LATTICE_STEP * np.arange(ny))
        geoid = placement.separation(gx.ravel(), gy.ravel()).reshape(ny, nx)
        return cls(centre, half, surface_fit, normal_fit, geoid, np.array([xmin, ymin]), LATTICE_STEP)

    def place(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, chunk: int = 1 << 16,
              dtype: type = np.float64) -> np.ndarray:
        out = np.empty((len(x), 3), dtype=dtype)
        for start in range(0, len(x), chunk):  # bounded temporaries
            part = slice(start, start + chunk)
            out[part] = self._place(x[part], y[part], z[part])
        return out

    def _place(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        # Element-wise on purpose: a BLAS product of (n, 10) terms is slower here and spins threads.
        u = (x - self.centre[0]) / self.half[0]
        v = (y - self.centre[1]) / self.half[1]
        uu, uv, vv = u * u, u * v, v * v
        height = z + self._separation(x, y)
        out = np.empty((len(x), 3))
        for axis in range(3):
            c, n = self.surface[:, axis], self.normal[:, axis]
            value = c[0] + c[1] * u + c[2] * v + c[3] * uu + c[4] * uv + c[5] * vv
            value += (c[6] * u + c[7] * v) * uu + (c[8] * u + c[9] * v) * vv
            value += height * (n[0] + n[1] * u + n[2] * v)
            out[:, axis] = value
        return out

    def _separation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        fx = (x - self.lattice_origin[0]) / self.step
        fy = (y - self.lattice_origin[1]) / self.step
        ny, nx = self.geoid.shape
        ix = np.clip(fx.astype(np.int64), 0, nx - 2)
        iy = np.clip(fy.astype(np.int64), 0, ny - 2)
        tx, ty = fx - ix, fy - iy
        g = self.geoid
        return ((g[iy, ix] * (1 - tx) + g[iy, ix + 1] * tx) * (1 - ty)
                + (g[iy + 1, ix] * (1 - tx) + g[iy + 1, ix + 1] * tx) * ty)


def _cubic_terms(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """1, u, v, u2, uv, v2, u3, u2v, uv2, v3 as columns (the first three are the linear terms)."""
    uu, vv = u * u, v * v
    return np.column_stack([np.ones_like(u), u, v, uu, u * v, vv, uu * u, uu * v, u * vv, vv * v])


def frame_at(ecef_point: np.ndarray) -> LocalFrame:
    """The east-north-up frame whose origin is an ECEF point (the frame of a tileset joining others)."""
    lon, lat, _ = pyproj.Transformer.from_crs("EPSG:4978", "EPSG:4979", always_xy=True).transform(*ecef_point)
    return LocalFrame(origin=np.asarray(ecef_point, dtype=float), rotation=enu_rotation(lon, lat))

"""Where an IFC model stands: its local engineering frame to the working CRS.

Three sources, in this order: the model's ``IfcMapConversion`` (with its
``IfcProjectedCRS``); else the site's reference latitude, longitude and
elevation with the context's true north; else an origin, rotation and CRS
given by the user. Explicit options win over what the file says (an operator
correcting a wrong map conversion); with none of the three, one error says
which options to give.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyproj

from gis.errors import InputError

_AXIS_TEST = 100.0  # metres along each local axis to measure the site's frame on the ellipsoid


@dataclass(frozen=True)
class GeorefOptions:
    """The user's georeferencing, used when the file has none (or to override it)."""

    origin: tuple[float, ...] | None = None  # map x, y[, z] of the model's local origin
    rotation: float = 0.0  # degrees, counter-clockwise, of the local x axis from the map's grid east
    crs: str | None = None  # CRS of origin (default: the working CRS)

    def __post_init__(self) -> None:
        if self.origin is not None and len(self.origin) not in (2, 3):
            raise InputError(f"origin {list(self.origin)}: give x, y or x, y, z (map coordinates of the model's "
                             "local origin)")


@dataclass(frozen=True)
class Georeference:
    """Local model metres (x, y, z) to the working CRS: ``offset + linear @ (x, y)`` and ``height + z``."""

    source: str
    linear: np.ndarray  # (2, 2): rotation and scale, local -> map
    offset: np.ndarray  # (2,) map coordinates of the local origin
    height: float  # map height of local z = 0
    crs: pyproj.CRS  # the map CRS
    working: pyproj.CRS

    def apply(self, xyz: np.ndarray) -> np.ndarray:
        xyz = np.asarray(xyz, dtype=np.float64).reshape(-1, 3)
        out = np.empty_like(xyz)
        out[:, :2] = xyz[:, :2] @ self.linear.T + self.offset
        out[:, 2] = xyz[:, 2] + self.height
        if not self.crs.equals(self.working, ignore_axis_order=True):
            transformer = pyproj.Transformer.from_crs(self.crs, self.working, always_xy=True)
            out[:, 0], out[:, 1] = transformer.transform(out[:, 0], out[:, 1])
        return out

    def describe(self) -> dict:
        angle = math.degrees(math.atan2(self.linear[1, 0], self.linear[0, 0]))
        return {"source": self.source, "crs": self.crs.to_string(), "origin": [*map(float, self.offset), self.height],
                "rotation_deg": round(angle, 9), "scale": float(np.hypot(*self.linear[:, 0]))}


def georeference(model, working: pyproj.CRS | None, options: GeorefOptions | None = None,
                 where: str = "") -> Georeference:
    """The model's georeferencing (see the module docstring); raises InputError naming the options to give.

    A working CRS of None (``crs: auto``) is the model's own map CRS.
    """
    options = options or GeorefOptions()
    if options.origin is not None:
        return _from_options(options, working, where)
    found = _from_map_conversion(model, working, where)
    if found is None:
        found = _from_site(model, working)
    if found is None:
        raise InputError(f"{where}: the model has no georeferencing (no IfcMapConversion, no site latitude and "
                         "longitude); give the map position of its local origin with --origin X,Y[,Z] (and "
                         "--rotation DEGREES, --crs EPSG:CODE if not the working CRS), or the reader's options "
                         "origin, rotation and crs")
    return found


def _from_options(options: GeorefOptions, working: pyproj.CRS | None, where: str) -> Georeference:
    if options.crs is None and working is None:
        raise InputError(f"{where}: with crs: auto, give the CRS of the origin with --crs EPSG:CODE (the reader's "
                         "option crs)")
    crs = _crs(options.crs, where, "crs option") if options.crs else working
    working = working or crs
    x, y, *z = options.origin
    return Georeference("options", _rotation(math.radians(options.rotation)), np.array([x, y], float),
                        float(z[0]) if z else 0.0, crs, working)


def _from_map_conversion(model, working: pyproj.CRS | None, where: str) -> Georeference | None:
    import ifcopenshell.util.unit

    conversions = model.by_type("IfcMapConversion") if model.schema != "IFC2X3" else []
    if not conversions:
        return None
    conversion = conversions[0]
    target = conversion.TargetCRS
    name = getattr(target, "Name", None)
    if not name:
        raise InputError(f"{where}: the IfcMapConversion's IfcProjectedCRS has no Name; it should name the CRS "
                         "(such as EPSG:2154)")
    crs = _crs(name, where, "IfcProjectedCRS.Name")
    unit = ifcopenshell.util.unit.calculate_unit_scale(model)  # metres per project length unit
    map_unit = _map_unit_scale(target)  # metres per map unit
    a, b = conversion.XAxisAbscissa, conversion.XAxisOrdinate
    angle = math.atan2(b, a) if a is not None and b is not None and (a or b) else 0.0
    # map units = E + Scale * R @ (project units); the geometry iterator gives metres
    scale = conversion.Scale if conversion.Scale is not None else 1.0
    linear = scale * map_unit / unit * _rotation(angle)
    offset = np.array([conversion.Eastings, conversion.Northings], float) * map_unit
    height = float(conversion.OrthogonalHeight or 0.0) * map_unit
    return Georeference("IfcMapConversion", linear, offset, height, crs, working or crs)


def _map_unit_scale(target) -> float:
    """Metres per unit of the projected CRS (its MapUnit; metres when absent)."""
    import ifcopenshell.util.unit

    unit = getattr(target, "MapUnit", None)
    if unit is None or not unit.is_a("IfcSIUnit"):
        return 1.0
    return float(ifcopenshell.util.unit.get_prefix_multiplier(unit.Prefix))


def _from_site(model, working: pyproj.CRS | None) -> Georeference | None:
    import ifcopenshell.util.geolocation as geolocation

    sites = [s for s in model.by_type("IfcSite") if s.RefLatitude and s.RefLongitude]
    if not sites:
        return None
    if working is None:
        raise InputError("the model is placed by its site's latitude and longitude, which need a projected working "
                         "CRS: set crs: in lutece.yml (e.g. EPSG:2154) rather than auto")
    site = sites[0]
    lat = geolocation.dms2dd(*site.RefLatitude)
    lon = geolocation.dms2dd(*site.RefLongitude)
    north = math.radians(geolocation.get_true_north(model) or 0.0)  # CCW angle of true north from local +y
    geodetic = working.geodetic_crs if working.is_projected else pyproj.CRS("EPSG:4326")
    geod = geodetic.get_geod()
    to_map = pyproj.Transformer.from_crs(geodetic, working, always_xy=True)
    x_azimuth = 90.0 + math.degrees(north)  # clockwise from true north, of local +x
    points = [(lon, lat)]
    for azimuth in (x_azimuth, x_azimuth - 90.0):  # local +x, local +y
        lon2, lat2, _ = geod.fwd(lon, lat, azimuth, _AXIS_TEST)
        points.append((lon2, lat2))
    xs, ys = to_map.transform(*np.array(points).T)
    origin = np.array([xs[0], ys[0]])
    linear = np.column_stack([[xs[1] - xs[0], ys[1] - ys[0]], [xs[2] - xs[0], ys[2] - ys[0]]]) / _AXIS_TEST
    import ifcopenshell.util.unit

    unit = ifcopenshell.util.unit.calculate_unit_scale(model)  # placements and RefElevation: project units
    site_z = _placement_z(site) * unit
    return Georeference("IfcSite", linear, origin - linear @ (site_xy(site) * unit),
                        float(site.RefElevation or 0.0) * unit - site_z, working, working)


def site_xy(site) -> np.ndarray:
    """The site placement's local x, y (the point RefLatitude/RefLongitude locate)."""
    import ifcopenshell.util.placement

    if site.ObjectPlacement is None:
        return np.zeros(2)
    return ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)[:2, 3]


def _placement_z(site) -> float:
    import ifcopenshell.util.placement

    if site.ObjectPlacement is None:
        return 0.0
    return float(ifcopenshell.util.placement.get_local_placement(site.ObjectPlacement)[2, 3])


def _rotation(angle: float) -> np.ndarray:
    return np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])


def _crs(text: str, where: str, what: str) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(text)
    except pyproj.exceptions.CRSError:
        raise InputError(f"{where}: {what} {text!r} is not a CRS PROJ knows; give it as EPSG:CODE") from None

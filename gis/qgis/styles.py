"""Default QGIS (QML) and SLD styles from a layer's kind, theme and data; given QML files checked.

The rule, in the order tried:

- buildings theme, polygons with a height column: graduated by height (5 equal classes, yellow to red);
- elevation theme, lines with an ``elevation`` column (contours): graduated by elevation, brown;
- vegetation theme, points with a crown radius: green circles of the crown's diameter (map units);
- elevation rasters: a terrain ramp over the raster's range, but a hillshade (id or file named so) greyscale;
- anything else: one plain symbol for its geometry, greyscale for a raster.

Documents are built with :mod:`xml.etree.ElementTree` (QGIS 3.28's QML shape, SLD 1.1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

from gis.errors import InputError
from gis.qgis.presentation import Style

QGIS_VERSION = "3.28.0-Firenze"
SLD_NS = {"": "http://www.opengis.net/sld", "se": "http://www.opengis.net/se", "ogc": "http://www.opengis.net/ogc"}
HEIGHT_COLUMNS = ("height_m", "height", "hauteur")
CROWN_COLUMNS = ("crown_radius_m", "crown_radius")
HEIGHT_RAMP = ("#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026")
CONTOUR_RAMP = ("#d9c7a0", "#bf9b62", "#a0703a", "#7a4a1c", "#542c08")
TERRAIN_RAMP = ("#1a9641", "#a6d96a", "#ffffbf", "#d7a35f", "#8c510a", "#ffffff")
GEOMETRY_CODES = {"Point": 0, "Line": 1, "Polygon": 2}

for _prefix, _uri in SLD_NS.items():
    ET.register_namespace(_prefix, _uri)


@dataclass(frozen=True)
class Summary:
    """What the style rule needs of a version: its geometry family and the ranges of its numeric columns."""

    geometry: str | None = None  # "Point", "Line", "Polygon"; None for a raster
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)


def geometry_family(geometry_type: str | None) -> str | None:
    """``Point``, ``Line`` or ``Polygon`` of a GeoPackage/PostGIS geometry type name (None: unknown)."""
    name = (geometry_type or "").upper()
    for family in ("POINT", "LINE", "POLYGON"):
        if family in name:
            return family.title()
    return None


def default_style(layer_id: str, kind: str, theme: str | None, summary: Summary, name_hint: str = "") -> Style:
    """The default :class:`Style` of a layer's current version."""
    if kind == "raster":
        low, high = summary.ranges.get("band1", (0.0, 255.0))
        if "hillshade" in f"{layer_id} {name_hint}".lower() or "ombrage" in name_hint.lower():
            return _raster_grey(low, high)
        if theme == "elevation":
            return _raster_ramp(low, high)
        return _raster_grey(low, high)
    geometry, ranges = summary.geometry, summary.ranges
    height = _first(HEIGHT_COLUMNS, ranges)
    if theme == "buildings" and geometry == "Polygon" and height:
        return _graduated(geometry, height, ranges[height], HEIGHT_RAMP)
    if theme == "elevation" and geometry == "Line" and "elevation" in ranges:
        return _graduated(geometry, "elevation", ranges["elevation"], CONTOUR_RAMP)
    crown = _first(CROWN_COLUMNS, ranges)
    if theme == "vegetation" and geometry == "Point" and crown:
        return _sized_points(crown)
    return _single(geometry or "Polygon")


def read_style_file(path: Path) -> Style:
    """A given QML file as the layer's style; raises :class:`InputError` when it is not a QGIS style."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        root = ET.fromstring(text.encode("utf-8"))
    except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
        raise InputError(f"--style {path}: not a QGIS style file (QML) ({exc}); save one from QGIS "
                         f"(Layer Properties > Symbology > Style > Save Style)") from None
    if root.tag != "qgis":
        raise InputError(f"--style {path}: not a QGIS style file (QML): its root element is <{root.tag}>, "
                         f"not <qgis>; save one from QGIS (Layer Properties > Symbology > Style > Save Style)")
    return Style(qml=text, sld=None, note=f"lutece: given style {Path(path).name}")


def _first(names: tuple[str, ...], ranges: dict) -> str | None:
    return next((name for name in names if name in ranges), None)


def _classes(low: float, high: float, count: int) -> list[tuple[float, float]]:
    if not high > low:
        high = low + 1.0
    step = (high - low) / count
    return [(round(low + i * step, 2), round(low + (i + 1) * step if i < count - 1 else high, 2)) for i in range(count)]


# -- QML -------------------------------------------------------------------------------------------------
def _qml_root(geometry: str | None) -> ET.Element:
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="Symbology")
    if geometry is not None:
        ET.SubElement(root, "layerGeometryType").text = str(GEOMETRY_CODES[geometry])
    return root


def _options(parent: ET.Element, values: dict[str, str]) -> None:
    holder = ET.SubElement(parent, "Option", type="Map")
    for name, value in values.items():
        ET.SubElement(holder, "Option", type="QString", name=name, value=value)


def _rgb(color: str) -> str:
    return ",".join(str(int(color[i:i + 2], 16)) for i in (1, 3, 5)) + ",255"


def _symbol(parent: ET.Element, name: str, geometry: str, color: str, size_expression: str | None = None) -> None:
    kind = {"Point": "marker", "Line": "line", "Polygon": "fill"}[geometry]
    symbol = ET.SubElement(parent, "symbol", type=kind, name=name, alpha="1", clip_to_extent="1", force_rhr="0")
    layer_class = {"Point": "SimpleMarker", "Line": "SimpleLine", "Polygon": "SimpleFill"}[geometry]
    layer = ET.SubElement(symbol, "layer", {"class": layer_class, "enabled": "1", "pass": "0", "locked": "0"})
    if geometry == "Polygon":
        _options(layer, {"color": _rgb(color), "style": "solid", "outline_color": "50,50,50,255",
                         "outline_style": "solid", "outline_width": "0.2", "outline_width_unit": "MM"})
    elif geometry == "Line":
        _options(layer, {"line_color": _rgb(color), "line_style": "solid", "line_width": "0.4",
                         "line_width_unit": "MM", "capstyle": "round", "joinstyle": "round"})
    else:
        _options(layer, {"name": "circle", "color": _rgb(color), "outline_color": "35,90,35,255",
                         "outline_width": "0.2", "outline_width_unit": "MM", "size": "2",
                         "size_unit": "MapUnit" if size_expression else "MM"})
    if size_expression:
        ddp = ET.SubElement(ET.SubElement(layer, "data_defined_properties"), "Option", type="Map")
        ET.SubElement(ddp, "Option", type="QString", name="name", value="")
        size = ET.SubElement(ET.SubElement(ddp, "Option", type="Map", name="properties"), "Option", type="Map",
                             name="size")
        ET.SubElement(size, "Option", type="bool", name="active", value="true")
        ET.SubElement(size, "Option", type="QString", name="expression", value=size_expression)
        ET.SubElement(size, "Option", type="int", name="type", value="3")
        ET.SubElement(ddp, "Option", type="QString", name="type", value="collection")


def _qml(root: ET.Element) -> str:
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")


# -- SLD -------------------------------------------------------------------------------------------------
def _sld(name: str, rules: list[ET.Element], raster: ET.Element | None = None) -> str:
    sld, se = SLD_NS[""], SLD_NS["se"]
    root = ET.Element(f"{{{sld}}}StyledLayerDescriptor", version="1.1.0")
    named = ET.SubElement(root, f"{{{sld}}}NamedLayer")
    ET.SubElement(named, f"{{{se}}}Name").text = name
    style = ET.SubElement(ET.SubElement(named, f"{{{sld}}}UserStyle"), f"{{{se}}}FeatureTypeStyle")
    for rule in rules:
        style.append(rule)
    if raster is not None:
        rule = ET.SubElement(style, f"{{{se}}}Rule")
        rule.append(raster)
    return ET.tostring(root, encoding="unicode")


def _sld_rule(name: str, geometry: str, color: str, column: str | None = None,
              bounds: tuple[float, float] | None = None, size_column: str | None = None) -> ET.Element:
    se, ogc = SLD_NS["se"], SLD_NS["ogc"]
    rule = ET.Element(f"{{{se}}}Rule")
    ET.SubElement(rule, f"{{{se}}}Name").text = name
    if column is not None and bounds is not None:
        between = ET.SubElement(ET.SubElement(rule, f"{{{ogc}}}Filter"), f"{{{ogc}}}PropertyIsBetween")
        ET.SubElement(between, f"{{{ogc}}}PropertyName").text = column
        ET.SubElement(ET.SubElement(between, f"{{{ogc}}}LowerBoundary"), f"{{{ogc}}}Literal").text = str(bounds[0])
        ET.SubElement(ET.SubElement(between, f"{{{ogc}}}UpperBoundary"), f"{{{ogc}}}Literal").text = str(bounds[1])
    if geometry == "Polygon":
        symbolizer = ET.SubElement(rule, f"{{{se}}}PolygonSymbolizer")
        ET.SubElement(ET.SubElement(symbolizer, f"{{{se}}}Fill"), f"{{{se}}}SvgParameter", name="fill").text = color
        ET.SubElement(ET.SubElement(symbolizer, f"{{{se}}}Stroke"), f"{{{se}}}SvgParameter",
                      name="stroke").text = "#323232"
    elif geometry == "Line":
        stroke = ET.SubElement(ET.SubElement(rule, f"{{{se}}}LineSymbolizer"), f"{{{se}}}Stroke")
        ET.SubElement(stroke, f"{{{se}}}SvgParameter", name="stroke").text = color
        ET.SubElement(stroke, f"{{{se}}}SvgParameter", name="stroke-width").text = "1"
    else:
        metres = {"uom": "http://www.opengeospatial.org/se/units/metre"} if size_column else {}
        symbolizer = ET.SubElement(rule, f"{{{se}}}PointSymbolizer", metres)
        graphic = ET.SubElement(symbolizer, f"{{{se}}}Graphic")
        mark = ET.SubElement(graphic, f"{{{se}}}Mark")
        ET.SubElement(mark, f"{{{se}}}WellKnownName").text = "circle"
        ET.SubElement(ET.SubElement(mark, f"{{{se}}}Fill"), f"{{{se}}}SvgParameter", name="fill").text = color
        size = ET.SubElement(graphic, f"{{{se}}}Size")
        if size_column:
            product = ET.SubElement(size, f"{{{ogc}}}Mul")
            ET.SubElement(product, f"{{{ogc}}}PropertyName").text = size_column
            ET.SubElement(product, f"{{{ogc}}}Literal").text = "2"
        else:
            size.text = "7"
    return rule


# -- the styles ------------------------------------------------------------------------------------------
def _graduated(geometry: str, column: str, bounds: tuple[float, float], ramp: tuple[str, ...]) -> Style:
    classes = _classes(bounds[0], bounds[1], len(ramp))
    root = _qml_root(geometry)
    renderer = ET.SubElement(root, "renderer-v2", type="graduatedSymbol", attr=column,
                             graduatedMethod="GraduatedColor", symbollevels="0", enableorderby="0", forceraster="0")
    ranges, symbols = ET.SubElement(renderer, "ranges"), ET.SubElement(renderer, "symbols")
    for index, ((low, high), color) in enumerate(zip(classes, ramp)):
        ET.SubElement(ranges, "range", lower=f"{low}", upper=f"{high}", symbol=str(index),
                      label=f"{low:g} - {high:g}", render="true")
        _symbol(symbols, str(index), geometry, color)
    _symbol(ET.SubElement(renderer, "source-symbol"), "0", geometry, ramp[0])
    ET.SubElement(renderer, "classificationMethod", id="EqualInterval")
    rules = [_sld_rule(f"{low:g} - {high:g}", geometry, color, column, (low, high))
             for (low, high), color in zip(classes, ramp)]
    return Style(_qml(root), _sld(column, rules))


def _sized_points(column: str) -> Style:
    root = _qml_root("Point")
    renderer = ET.SubElement(root, "renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                             forceraster="0")
    _symbol(ET.SubElement(renderer, "symbols"), "0", "Point", "#4daf4a", size_expression=f'2 * "{column}"')
    return Style(_qml(root), _sld(column, [_sld_rule("crown", "Point", "#4daf4a", size_column=column)]))


def _single(geometry: str) -> Style:
    root = _qml_root(geometry)
    renderer = ET.SubElement(root, "renderer-v2", type="singleSymbol", symbollevels="0", enableorderby="0",
                             forceraster="0")
    _symbol(ET.SubElement(renderer, "symbols"), "0", geometry, "#7f8fa6")
    return Style(_qml(root), _sld(geometry, [_sld_rule(geometry, geometry, "#7f8fa6")]))


def _raster_pipe(renderer_attributes: dict[str, str]) -> tuple[ET.Element, ET.Element]:
    root = _qml_root(None)
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(pipe, "rasterrenderer", {"opacity": "1", "alphaBand": "-1", **renderer_attributes})
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(root, "blendMode").text = "0"
    return root, renderer


def _raster_ramp(low: float, high: float) -> Style:
    root, renderer = _raster_pipe({"type": "singlebandpseudocolor", "band": "1", "classificationMin": f"{low}",
                                   "classificationMax": f"{high}"})
    shader = ET.SubElement(ET.SubElement(renderer, "rastershader"), "colorrampshader", colorRampType="INTERPOLATED",
                           classificationMode="1", clip="0", minimumValue=f"{low}", maximumValue=f"{high}")
    steps = len(TERRAIN_RAMP) - 1
    values = [round(low + (high - low) * i / steps, 2) for i in range(steps + 1)]
    for value, color in zip(values, TERRAIN_RAMP):
        ET.SubElement(shader, "item", value=f"{value}", color=color, label=f"{value:g}", alpha="255")
    se = SLD_NS["se"]
    symbolizer = ET.Element(f"{{{se}}}RasterSymbolizer")
    color_map = ET.SubElement(symbolizer, f"{{{se}}}ColorMap")
    interpolate = ET.SubElement(color_map, f"{{{se}}}Interpolate", fallbackValue="#000000")
    ET.SubElement(interpolate, f"{{{se}}}LookupValue").text = "Rasterdata"
    for value, color in zip(values, TERRAIN_RAMP):
        point = ET.SubElement(interpolate, f"{{{se}}}InterpolationPoint")
        ET.SubElement(point, f"{{{se}}}Data").text = f"{value}"
        ET.SubElement(point, f"{{{se}}}Value").text = color
    return Style(_qml(root), _sld("terrain", [], symbolizer))


def _raster_grey(low: float, high: float) -> Style:
    root, renderer = _raster_pipe({"type": "singlebandgray", "grayBand": "1", "gradient": "BlackToWhite"})
    enhancement = ET.SubElement(renderer, "contrastEnhancement")
    ET.SubElement(enhancement, "minValue").text = f"{low}"
    ET.SubElement(enhancement, "maxValue").text = f"{high}"
    ET.SubElement(enhancement, "algorithm").text = "StretchToMinimumMaximum"
    se = SLD_NS["se"]
    symbolizer = ET.Element(f"{{{se}}}RasterSymbolizer")
    contrast = ET.SubElement(symbolizer, f"{{{se}}}ContrastEnhancement")
    ET.SubElement(contrast, f"{{{se}}}Normalize")
    return Style(_qml(root), _sld("greyscale", [], symbolizer))

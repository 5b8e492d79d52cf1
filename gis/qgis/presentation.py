"""A layer as a desktop GIS shows it: its stable name's metadata and style, independent of any backend.

The catalog builds a :class:`Presentation` for the version it makes current;
the backend writes it (GeoPackage: ``gpkg_contents``, ``gpkg_metadata`` and
``layer_styles``; PostGIS: comments and ``layer_styles``) in the same
transaction as the switch, so name, metadata and style never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

GDAL_METADATA_URI = "http://gdal.org"
QGIS_METADATA_URI = "http://mrcc.com/qgis.dtd"
DEFAULT_STYLE = "lutece: default style from the layer's kind and theme"


@dataclass(frozen=True)
class Style:
    """A layer's style: QML (what QGIS loads) and SLD (for other clients; None for a given QML)."""

    qml: str
    sld: str | None
    note: str = DEFAULT_STYLE

    @property
    def is_default(self) -> bool:
        return self.note == DEFAULT_STYLE


@dataclass(frozen=True)
class Presentation:
    """What QGIS shows of a layer's current version (``version`` None: withdrawn, the name disappears)."""

    layer_id: str
    kind: str
    title: str
    abstract: str
    keywords: tuple[str, ...]
    licence: str
    licence_title: str
    licence_uri: str | None
    attribution: str
    access: str
    version: int | None
    published: str | None
    crs: str | None
    extent: tuple[float, float, float, float] | None
    style: Style | None = None
    items: dict[str, str] = field(default_factory=dict)

    def metadata_items(self) -> dict[str, str]:
        """Key/values, as GDAL shows a layer's metadata (and as the PostGIS comment lists them)."""
        return {"TITLE": self.title, "ABSTRACT": self.abstract, "KEYWORDS": ", ".join(self.keywords),
                "LICENCE": f"{self.licence} ({self.licence_title})" + (f" {self.licence_uri}" if self.licence_uri
                                                                        else ""),
                "ATTRIBUTION": self.attribution, "ACCESS": self.access, "VERSION": str(self.version),
                "PUBLISHED": self.published or "", **self.items}

    def comment(self) -> str:
        """The PostGIS ``COMMENT`` of the layer's view: the title, the abstract, then the metadata items."""
        lines = [self.title, ""] + ([self.abstract, ""] if self.abstract else [])
        lines += [f"{key.lower()}: {value}" for key, value in self.metadata_items().items()
                  if key not in ("TITLE", "ABSTRACT") and value]
        return "\n".join(lines)

    def gdal_metadata(self) -> str:
        """GDAL's metadata document (``md_standard_uri`` http://gdal.org): ogrinfo and QGIS list its items."""
        root = ET.Element("GDALMultiDomainMetadata")
        items = ET.SubElement(root, "Metadata")
        for key, value in self.metadata_items().items():
            ET.SubElement(items, "MDI", key=key).text = value
        return ET.tostring(root, encoding="unicode")

    def qgis_metadata(self) -> str:
        """QGIS's layer metadata document (qgis.dtd), which its Information and Metadata tabs show."""
        root = ET.Element("qgis", version="3.28.0")
        for tag, text in (("identifier", self.layer_id), ("parentidentifier", ""), ("language", "fre"),
                          ("type", "dataset"), ("title", self.title), ("abstract", self.abstract)):
            ET.SubElement(root, tag).text = text
        keywords = ET.SubElement(root, "keywords", vocabulary="lutece")
        for word in self.keywords:
            ET.SubElement(keywords, "keyword").text = word
        ET.SubElement(root, "links")
        ET.SubElement(root, "fees")
        ET.SubElement(root, "constraints", type="access").text = self.access
        ET.SubElement(root, "rights").text = self.attribution
        ET.SubElement(root, "license").text = self.licence_title + (f" ({self.licence_uri})" if self.licence_uri
                                                                   else "")
        ET.SubElement(root, "encoding")
        if self.crs:
            ET.SubElement(ET.SubElement(root, "crs"), "spatialrefsys").text = self.crs
        history = f"version {self.version}, published {self.published}"
        ET.SubElement(root, "history").text = history
        return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + ET.tostring(root, encoding="unicode")

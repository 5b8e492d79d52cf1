"""The DCAT-AP 3.0 catalogue of the layers the public may see, as an rdflib graph (JSON-LD, Turtle).

Per dataset (a layer's current version): titles and descriptions (French, and
English where given), keywords, theme (the EU data theme, and the catalog's
own theme as a keyword), publisher (a ``foaf:Agent``), contact point,
``dct:license`` with the licence's canonical URI, ``dct:accessRights``
PUBLIC, ``dct:issued``/``dct:modified``, the spatial extent (``dcat:bbox``
and ``locn:geometry`` in CRS84), the update frequency, the provenance from
the public lineage (inputs and their licences, software), ``dcat:version``;
its distributions: the download files of :mod:`gis.feeds.downloads` (with
``dcat:downloadURL``, ``dcat:mediaType``, ``dcat:byteSize``,
``spdx:checksum`` sha256) and the OGC API collection, served by the
catalogue's ``dcat:DataService``.

Only public views of the records are read (:mod:`gis.catalog.public`): a
lineage's paths and ``user@host`` never reach the graph.

Example
-------
>>> graph = catalog_graph(catalog, downloads, "https://gis.city.fr", visible=is_public)  # doctest: +SKIP
>>> graph.serialize(format="json-ld")                                                   # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS, SKOS, XSD

from gis.catalog.licences import LICENCES
from gis.catalog.public import public_layer, public_version
from gis.feeds.downloads import FORMATS, Download, Downloads
from gis.records import Layer

LOCN = Namespace("http://www.w3.org/ns/locn#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
ADMS = Namespace("http://www.w3.org/ns/adms#")
EU = "http://publications.europa.eu/resource/authority/"
IANA = "https://www.iana.org/assignments/media-types/"
DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")  # DCAT 3, not in rdflib's DCAT namespace
OGC_FEATURES = URIRef("http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core")
CRS84 = "<http://www.opengis.net/def/crs/OGC/1.3/CRS84> "

# The catalog's themes -> the EU data themes (http://publications.europa.eu/resource/authority/data-theme).
THEMES = {"elevation": "ENVI", "buildings": "REGI", "vegetation": "ENVI", "transport": "TRAN", "streets": "TRAN",
          "environment": "ENVI", "energy": "ENER", "population": "SOCI", "education": "EDUC", "health": "HEAL"}
DEFAULT_THEME = "REGI"  # regions and cities
# update_frequency -> the EU frequencies (.../frequency).
FREQUENCIES = {"continuous": "CONT", "daily": "DAILY", "weekly": "WEEKLY", "monthly": "MONTHLY",
               "quarterly": "QUARTERLY", "annual": "ANNUAL", "yearly": "ANNUAL", "irregular": "IRREG",
               "never": "NEVER", "as-needed": "IRREG", "asneeded": "IRREG"}
FILE_TYPES = {"gpkg": "GPKG", "geojson": "GEOJSON", "cog": "TIFF", "3dtiles-zip": "ZIP", "cityjson": "JSON"}


@dataclass(frozen=True)
class Publisher:
    """Who publishes the catalogue, and whom to ask about it."""

    name: str = "Ville : service SIG"
    email: str = "sig@ville.example"
    url: str | None = None


def is_open_licence(layer: Layer) -> bool:
    licence = LICENCES.get(layer.licence)
    return licence is not None and licence.open


def dataset_uri(base_url: str, layer_id: str) -> URIRef:
    return URIRef(f"{base_url}/catalog/datasets/{layer_id}")


def download_url(base_url: str, download: Download) -> str:
    """Where a download file is served: versioned, so its content never changes under its URL."""
    return f"{base_url}/downloads/{download.layer_id}/{download.version}/{download.name}"


def catalog_graph(catalog, downloads: Downloads, base_url: str, visible: Callable[[Layer], bool],
                  publisher: Publisher = Publisher()) -> Graph:
    """The DCAT-AP graph of the layers ``visible`` lets the public see (and whose licence is open).

    Parameters
    ----------
    catalog
        The :class:`~gis.catalog.service.Catalog`.
    downloads
        The download files' cache (each distribution's size and checksum come from it).
    base_url
        The public URL of the server (no trailing slash).
    visible
        ``visible(layer) -> bool``: the public's visibility rule (the server's, for an anonymous caller).
    publisher
        The catalogue's publisher and contact.
    """
    base_url = base_url.rstrip("/")
    graph = _new_graph()
    root = URIRef(f"{base_url}/catalog")
    service = URIRef(f"{base_url}/")
    agent = _agent(graph, base_url, publisher)
    graph.add((root, RDF.type, DCAT.Catalog))
    graph.add((root, DCTERMS.title, Literal("Catalogue des données ouvertes du SIG de la ville", lang="fr")))
    graph.add((root, DCTERMS.title, Literal("Open data catalogue of the city GIS", lang="en")))
    graph.add((root, DCTERMS.description, Literal(
        "Les couches ouvertes du SIG de la ville : téléchargements par version et API OGC.", lang="fr")))
    graph.add((root, DCTERMS.publisher, agent))
    graph.add((root, DCAT.service, service))
    _data_service(graph, service, base_url, agent)
    layers = [layer for layer in catalog.layers() if visible(layer) and is_open_licence(layer)]
    versions = [catalog.backend.get_version(layer.id, layer.current_version) for layer in layers]
    downloads.prepare(versions)
    latest = None
    for layer, version in zip(layers, versions):
        dataset = _dataset(graph, base_url, layer, version, downloads.all(version), agent, publisher, service)
        graph.add((root, DCAT.dataset, dataset))
        graph.add((service, DCAT.servesDataset, dataset))
        latest = max(latest or layer.updated, layer.updated)
    if latest:
        graph.add((root, DCTERMS.modified, Literal(latest, datatype=XSD.dateTime)))
    return graph


def _new_graph() -> Graph:
    graph = Graph(bind_namespaces="core")  # only our prefixes in the context, not every one rdflib knows
    for prefix, namespace in (("dcat", DCAT), ("dct", DCTERMS), ("foaf", FOAF), ("locn", LOCN), ("gsp", GSP),
                              ("spdx", SPDX), ("vcard", VCARD), ("skos", SKOS), ("adms", ADMS), ("rdfs", RDFS)):
        graph.bind(prefix, namespace)
    return graph


def _agent(graph: Graph, base_url: str, publisher: Publisher) -> URIRef:
    agent = URIRef(f"{base_url}/catalog#publisher")
    graph.add((agent, RDF.type, FOAF.Agent))
    graph.add((agent, FOAF.name, Literal(publisher.name, lang="fr")))
    graph.add((agent, DCTERMS.type, _typed(graph, "http://purl.org/adms/publishertype/LocalAuthority",
                                           SKOS.Concept, "Local Authority")))
    return agent


def _contact(graph: Graph, publisher: Publisher) -> BNode:
    contact = BNode("contact")
    graph.add((contact, RDF.type, VCARD.Organization))
    graph.add((contact, RDF.type, VCARD.Kind))
    graph.add((contact, VCARD.fn, Literal(publisher.name)))
    graph.add((contact, VCARD.hasEmail, URIRef(f"mailto:{publisher.email}")))
    if publisher.url:
        graph.add((contact, VCARD.hasURL, URIRef(publisher.url)))
    return contact


def _data_service(graph: Graph, service: URIRef, base_url: str, agent: URIRef) -> None:
    graph.add((service, RDF.type, DCAT.DataService))
    graph.add((service, DCTERMS.title, Literal("API OGC du SIG de la ville", lang="fr")))
    graph.add((service, DCTERMS.title, Literal("OGC API of the city GIS", lang="en")))
    graph.add((service, DCAT.endpointURL, _typed(graph, f"{base_url}/", RDFS.Resource)))
    graph.add((service, DCAT.endpointDescription, _typed(graph, f"{base_url}/openapi", RDFS.Resource)))
    graph.add((service, DCTERMS.conformsTo, _typed(graph, str(OGC_FEATURES), DCTERMS.Standard)))
    graph.add((service, DCTERMS.publisher, agent))
    graph.add((service, DCTERMS.accessRights, _typed(graph, f"{EU}access-right/PUBLIC", DCTERMS.RightsStatement)))


def _dataset(graph: Graph, base_url: str, layer: Layer, version, files: list[Download], agent: URIRef,
             publisher: Publisher, service: URIRef) -> URIRef:
    public = public_layer(layer)
    release = public_version(version)
    dataset = dataset_uri(base_url, layer.id)
    add = graph.add
    add((dataset, RDF.type, DCAT.Dataset))
    add((dataset, DCTERMS.identifier, Literal(layer.id)))
    add((dataset, DCTERMS.title, Literal(public["title"], lang="fr")))
    if public["title_en"]:
        add((dataset, DCTERMS.title, Literal(public["title_en"], lang="en")))
    add((dataset, DCTERMS.description, Literal(public["description"] or public["title"], lang="fr")))
    if public["description_en"]:
        add((dataset, DCTERMS.description, Literal(public["description_en"], lang="en")))
    for keyword in [*public["keywords"], *([public["theme"]] if public["theme"] else [])]:
        add((dataset, DCAT.keyword, Literal(keyword, lang="fr")))
    theme = THEMES.get((public["theme"] or "").lower(), DEFAULT_THEME)
    add((dataset, DCAT.theme, _typed(graph, f"{EU}data-theme/{theme}", SKOS.Concept, theme)))
    add((dataset, DCTERMS.publisher, agent))
    add((dataset, DCAT.contactPoint, _contact(graph, publisher)))
    licence = _licence(graph, layer.licence)
    add((dataset, DCTERMS.license, licence))
    add((dataset, DCTERMS.accessRights, _typed(graph, f"{EU}access-right/PUBLIC", DCTERMS.RightsStatement)))
    if public["created"]:
        add((dataset, DCTERMS.issued, Literal(public["created"], datatype=XSD.dateTime)))
    if public["updated"]:
        add((dataset, DCTERMS.modified, Literal(public["updated"], datatype=XSD.dateTime)))
    frequency = FREQUENCIES.get((public["update_frequency"] or "").lower().replace(" ", "-"), "UNKNOWN")
    add((dataset, DCTERMS.accrualPeriodicity, _typed(graph, f"{EU}frequency/{frequency}", DCTERMS.Frequency)))
    add((dataset, DCAT_VERSION, Literal(str(release["number"]))))
    add((dataset, DCAT.landingPage, _typed(graph, f"{base_url}/collections/{layer.id}", FOAF.Document)))
    extent = crs84_extent(layer)
    if extent is not None:
        add((dataset, DCTERMS.spatial, _location(graph, layer.id, extent)))
    add((dataset, DCTERMS.provenance, _provenance(graph, layer.id, release["lineage"])))
    for download in files:
        add((dataset, DCAT.distribution, _file_distribution(graph, base_url, download, licence)))
    add((dataset, DCAT.distribution, _api_distribution(graph, base_url, layer, licence, service)))
    return dataset


def _file_distribution(graph: Graph, base_url: str, download: Download, licence: URIRef) -> URIRef:
    url = _typed(graph, download_url(base_url, download), RDFS.Resource)
    distribution = URIRef(f"{url}#distribution")
    add = graph.add
    add((distribution, RDF.type, DCAT.Distribution))
    add((distribution, DCTERMS.title, Literal(f"{download.name} : {FORMATS[download.format][2]}", lang="fr")))
    add((distribution, DCAT.accessURL, url))
    add((distribution, DCAT.downloadURL, url))
    add((distribution, DCAT.mediaType, _typed(graph, IANA + download.media_type, DCTERMS.MediaType)))
    add((distribution, DCTERMS.format, _typed(graph, f"{EU}file-type/{FILE_TYPES[download.format]}",
                                              DCTERMS.MediaTypeOrExtent)))
    add((distribution, DCAT.byteSize, Literal(download.size, datatype=XSD.nonNegativeInteger)))
    checksum = BNode(f"checksum-{download.layer_id}-{download.format}")
    add((checksum, RDF.type, SPDX.Checksum))
    add((checksum, SPDX.algorithm, _typed(graph, str(SPDX.checksumAlgorithm_sha256), SPDX.ChecksumAlgorithm)))
    add((checksum, SPDX.checksumValue, Literal(download.sha256, datatype=XSD.hexBinary)))
    add((distribution, SPDX.checksum, checksum))
    add((distribution, DCTERMS.license, licence))
    return distribution


def _api_distribution(graph: Graph, base_url: str, layer: Layer, licence: URIRef, service: URIRef) -> URIRef:
    url = _typed(graph, f"{base_url}/collections/{layer.id}", RDFS.Resource)
    distribution = URIRef(f"{url}#distribution")
    graph.add((distribution, RDF.type, DCAT.Distribution))
    graph.add((distribution, DCTERMS.title, Literal("API OGC (collection)", lang="fr")))
    graph.add((distribution, DCAT.accessURL, url))
    graph.add((distribution, DCAT.accessService, service))
    graph.add((distribution, DCAT.mediaType, _typed(graph, IANA + "application/json", DCTERMS.MediaType)))
    graph.add((distribution, DCTERMS.license, licence))
    return distribution


def _licence(graph: Graph, licence_id: str) -> URIRef:
    licence = LICENCES[licence_id]
    uri = _typed(graph, licence.uri, DCTERMS.LicenseDocument)
    graph.add((uri, RDFS.label, Literal(licence.title)))
    graph.add((uri, DCTERMS.identifier, Literal(licence.id)))
    return uri


def _location(graph: Graph, layer_id: str, extent: tuple[float, float, float, float]) -> BNode:
    west, south, east, north = extent
    wkt = (f"{CRS84}POLYGON(({west} {south}, {east} {south}, {east} {north}, {west} {north}, {west} {south}))")
    location = BNode(f"location-{layer_id}")
    graph.add((location, RDF.type, DCTERMS.Location))
    graph.add((location, DCAT.bbox, Literal(wkt, datatype=GSP.wktLiteral)))
    geometry = BNode(f"geometry-{layer_id}")
    graph.add((geometry, RDF.type, LOCN.Geometry))
    graph.add((geometry, GSP.asWKT, Literal(wkt, datatype=GSP.wktLiteral)))
    graph.add((location, LOCN.geometry, geometry))
    return location


def _provenance(graph: Graph, layer_id: str, lineage: dict[str, Any]) -> BNode:
    statement = BNode(f"provenance-{layer_id}")
    graph.add((statement, RDF.type, DCTERMS.ProvenanceStatement))
    graph.add((statement, RDFS.label, Literal(provenance_text(lineage), lang="fr")))
    return statement


def provenance_text(lineage: dict[str, Any]) -> str:
    """A short account of a public lineage: the pipeline, its inputs with their licences, the software."""
    parts = []
    if lineage.get("pipeline"):
        parts.append(f"Chaîne de traitement : {lineage['pipeline']}.")
    inputs = []
    for item in lineage.get("inputs") or []:
        name = item.get("file") or item.get("layer")
        if not name:
            continue
        details = [f"licence {item['licence']}" if item.get("licence") else None,
                   f"sha256 {item['sha256']}" if item.get("sha256") else None]
        details = [detail for detail in details if detail]
        inputs.append(f"{name} ({', '.join(details)})" if details else str(name))
    if inputs:
        parts.append("Données sources : " + " ; ".join(inputs) + ".")
    if isinstance(lineage.get("software"), dict) and lineage["software"]:
        parts.append("Logiciels : " + ", ".join(f"{name} {version}" for name, version
                                                  in sorted(lineage["software"].items())) + ".")
    if lineage.get("created"):
        parts.append(f"Produit le {lineage['created']}.")
    return " ".join(parts) or "Publié dans le SIG de la ville (pas de lignée détaillée)."


def crs84_extent(layer: Layer) -> tuple[float, float, float, float] | None:
    """The layer's extent in CRS84 (longitude, latitude), or None."""
    if layer.extent is None or not layer.crs:
        return None
    try:
        bounds = _to_crs84(layer.crs).transform_bounds(*layer.extent, densify_pts=21)
    except Exception:  # a CRS pyproj cannot place on the globe
        return None
    return tuple(round(v, 7) for v in bounds) if all(math.isfinite(v) for v in bounds) else None


@lru_cache(maxsize=16)
def _to_crs84(crs: str):
    """A transformer to CRS84, made once per CRS (making one costs tens of milliseconds)."""
    from pyproj import Transformer

    return Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)


def _typed(graph: Graph, uri: str, kind: URIRef, label: str | None = None) -> URIRef:
    node = URIRef(uri)
    graph.add((node, RDF.type, kind))
    if label is not None:
        graph.add((node, SKOS.prefLabel, Literal(label)))
    return node


def serialize(graph: Graph, fmt: str) -> bytes:
    """The graph as ``jsonld`` or ``turtle``, UTF-8."""
    if fmt == "jsonld":
        return graph.serialize(format="json-ld", auto_compact=True, indent=1).encode("utf-8")
    return graph.serialize(format="turtle").encode("utf-8")

"""The datasets of a DCAT-AP catalogue, as the mirror needs them (read with rdflib)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS

from gis.errors import SyncError
from gis.feeds.jsonld import NodeDocuments, dumps

SPDX = Namespace("http://spdx.org/rdf/terms#")
DCAT_VERSION = URIRef("http://www.w3.org/ns/dcat#version")
ODBL = "https://opendatacommons.org/licenses/odbl/1-0/"


@dataclass(frozen=True)
class FileSpec:
    """One download of a dataset: where, what, how big, its sha256."""

    name: str
    url: str
    media_type: str
    size: int
    sha256: str


@dataclass
class Dataset:
    """One dataset of the catalogue."""

    id: str
    title: str
    title_en: str | None
    description: str
    licence_uri: str
    licence_title: str
    licence_id: str
    publisher: str
    version: str
    modified: str | None
    landing_page: str | None
    files: list[FileSpec] = field(default_factory=list)
    metadata: bytes | None = None  # its own DCAT description (JSON-LD); None: keep the mirror's

    @property
    def share_alike(self) -> bool:
        return self.licence_uri == ODBL


def parse_catalog(body: bytes, base: str) -> dict[str, Dataset]:
    """The datasets of a JSON-LD catalogue (or of one dataset's document) by id.

    Raises
    ------
    SyncError
        The document is not a readable DCAT catalogue.
    """
    try:
        graph = Graph().parse(data=body, format="json-ld", publicID=base)
        documents = NodeDocuments(body)
    except Exception as error:  # rdflib raises many kinds on a bad document
        raise SyncError(f"the catalogue at {base} is not readable JSON-LD ({type(error).__name__}); "
                        f"the mirror is unchanged") from None
    datasets = {}
    for node in graph.subjects(RDF.type, DCAT.Dataset):
        dataset = _dataset(graph, node)
        dataset.metadata = dumps(documents.document(str(node)))
        datasets[dataset.id] = dataset
    return datasets


def parse_described(documents: dict[str, dict | None], base: str) -> dict[str, Dataset | None]:
    """The datasets the change feed describes (layer id -> its DCAT document; None: no longer public).

    Raises
    ------
    SyncError
        A document is unreadable, or describes another dataset than its key says.
    """
    described: dict[str, Dataset | None] = {}
    for layer_id, document in documents.items():
        if document is None:
            described[layer_id] = None
            continue
        found = parse_catalog(dumps(document), base)
        if set(found) != {layer_id}:
            raise SyncError(f"the change feed describes {layer_id!r} with a document of {sorted(found)}; "
                            f"the mirror is unchanged")
        described[layer_id] = found[layer_id]
    return described


def from_index(entry: dict) -> Dataset:
    """A dataset as the mirror's own ``index.json`` lists it (its metadata files are kept as they are)."""
    return Dataset(
        id=entry["id"], title=entry["title"], title_en=entry.get("title_en"),
        description=entry.get("description") or "", licence_uri=entry["licence_uri"],
        licence_title=entry.get("licence_title") or entry.get("licence") or "", licence_id=entry.get("licence") or "",
        publisher=entry.get("publisher") or "", version=entry.get("version") or "", modified=entry.get("modified"),
        landing_page=entry.get("landing_page"),
        files=[FileSpec(f["name"], f.get("url") or "", f.get("media_type") or "", f["size"], f["sha256"])
               for f in entry["files"]])


def _text(graph: Graph, node, predicate, lang: str | None = "fr") -> str | None:
    values = list(graph.objects(node, predicate))
    for value in values:
        if getattr(value, "language", None) == lang:
            return str(value)
    return str(values[0]) if values and lang == "fr" else None


def _dataset(graph: Graph, node) -> Dataset:
    identifier = str(graph.value(node, DCTERMS.identifier) or "")
    if not _is_slug(identifier):  # it names a folder of the mirror
        raise SyncError(f"the catalogue has a dataset with an unusable identifier {identifier!r}; the mirror is "
                        f"unchanged")
    licence = graph.value(node, DCTERMS.license)
    publisher = graph.value(node, DCTERMS.publisher)
    files = []
    for distribution in graph.objects(node, DCAT.distribution):
        url = graph.value(distribution, DCAT.downloadURL)
        if url is None:
            continue
        checksum = graph.value(graph.value(distribution, SPDX.checksum), SPDX.checksumValue)
        size = graph.value(distribution, DCAT.byteSize)
        media = graph.value(distribution, DCAT.mediaType)
        name = str(url).rsplit("/", 1)[-1]
        if checksum is None or size is None or not name or name.startswith("."):
            raise SyncError(f"dataset {identifier}: the distribution {url} has no checksum or size; the mirror "
                            f"is unchanged")
        files.append(FileSpec(name, str(url), str(media).rsplit("media-types/", 1)[-1] if media else "",
                              int(size), str(checksum).lower()))
    return Dataset(
        id=identifier, title=_text(graph, node, DCTERMS.title) or identifier,
        title_en=_text(graph, node, DCTERMS.title, "en"), description=_text(graph, node, DCTERMS.description) or "",
        licence_uri=str(licence or ""), licence_title=str(graph.value(licence, RDFS.label) or licence or ""),
        licence_id=str(graph.value(licence, DCTERMS.identifier) or ""),
        publisher=str(graph.value(publisher, FOAF.name) or ""), version=str(graph.value(node, DCAT_VERSION) or ""),
        modified=str(graph.value(node, DCTERMS.modified) or "") or None,
        landing_page=str(graph.value(node, DCAT.landingPage) or "") or None, files=sorted(files, key=lambda f: f.name))


def _is_slug(value: str) -> bool:
    from gis.errors import InputError
    from gis.records import check_layer_id

    try:
        check_layer_id(value)
    except InputError:
        return False
    return True

"""The datasets of a DCAT-AP catalogue, as the mirror needs them (read with rdflib)."""

from __future__ import annotations

from dataclasses import dataclass, field

from rdflib import Graph, Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF, RDFS

from gis.errors import SyncError

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
    metadata: bytes = b""  # the dataset's own DCAT description (JSON-LD)

    @property
    def share_alike(self) -> bool:
        return self.licence_uri == ODBL


def parse_catalog(body: bytes, base: str) -> dict[str, Dataset]:
    """The datasets of a JSON-LD catalogue by id.

    Raises
    ------
    SyncError
        The document is not a readable DCAT catalogue.
    """
    try:
        graph = Graph().parse(data=body, format="json-ld", publicID=base)
    except Exception as error:  # rdflib raises many kinds on a bad document
        raise SyncError(f"the catalogue at {base} is not readable JSON-LD ({type(error).__name__}); "
                        f"the mirror is unchanged") from None
    documents = _node_documents(body)
    datasets = {}
    for node in graph.subjects(RDF.type, DCAT.Dataset):
        dataset = _dataset(graph, node)
        dataset.metadata = documents(str(node))
        datasets[dataset.id] = dataset
    return datasets


def _node_documents(body: bytes):
    """``document(node_id)``: the JSON-LD of one node and of the nodes it refers to, cut from the catalogue.

    Cutting the parsed JSON is far cheaper than serialising each dataset's
    part of the graph with rdflib (half a second for fifty datasets).
    """
    import json

    document = json.loads(body)
    context = document.get("@context", {}) if isinstance(document, dict) else {}
    nodes = document.get("@graph", [document]) if isinstance(document, dict) else document
    by_id = {node.get("@id"): node for node in nodes if isinstance(node, dict)}
    # the catalogue and its service list every dataset: a dataset's document stops at them
    stops = {node_id for node_id, node in by_id.items()
             if {"dcat:Catalog", "dcat:DataService", str(DCAT.Catalog), str(DCAT.DataService)}
             & set(node.get("@type", []) if isinstance(node.get("@type"), list) else [node.get("@type")])}

    def references(value, found: list) -> None:
        if isinstance(value, dict):
            if set(value) == {"@id"} or ("@id" in value and len(value) == 1):
                found.append(value["@id"])
            for item in value.values():
                references(item, found)
        elif isinstance(value, list):
            for item in value:
                references(item, found)

    def cut(node_id: str) -> bytes:
        chosen, pending = [], [node_id]
        seen = set()
        while pending:
            current = pending.pop()
            if current in seen or current not in by_id or (current in stops and current != node_id):
                continue
            seen.add(current)
            chosen.append(by_id[current])
            found: list = []
            references({k: v for k, v in by_id[current].items() if k != "@id"}, found)
            pending += [item for item in found if item == node_id or not _is_dataset(by_id.get(item))]
        return json.dumps({"@context": context, "@graph": chosen}, ensure_ascii=False, indent=1).encode("utf-8")

    return cut


def _is_dataset(node) -> bool:
    kinds = node.get("@type", []) if isinstance(node, dict) else []
    kinds = kinds if isinstance(kinds, list) else [kinds]
    return "dcat:Dataset" in kinds or str(DCAT.Dataset) in kinds


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

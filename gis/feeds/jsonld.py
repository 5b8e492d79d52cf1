"""One dataset's part of a DCAT catalogue in JSON-LD, cut from the catalogue's JSON (no rdflib).

The server embeds these documents in its change feed (a portal's mirror then
needs no second request to learn what changed), and the mirror keeps each
as its dataset's ``dcat.jsonld``. Cutting the parsed JSON is far cheaper
than serialising each dataset's part of the graph with rdflib (half a
second for fifty datasets).

Example
-------
>>> documents = NodeDocuments(catalogue_jsonld_bytes)                       # doctest: +SKIP
>>> documents.document("https://gis.city.fr/catalog/datasets/buildings")    # doctest: +SKIP
{'@context': {...}, '@graph': [{'@id': '.../buildings', '@type': 'dcat:Dataset', ...}, ...]}
"""

from __future__ import annotations

import json
from typing import Any

DCAT = "http://www.w3.org/ns/dcat#"
# the catalogue and its service list every dataset: a dataset's document stops at them
_STOPS = {"dcat:Catalog", "dcat:DataService", f"{DCAT}Catalog", f"{DCAT}DataService"}
_DATASET = {"dcat:Dataset", f"{DCAT}Dataset"}


class NodeDocuments:
    """The nodes of a compacted JSON-LD document, and the document of one node with what it refers to."""

    def __init__(self, body: bytes | str) -> None:
        document = json.loads(body)
        self.context = document.get("@context", {}) if isinstance(document, dict) else {}
        nodes = document.get("@graph", [document]) if isinstance(document, dict) else document
        self.by_id = {node.get("@id"): node for node in nodes if isinstance(node, dict)}
        self.stops = {node_id for node_id, node in self.by_id.items() if _types(node) & _STOPS}

    def datasets(self) -> list[str]:
        """The ids of the dataset nodes."""
        return [node_id for node_id, node in self.by_id.items() if _types(node) & _DATASET]

    def document(self, node_id: str) -> dict[str, Any]:
        """The node and every node it refers to, except the catalogue, its service and other datasets."""
        chosen, pending, seen = [], [node_id], set()
        while pending:
            current = pending.pop()
            if current in seen or current not in self.by_id or (current in self.stops and current != node_id):
                continue
            seen.add(current)
            chosen.append(self.by_id[current])
            found: list = []
            _references({k: v for k, v in self.by_id[current].items() if k != "@id"}, found)
            pending += [item for item in found if item == node_id or not _types(self.by_id.get(item)) & _DATASET]
        return {"@context": self.context, "@graph": chosen}


def _types(node) -> set[str]:
    kinds = node.get("@type", []) if isinstance(node, dict) else []
    return set(kinds if isinstance(kinds, list) else [kinds])


def _references(value, found: list) -> None:
    if isinstance(value, dict):
        if "@id" in value and len(value) == 1:
            found.append(value["@id"])
        for item in value.values():
            _references(item, found)
    elif isinstance(value, list):
        for item in value:
            _references(item, found)


def dumps(document: dict[str, Any]) -> bytes:
    """A document as the mirror stores it (UTF-8, indented)."""
    return json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8")

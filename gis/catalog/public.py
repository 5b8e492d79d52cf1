"""The public view of the catalog's records: what may be served, exported or mirrored.

The catalog keeps the full record of every version (the absolute paths of the
inputs and of the product, the publisher's ``user@host``): the operator needs
them. Once a record leaves the city's machines (OGC API Records, DCAT
provenance, the change feed, the open-data mirror, a product's embedded
lineage) that is personal data and internal layout. Every output meant for
the public goes through these three functions, and nothing else decides what
is public:

- :func:`public_lineage`: file names (never a folder), sha256, the chain of
  stages with their options (paths in them reduced to file names), software
  versions, time. Built from a list of allowed keys, so a key this module
  does not know is left out rather than passed on.
- :func:`public_version`: number, sha256, time, features, extent, CRS, note
  and the public lineage; never the publisher or the storage.
- :func:`public_layer`: the layer's catalogue metadata; never the internal
  revision counters.

Example
-------
>>> public_lineage({"inputs": [{"path": "/home/alice/tiles/0651_6861.laz", "sha256": "ab12"}],
...                 "publisher": "alice@gis-07"})
{'inputs': [{'file': '0651_6861.laz', 'sha256': 'ab12'}]}
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from gis.catalog.licences import LICENCES
from gis.records import Layer, Version

WITHHELD = "(withheld)"

# Keys whose value names a person or a machine: never public, at any depth.
_PERSONAL_KEYS = {"publisher", "user", "username", "user_name", "login", "owner", "author", "email", "host",
                  "hostname", "host_name", "machine", "node", "uid", "gid", "home", "cwd", "pid"}
# Keys whose value is a path: reduced to its file name.
_PATH_KEYS = {"path", "filename", "file", "product", "pipeline_file", "source", "output", "folder", "directory"}
# user@host, an e-mail address, the user:password@ part of a URL.
_USER_AT_HOST = re.compile(r"[\w.+-]+(?::[^\s@/\\]*)?@[\w-]+(?:\.[\w-]+)*")
# An absolute or home-relative path of two parts or more inside free text (a note): /srv/city,
# ~/x/y, C:\x\y, \\server\share\x; not a URL, "and/or", "1/2", "</b>" or "[/]".
_PATH_IN_TEXT = re.compile(r"(?<![\w:/.])(?:~[\w.-]*|[A-Za-z]:|\\\\[\w.-]+)?(?:[/\\][^\s/\\<>\[\]]+){2,}[/\\]?")

_INPUT_KEYS = ("layer", "version", "licence", "sha256", "points", "crs", "heights", "title")
_STAGE_KEYS = ("type", "tag", "inputs", "options")


def public_lineage(lineage: dict[str, Any] | None) -> dict[str, Any]:
    """The public view of a product's lineage.

    Parameters
    ----------
    lineage
        A version's full lineage: the pipeline's (``pipeline``, ``inputs``,
        ``stages``, ``software``, ``created``...) plus the catalog's
        ``publication`` entry, or whatever a caller of ``Catalog.publish`` gave.

    Returns
    -------
    dict
        ``pipeline`` (name), ``pipeline_file`` (file name), ``job_key``,
        ``crs``, ``inputs`` (each: ``file`` name, ``sha256``, ``points``, ``crs`` and ``heights`` (unit), or
        ``layer``, ``version``, ``licence``), ``stages`` (``type``, ``tag``,
        ``inputs``, ``options``), ``software``, ``created``, ``publication``
        (the product's file name, its source layer, the gates' counts): those
        present in ``lineage``. No folder, no user or host name at any depth;
        keys not listed here are left out.
    """
    if not isinstance(lineage, dict):
        return {}
    public: dict[str, Any] = {}
    for key in ("pipeline", "job_key", "crs", "created", "time"):
        if key in lineage:
            public[key] = _public_value(lineage[key])
    if "pipeline_file" in lineage:
        public["pipeline_file"] = file_name(lineage["pipeline_file"])
    if isinstance(lineage.get("inputs"), list):
        public["inputs"] = [_public_input(item) for item in lineage["inputs"]]
    if isinstance(lineage.get("stages"), list):
        public["stages"] = [_public_stage(stage) for stage in lineage["stages"] if isinstance(stage, dict)]
    if isinstance(lineage.get("software"), dict):
        public["software"] = _public_value(lineage["software"])
    if isinstance(lineage.get("publication"), dict):
        public["publication"] = _public_publication(lineage["publication"])
    return public


def public_version(version: Version) -> dict[str, Any]:
    """The public view of a version: never its publisher, its storage or its full lineage.

    Returns
    -------
    dict
        ``layer``, ``number``, ``kind``, ``sha256``, ``published`` (UTC time),
        ``crs``, ``extent``, ``features``, ``note`` (user and host names and
        folders in it withheld) and ``lineage`` (:func:`public_lineage`).
    """
    return {
        "layer": version.layer_id, "number": version.number, "kind": version.kind, "sha256": version.checksum,
        "published": version.published, "crs": version.crs,
        "extent": list(version.extent) if version.extent is not None else None, "features": version.features,
        "note": public_text(version.note), "lineage": public_lineage(version.lineage),
    }


def public_layer(layer: Layer) -> dict[str, Any]:
    """The public view of a layer: its catalogue metadata, licence (with its URI) and current version.

    ``access`` is included: callers decide who may see a layer at all (a
    shared or internal layer is not public); this only says what of it is shown.
    """
    licence = LICENCES.get(layer.licence)
    return {
        "id": layer.id, "title": layer.title, "title_en": layer.title_en, "description": layer.description,
        "description_en": layer.description_en, "keywords": list(layer.keywords), "theme": layer.theme,
        "producer": layer.producer, "kind": layer.kind, "crs": layer.crs,
        "extent": list(layer.extent) if layer.extent is not None else None,
        "update_frequency": layer.update_frequency, "licence": layer.licence,
        "licence_uri": licence.uri if licence is not None else None, "access": layer.access,
        "current_version": layer.current_version, "created": layer.created, "updated": layer.updated,
    }


def file_name(value: Any) -> Any:
    """The last component of a path (``/srv/city/a.laz`` or ``C:\\data\\a.laz`` -> ``a.laz``), user@host withheld.

    Non-strings are returned as they are; lists are reduced item by item.
    """
    if isinstance(value, (list, tuple)):
        return [file_name(item) for item in value]
    if not isinstance(value, str):
        return value
    if "://" in value:  # a URL: the file it names, never its host (nor a user in it)
        value = urlsplit(value).path or WITHHELD
    parts = [part for part in re.split(r"[/\\]", value) if part]
    name = parts[-1] if parts else ""
    return _USER_AT_HOST.sub(WITHHELD, name)


def public_text(text: Any) -> Any:
    """Free text (a note) with user@host withheld and every path reduced to its file name."""
    if not isinstance(text, str):
        return text
    text = _USER_AT_HOST.sub(WITHHELD, text)
    return _PATH_IN_TEXT.sub(lambda match: file_name(match.group()), text)


def _public_input(item: Any) -> dict[str, Any]:
    if not isinstance(item, dict):
        return {"file": file_name(item)} if isinstance(item, str) else {}
    public = {}
    for key in ("path", "filename", "file", "name"):
        if key in item:
            public["file"] = file_name(item[key])
            break
    for key in _INPUT_KEYS:
        if key in item:
            public[key] = _public_value(item[key])
    return public


def _public_stage(stage: dict[str, Any]) -> dict[str, Any]:
    return {key: _public_value(stage[key]) for key in _STAGE_KEYS if key in stage}


def _public_publication(publication: dict[str, Any]) -> dict[str, Any]:
    public = {}
    if "product" in publication:
        public["product"] = file_name(publication["product"])
    for key in ("source_layer", "gates"):
        if key in publication:
            public[key] = _public_value(publication[key])
    return public


def _public_value(value: Any, key: str | None = None) -> Any:
    """Any nested value: personal keys left out, paths reduced to file names, user@host withheld."""
    if isinstance(value, dict):
        return {_public_value(name): _public_value(item, str(name).lower()) for name, item in value.items()
                if str(name).lower() not in _PERSONAL_KEYS}
    if isinstance(value, (list, tuple)):
        return [_public_value(item, key) for item in value]
    if isinstance(value, str):
        if key in _PATH_KEYS or "/" in value or "\\" in value:
            return file_name(value)
        return _USER_AT_HOST.sub(WITHHELD, value)
    return value

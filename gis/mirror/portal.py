"""What a portal publishes from the mirror: licence notices, the index as JSON and as a static HTML page."""

from __future__ import annotations

import html
from typing import Any

from gis.mirror.dcat import Dataset

SHARE_ALIKE = (
    "Partage à l'identique (ODbL 1.0) : si vous diffusez publiquement une base de données dérivée de celle-ci, "
    "vous devez la diffuser sous la même licence, ODbL 1.0, et citer la source.\n"
    "Share-alike (ODbL 1.0): if you publicly use or distribute a database adapted from this one, you must offer "
    "it under the ODbL 1.0 as well, and attribute the source.\n")


def notice(dataset: Dataset, source: str) -> str:
    """The licence and attribution notice of a dataset (``LICENCE.txt``)."""
    lines = [
        f"Jeu de données / Dataset : {dataset.title}" + (f" ({dataset.title_en})" if dataset.title_en else ""),
        f"Producteur / Publisher : {dataset.publisher}",
        f"Version : {dataset.version}" + (f", modifiée le / modified {dataset.modified}" if dataset.modified else ""),
        f"Licence : {dataset.licence_title} ({dataset.licence_id}) {dataset.licence_uri}",
        f"Source : {dataset.landing_page or source}",
        "",
        f"Attribution : « {dataset.title} », {dataset.publisher}, version {dataset.version}, "
        f"{dataset.landing_page or source}, {dataset.licence_id or dataset.licence_title}.",
        "",
    ]
    text = "\n".join(lines)
    if dataset.share_alike:
        text += SHARE_ALIKE
    return text


def index_document(source: str, updated: str, datasets: dict[str, Dataset], archived: dict[str, Any],
                   grace_days: int) -> dict[str, Any]:
    """The index of the mirror: the current datasets, then the archived ones (never listed as current)."""
    return {
        "source": source, "updated": updated,
        "datasets": [{
            "id": d.id, "title": d.title, "title_en": d.title_en, "description": d.description,
            "licence": d.licence_id, "licence_uri": d.licence_uri, "licence_title": d.licence_title,
            "share_alike": d.share_alike, "publisher": d.publisher, "version": d.version, "modified": d.modified,
            "landing_page": d.landing_page, "folder": f"datasets/{d.id}",
            "metadata": f"datasets/{d.id}/dcat.jsonld", "notice": f"datasets/{d.id}/LICENCE.txt",
            "files": [{"name": f.name, "path": f"datasets/{d.id}/{f.name}", "url": f.url, "media_type": f.media_type,
                       "size": f.size, "sha256": f.sha256} for f in d.files],
        } for d in sorted(datasets.values(), key=lambda d: d.id)],
        "archived": [{"id": layer_id, "title": entry.get("title"), "version": entry.get("version"),
                      "archived": entry["since"], "folder": f"archive/{layer_id}", "kept_days": grace_days}
                     for layer_id, entry in sorted(archived.items())],
    }


def index_html(index: dict[str, Any]) -> str:
    """A static page listing the datasets (every text escaped: titles come from the publisher)."""
    e = html.escape
    rows = []
    for d in index["datasets"]:
        files = " ".join(f'<a href="{e(f["path"])}">{e(f["name"])}</a> ({_size(f["size"])})' for f in d["files"])
        rows.append(f'<tr><td><a href="{e(d["folder"])}/">{e(d["title"])}</a><br><small>{e(d["id"])}</small></td>'
                    f'<td>{e(d["description"] or "")}</td><td>{e(d["version"] or "")}</td>'
                    f'<td><a href="{e(d["licence_uri"])}">{e(d["licence"] or d["licence_uri"])}</a>'
                    f'{" (partage à l&#x27;identique)" if d["share_alike"] else ""}</td>'
                    f'<td>{files} <a href="{e(d["metadata"])}">DCAT</a> <a href="{e(d["notice"])}">licence</a></td></tr>')
    archived = "".join(f'<li>{e(a["title"] or a["id"])} ({e(a["id"])}), archivé le {e(a["archived"])}</li>'
                       for a in index["archived"])
    return ("<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\"><title>Données ouvertes</title>"
            "<style>body{font-family:sans-serif;margin:2em}td,th{border-bottom:1px solid #ccc;padding:.4em;"
            "vertical-align:top;text-align:left}</style></head><body>"
            f"<h1>Données ouvertes</h1><p>Miroir de <a href=\"{e(index['source'])}\">{e(index['source'])}</a>, "
            f"mis à jour le {e(index['updated'])}. <a href=\"index.json\">index.json</a></p>"
            "<table><tr><th>Jeu de données</th><th>Description</th><th>Version</th><th>Licence</th>"
            f"<th>Fichiers</th></tr>{''.join(rows)}</table>"
            + (f"<h2>Archivés (retirés, plus à jour)</h2><ul>{archived}</ul>" if archived else "")
            + "</body></html>\n")


def _size(size: int) -> str:
    for unit in ("o", "Ko", "Mo", "Go"):
        if size < 1024 or unit == "Go":
            return f"{size:.0f} {unit}" if unit == "o" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)

"""Licences, access levels and the rules that tie them to each other and to lineage.

Rules
-----
- ``open`` layers (anyone, mirrored to the open-data portal) must carry an open
  licence: ODbL-1.0, Licence Ouverte 2.0 (``etalab-2.0``) or CC-BY-4.0.
- ``restricted`` is for what is not open; it fits ``shared`` and ``internal``.
- Share-alike: a layer derived from an ODbL input must itself be ODbL-1.0
  whenever it leaves the city's own services (``open`` or ``shared``); only an
  ``internal`` layer may keep another licence, as ODbL 4.4 allows for use that
  is not public. The error names the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from gis.errors import LicenceError

ACCESS_LEVELS = ("open", "shared", "internal")


@dataclass(frozen=True)
class Licence:
    """A licence the catalog knows, with its canonical URI."""

    id: str
    title: str
    uri: str | None
    open: bool
    share_alike: bool = False


LICENCES: dict[str, Licence] = {
    licence.id: licence
    for licence in (
        Licence("ODbL-1.0", "Open Data Commons Open Database License 1.0",
                "https://opendatacommons.org/licenses/odbl/1-0/", open=True, share_alike=True),
        Licence("etalab-2.0", "Licence Ouverte / Open Licence 2.0",
                "https://www.etalab.gouv.fr/licence-ouverte-open-licence/", open=True),
        Licence("CC-BY-4.0", "Creative Commons Attribution 4.0 International",
                "https://creativecommons.org/licenses/by/4.0/", open=True),
        Licence("restricted", "Restricted: not open, use under agreement with the city", None, open=False),
    )
}


def get_licence(licence_id: str) -> Licence:
    """The licence of that id.

    Raises
    ------
    LicenceError
        When the licence does not exist.
    """
    try:
        return LICENCES[licence_id]
    except KeyError:
        known = ", ".join(LICENCES)
        raise LicenceError(f"unknown licence {licence_id!r}; use one of {known}") from None


def check_access(access: str) -> str:
    """Return ``access`` when it is a known access level, else raise :class:`LicenceError`."""
    if access not in ACCESS_LEVELS:
        raise LicenceError(f"unknown access level {access!r}; use one of {', '.join(ACCESS_LEVELS)}")
    return access


def check_licence_rules(layer_id: str, licence_id: str, access: str, inputs: Iterable[dict[str, Any]] = ()) -> None:
    """Check a layer's licence against its access level and its inputs' licences.

    Parameters
    ----------
    layer_id
        The layer, for the messages.
    licence_id, access
        The licence and access level the layer would carry.
    inputs
        The lineage's inputs, each a mapping with ``layer`` or ``path`` and,
        when known, ``licence``; inputs of unknown licence are not checked.

    Raises
    ------
    LicenceError
        Unknown licence or access level, an open layer with a licence that is
        not open, or an ODbL input under another licence.

    Examples
    --------
    >>> check_licence_rules("footprints", "ODbL-1.0", "open", [{"path": "cadastre.gpkg", "licence": "ODbL-1.0"}])
    """
    licence = get_licence(licence_id)
    check_access(access)
    if access == "open" and not licence.open:
        raise LicenceError(
            f"layer {layer_id}: an open layer needs an open licence, not {licence.id}; "
            f"use ODbL-1.0, etalab-2.0 or CC-BY-4.0, or publish it as shared or internal")
    if access == "internal":
        return
    for item in inputs:
        if item.get("licence") is None:
            continue
        source = get_licence(str(item["licence"]))
        if source.share_alike and licence.id != source.id:
            name = item.get("layer") or item.get("path") or "an input"
            raise LicenceError(
                f"layer {layer_id}: derived from {name}, licensed {source.id} (share-alike), "
                f"it must be published under {source.id}, not {licence.id}")

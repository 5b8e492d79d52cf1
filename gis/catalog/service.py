"""The catalog's operations, once for every backend: publish, rollback, withdraw, reclassify, read.

:class:`Catalog` applies the rules (licences, gates, retention) and leaves
storage and atomicity to a :class:`~gis.backends.base.Backend`.

Example
-------
>>> catalog = Catalog.from_config(load_config(None))                        # doctest: +SKIP
>>> catalog.publish("products/layers.gpkg", "footprints", source_layer="footprints",
...                 title="Emprises des bâtiments", licence="ODbL-1.0", access="open")  # doctest: +SKIP
>>> catalog.publish(frame, "trees", lineage={"inputs": [{"layer": "lidar-hd"}]},
...                 licence="etalab-2.0", access="open")                       # doctest: +SKIP
"""

from __future__ import annotations

import getpass
import logging
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gis.backends import open_backend
from gis.backends.base import Backend, GcReport
from gis.catalog import gates
from gis.catalog.licences import check_access, check_licence_rules, get_licence
from gis.records import ChangeEvent, Layer, Version, check_layer_id, utc_now
from gis.catalog.presentation import check_new_name, link_current, presentation
from gis.catalog.cityjson import check_cityjson
from gis.catalog.products import FILE_KINDS, Product, detect_kind, read_lineage
from gis.qgis.links import stable_path
from gis.qgis.styles import read_style_file
from gis.checksums import geometry_wkb, sha256_file, sha256_frame, sha256_tree
from gis.feeds.downloads import prebuild
from gis.errors import InputError, LayerNotFound

if TYPE_CHECKING:
    from geopandas import GeoDataFrame

log = logging.getLogger(__name__)

ECEF = "EPSG:4978"
METADATA = ("title", "description", "title_en", "description_en", "keywords", "theme", "producer",
            "update_frequency")


@dataclass(frozen=True)
class Published:
    """The outcome of a publication: the layer as it now is, the new version, its event, the time it took.

    ``event`` is None when the product was unchanged: the current version
    already held the same data under the same licence, access and metadata,
    so nothing was written (``version`` is that current version).
    """

    layer: Layer
    version: Version
    event: ChangeEvent | None
    seconds: float


def default_publisher() -> str:
    """``user@host`` of the running process."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


class Catalog:
    """The shared city GIS's catalog on one backend.

    Parameters
    ----------
    backend
        Where layers, versions and data are stored.
    crs
        The working CRS every vector and raster product must be in.
    retention
        Versions kept per layer for rollback.
    """

    def __init__(self, backend: Backend, crs: str = "EPSG:2154", retention: int = 5) -> None:
        self.backend = backend
        self.crs = crs
        self.retention = retention

    @classmethod
    def from_config(cls, config, create: bool = True) -> "Catalog":
        """The catalog of a :class:`~gis.config.Config` (``store`` and ``crs``)."""
        store = config.store
        # crs: auto declares no CRS: each product is published in the one it was made in
        crs = None if config.crs == "auto" else config.crs
        return cls(open_backend(store, create=create), crs=crs, retention=int(store.get("retention", 5)))

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Catalog":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------------
    def layers(self) -> list[Layer]:
        return self.backend.list_layers()

    def layer(self, layer_id: str) -> Layer:
        return self.backend.get_layer(layer_id)

    def history(self, layer_id: str) -> list[Version]:
        self.backend.get_layer(layer_id)
        return self.backend.list_versions(layer_id)

    def version(self, layer_id: str, number: int | None = None) -> Version:
        """A retained version, the current one by default."""
        layer = self.backend.get_layer(layer_id)
        if number is None:
            if layer.current_version is None:
                raise LayerNotFound(f"layer {layer_id} is withdrawn; roll it back to serve it again")
            number = layer.current_version
        return self.backend.get_version(layer_id, number)

    def read(self, layer_id: str, number: int | None = None, bbox=None):
        """The GeoDataFrame of a vector layer's current (or given) version."""
        version = self.version(layer_id, number)
        if version.kind != "vector":
            raise InputError(f"layer {layer_id} is a {version.kind} layer; use path() for its files")
        return self.backend.read_vector(version, bbox=bbox)

    def path(self, layer_id: str, number: int | None = None) -> Path:
        """The file of a raster or CityJSON version, or the tileset.json of a 3D Tiles version."""
        version = self.version(layer_id, number)
        if version.kind == "vector":
            raise InputError(f"layer {layer_id} is a vector layer; use read() for its features")
        return self.backend.files_path(version)

    def open_in_qgis(self, layer_id: str) -> str:
        """What an analyst pastes into QGIS for the layer's stable name (always its current version)."""
        version = self.version(layer_id)
        layer = self.backend.get_layer(layer_id)
        if version.kind == "vector":
            return self.backend.open_in_qgis(layer)
        target = self.backend.files_path(version)
        link = stable_path(self.backend.files.root.parent, layer_id, version.kind, target.name)
        return str(link if version.kind in FILE_KINDS else (link / "tileset.json"))

    def events(self, after: int = 0, limit: int | None = None) -> list[ChangeEvent]:
        """The change feed after sequence number ``after`` (0: from the start)."""
        return self.backend.events(after, limit)

    # -- publication ------------------------------------------------------------------------------
    def publish(self, product: Path | str | GeoDataFrame, layer_id: str, *, licence: str | None = None, access: str | None = None,
                note: str = "", publisher: str | None = None, lineage: dict[str, Any] | None = None,
                source_layer: str | None = None, kind: str | None = None, on_invalid: str = "raise",
                allow_empty: bool = False, expected_version: int | None | str = "current",
                force: bool = False, style: Path | str | None = None, **metadata: Any) -> Published:
        """Check a product and publish it as the layer's new current version.

        Parameters
        ----------
        product
            A GeoPackage, a COG or a 3D Tiles folder (a path), or a
            GeoDataFrame (a vector layer, checked by the same gates as a
            GeoPackage's and given the same checksum).
        layer_id
            The layer (a slug); created by its first publication.
        licence, access
            Required for a new layer; default to the layer's current ones.
        note, publisher
            Kept with the version (``publisher`` defaults to ``user@host``).
        lineage
            The product's lineage; default: its sidecar ``PRODUCT.lineage.json``
            (none for a GeoDataFrame). ``inputs: [{layer or path, licence}]``
            drive the share-alike rule.
        source_layer
            The GeoPackage layer to publish when it holds several.
        on_invalid, allow_empty
            Vector gates: ``"raise"`` (default), ``"fix"`` or ``"skip"`` bad
            geometries; accept a layer without features.
        expected_version
            The version this publication replaces: ``"current"`` (whatever is
            current when it starts), ``None`` for a new layer, or a number.
        force
            Publish a new version even when the current one already holds the
            same data (same sha256) with the same licence, access and metadata;
            by default such a publication changes nothing (a nightly rerun does
            not churn versions, retention and the change feed).
        style
            A QGIS style file (QML) replacing the layer's default style (kept
            for its later versions until another is given).
        **metadata
            ``title``, ``description``, ``title_en``, ``description_en``,
            ``keywords``, ``theme``, ``producer``, ``update_frequency``.

        Raises
        ------
        InputError
            A gate or a licence rule fails (nothing is written).
        PublishConflict
            Another publisher changed or is changing the layer (nothing is changed).
        """
        started = time.perf_counter()
        check_layer_id(layer_id)
        unknown = set(metadata) - set(METADATA)
        if unknown:
            raise InputError(f"unknown layer metadata {', '.join(sorted(unknown))}; use {', '.join(METADATA)}")
        _check_text({**metadata, "note": note, "publisher": publisher})
        is_frame = _is_frame(product)
        if is_frame and source_layer is not None:
            raise InputError("source_layer chooses a layer of a GeoPackage; a GeoDataFrame is published as it is")
        kind = _frame_kind(kind) if is_frame else detect_kind(Path(product), kind)
        given_style = read_style_file(Path(style)) if style is not None else None
        existing = self.backend.find_layer(layer_id)
        if existing is None:
            check_new_name(self.backend, layer_id)
        if existing is not None and existing.kind != kind:
            raise InputError(f"layer {layer_id} is a {existing.kind} layer; "
                             f"{'the GeoDataFrame' if is_frame else product} is a {kind} product")
        licence = licence or (existing.licence if existing else None)
        access = access or (existing.access if existing else None)
        if licence is None or access is None:
            raise InputError(f"layer {layer_id} is new: give its licence and access level")
        if is_frame:
            prepared = self._prepare_frame(product, layer_id, lineage, on_invalid, allow_empty)
        else:
            prepared = self._prepare(Path(product), kind, source_layer, lineage, on_invalid, allow_empty,
                                     existing.crs if existing else None)
        check_licence_rules(layer_id, licence, access, self._input_licences(prepared.product.lineage))
        if not force and given_style is None:
            current = self._unchanged(existing, prepared.checksum, licence, access, expected_version, metadata)
            if current is not None:
                log.info("%s: unchanged, version %d already holds this data", layer_id, current.number)
                return Published(existing, current, None, time.perf_counter() - started)
        publication = self.backend.begin_publication(layer_id, expected_version)
        try:
            storage = self._store(publication, prepared)
            layer, version = self._records(publication, prepared, storage, licence, access, note,
                                           publisher, metadata)
            view = presentation(self.backend, layer, version, given_style, frame=prepared.frame)
            event = self.backend.commit_publication(publication, layer, version, self.retention, view)
        except BaseException:
            self.backend.abort_publication(publication)
            raise
        link_current(self.backend, view, version)
        layer = self.backend.get_layer(layer_id)
        prebuild(self, layer)
        seconds = time.perf_counter() - started
        log.info("published %s version %d in %.2f s", layer_id, version.number, seconds)
        return Published(layer, version, event, seconds)

    def _unchanged(self, layer: Layer | None, checksum: str, licence: str, access: str, expected_version,
                   metadata: dict[str, Any]) -> Version | None:
        """The current version when publishing would only repeat it, else None."""
        if layer is None or layer.current_version is None or layer.licence != licence or layer.access != access:
            return None
        if expected_version not in ("current", layer.current_version):
            return None  # let the publication fail with its conflict
        given = {name: tuple(value) if name == "keywords" else value
                 for name, value in metadata.items() if value is not None}
        if any(getattr(layer, name) != value for name, value in given.items()):
            return None
        current = self.backend.get_version(layer.id, layer.current_version)
        return current if current.checksum == checksum else None

    def _prepare(self, path: Path, kind: str, source_layer: str | None, lineage: dict | None,
                 on_invalid: str, allow_empty: bool, layer_crs: str | None = None) -> "_Prepared":
        if kind == "vector":
            source_layer = gates.source_layer_of(path, source_layer)
            frame = gates.read_features(path, source_layer)
            lineage = lineage if lineage is not None else read_lineage(path, source_layer)
            return self._prepare_vector(Product(path, kind, source_layer, lineage), frame,
                                        f"{path} layer {source_layer}", on_invalid, allow_empty,
                                        {"product": str(path.resolve()), "source_layer": source_layer})
        if kind == "raster":
            report, checksum = gates.check_raster(path, self.crs), sha256_file(path)
        elif kind == "cityjson":  # one file, like a COG; its CRS is the layer's (a city without a working CRS)
            report, checksum = check_cityjson(path, self.crs or layer_crs), sha256_file(path)
        else:
            report, checksum = gates.check_3dtiles(path), sha256_tree(path)
            report.crs = ECEF
        lineage = dict(lineage if lineage is not None else read_lineage(path, source_layer))
        lineage["publication"] = {"product": str(path.resolve()), "source_layer": source_layer,
                                  "gates": report.to_lineage()}
        return _Prepared(Product(path, kind, source_layer, lineage), None, None, report, checksum)

    def _prepare_frame(self, frame, layer_id: str, lineage: dict | None, on_invalid: str,
                       allow_empty: bool) -> "_Prepared":
        return self._prepare_vector(Product(None, "vector", None, lineage or {}), frame,
                                    f"the GeoDataFrame published as {layer_id}", on_invalid, allow_empty,
                                    {"product": "GeoDataFrame", "source_layer": None})

    def _prepare_vector(self, product: Product, frame, where: str, on_invalid: str, allow_empty: bool,
                        source: dict[str, Any]) -> "_Prepared":
        """A vector product through the gates, with its geometries' WKB and its checksum.

        Under ``"raise"`` the geometry gate changes nothing, so GEOS' validity
        test (which releases the GIL) runs in a thread while the WKB and the
        checksum are computed.
        """
        if on_invalid == "raise":
            canonical, report = gates.check_all_but_geometries(frame, where, self.crs, allow_empty)
            with ThreadPoolExecutor(1, thread_name_prefix="lutece-gate") as pool:
                gate = pool.submit(gates.check_geometries, frame, where)
                wkb = geometry_wkb(canonical)
                checksum = sha256_frame(canonical, wkb)
                gate.result()
        else:
            canonical, report = gates.check_frame(frame, where, self.crs, on_invalid, allow_empty)
            wkb = geometry_wkb(canonical)
            checksum = sha256_frame(canonical, wkb)
        lineage = {**product.lineage, "publication": {**source, "gates": report.to_lineage()}}
        return _Prepared(replace(product, lineage=lineage), canonical, wkb, report, checksum)

    def _input_licences(self, lineage: dict[str, Any]) -> list[dict[str, Any]]:
        """The lineage's inputs, with the catalog's licence filled in for inputs that are catalog layers."""
        inputs = []
        for item in lineage.get("inputs") or []:
            if not isinstance(item, dict):
                continue
            if item.get("licence") is None and item.get("layer"):
                source = self.backend.find_layer(str(item["layer"]))
                item = {**item, "licence": source.licence if source else None}
            inputs.append(item)
        return inputs

    def _store(self, publication, prepared: "_Prepared") -> str:
        if prepared.frame is not None:
            return self.backend.store_vector(publication, prepared.frame, prepared.wkb)
        return self.backend.store_files(publication, prepared.product.path, prepared.checksum)

    def _records(self, publication, prepared: "_Prepared", storage: str, licence: str, access: str, note: str,
                 publisher: str | None, metadata: dict[str, Any]) -> tuple[Layer, Version]:
        now, report, base = utc_now(), prepared.report, publication.base
        version = Version(layer_id=publication.layer_id, number=publication.number, checksum=prepared.checksum,
                          storage=storage, publisher=publisher or default_publisher(), published=now,
                          kind=prepared.product.kind, crs=report.crs, extent=report.extent,
                          features=report.features, note=note, lineage=prepared.product.lineage)
        fields = {name: value for name, value in metadata.items() if value is not None}
        if "keywords" in fields:
            fields["keywords"] = tuple(fields["keywords"])
        if base is None:
            layer = Layer(id=publication.layer_id, title=fields.pop("title", publication.layer_id),
                          kind=prepared.product.kind, crs=report.crs, licence=licence, access=access,
                          created=now, updated=now, **fields)
        else:
            layer = base.evolve(licence=licence, access=access, crs=report.crs, updated=now, **fields)
        layer = layer.evolve(current_version=version.number, last_version=version.number, extent=report.extent)
        return layer, version

    # -- other changes ----------------------------------------------------------------------------
    def rollback(self, layer_id: str, to: int | None = None) -> ChangeEvent:
        """Make a retained version current again (default: the one before the current version)."""
        layer = self.backend.get_layer(layer_id)
        numbers = [v.number for v in self.backend.list_versions(layer_id)]
        if to is None:
            earlier = [n for n in numbers if layer.current_version is None or n < layer.current_version]
            if not earlier:
                raise InputError(f"layer {layer_id} has no earlier version retained to roll back to")
            to = max(earlier)
        if to == layer.current_version:
            raise InputError(f"layer {layer_id} is already at version {to}")
        version = self.backend.get_version(layer_id, to)
        check_licence_rules(layer_id, layer.licence, layer.access, self._input_licences(version.lineage))
        target = layer.evolve(current_version=to, extent=version.extent, crs=version.crs, updated=utc_now())
        view = presentation(self.backend, target, version)
        event = self.backend.apply_change(layer, target, "rollback", view)
        link_current(self.backend, view, version)
        return self._changed(event)

    def withdraw(self, layer_id: str) -> ChangeEvent:
        """Stop serving a layer (its versions stay for rollback)."""
        layer = self.backend.get_layer(layer_id)
        if layer.current_version is None:
            raise InputError(f"layer {layer_id} is already withdrawn")
        target = layer.evolve(current_version=None, updated=utc_now())
        view = presentation(self.backend, target, None)
        event = self.backend.apply_change(layer, target, "withdraw", view)
        link_current(self.backend, view, None)
        return event

    def reclassify(self, layer_id: str, access: str, licence: str | None = None) -> ChangeEvent:
        """Change a layer's access level (and licence), under the licence rules."""
        layer = self.backend.get_layer(layer_id)
        check_access(access)
        licence = get_licence(licence).id if licence else layer.licence
        lineage = self.backend.get_version(layer_id, layer.current_version).lineage if layer.current_version else {}
        check_licence_rules(layer_id, licence, access, self._input_licences(lineage))
        target = layer.evolve(access=access, licence=licence, updated=utc_now())
        current = self.backend.get_version(layer_id, layer.current_version) if layer.current_version else None
        view = presentation(self.backend, target, current)
        return self._changed(self.backend.apply_change(layer, target, "reclassify", view))

    def _changed(self, event: ChangeEvent) -> ChangeEvent:
        """After a change that may make a version public: its download files, built now."""
        prebuild(self, self.backend.get_layer(event.layer_id))
        return event

    def gc(self) -> GcReport:
        """Remove the data no version references and the leftovers of killed publications.

        Also points every file layer's ``current/`` link at its current version
        again (a process killed between a switch and its link leaves it behind).
        """
        report = self.backend.gc()
        for layer in self.backend.list_layers():
            if layer.kind != "vector":
                current = self.backend.get_version(layer.id, layer.current_version) if layer.current_version else None
                link_current(self.backend, presentation(self.backend, layer, current), current)
        return report


@dataclass
class _Prepared:
    product: Product
    frame: Any  # the canonical GeoDataFrame of a vector product
    wkb: Any  # its geometries' WKB, computed once for the checksum and the backend
    report: gates.GateReport
    checksum: str


def _check_text(fields: dict[str, Any]) -> None:
    """Refuse catalog text that the backends cannot store alike: NUL (PostgreSQL's text refuses it,
    SQLite keeps it) and lone surrogates (not UTF-8: a command line's undecodable bytes)."""
    for name, value in fields.items():
        for text in value if isinstance(value, (list, tuple)) else [value]:
            if not isinstance(text, str):
                continue
            if "\x00" in text:
                raise InputError(f"{name}: contains a NUL character (\\x00); remove it")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "backslashreplace").decode("utf-8")
                raise InputError(f"{name}: '{shown}' is not valid UTF-8 text; write it in UTF-8") from None


def _is_frame(product) -> bool:
    """Whether the product is in memory (a DataFrame without geometry is refused by the gates)."""
    from pandas import DataFrame

    return isinstance(product, DataFrame)


def _frame_kind(kind: str | None) -> str:
    if kind not in (None, "vector"):
        raise InputError(f"a GeoDataFrame is a vector product, not {kind}")
    return "vector"

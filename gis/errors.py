"""The one exception hierarchy of Lutèce.

Every error a user can cause derives from :class:`LuteceError`. Its message is
safe to show as is: the CLI prints it as one line ``Error: <message>`` and
exits 1, and the server (later) maps ``http_status`` and ``ogc_code`` to an
OGC API exception, as pygeoapi's ``GenericError`` does. Classes also subclass
the matching built-in where one fits, as rasterio does, so that callers can
catch ``FileExistsError`` or ``ValueError`` without knowing Lutèce.
"""

from __future__ import annotations


class LuteceError(Exception):
    """Root of every error a user of Lutèce can cause or fix."""

    http_status: int = 500
    ogc_code: str = "NoApplicableCode"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(LuteceError, ValueError):
    """The configuration file is missing, unreadable or invalid."""


class InputError(LuteceError, ValueError):
    """An input file or parameter is unusable (bad format, bad CRS, bad value)."""

    http_status = 400
    ogc_code = "InvalidParameterValue"


class OutputExistsError(LuteceError, FileExistsError):
    """An output already exists and ``--overwrite`` was not given."""


class DependencyError(LuteceError, ImportError):
    """A required library or system package cannot be loaded."""


# --- the shared city GIS: catalog, publication, storage -------------------------------------------


class LayerNotFound(LuteceError, KeyError):
    """No layer (or no such version of a layer) in the catalog."""

    http_status = 404
    ogc_code = "NotFound"


class LicenceError(InputError):
    """A licence or access level that does not exist, or breaks the catalog's licence rules."""


class ProductError(InputError):
    """A product fails a publication gate (CRS, geometry validity, emptiness, encoding, COG, 3D Tiles)."""


class PublishConflict(LuteceError, RuntimeError):
    """Another publisher changed (or is changing) the layer; nothing was changed, retry on the new version."""

    http_status = 409
    ogc_code = "Conflict"


class StoreError(LuteceError, OSError):
    """The store of the city GIS cannot be opened or used (missing, corrupt, server down)."""

    http_status = 503
    ogc_code = "NoApplicableCode"


# --- the open-data mirror -------------------------------------------------------------------------


class SyncError(LuteceError, OSError):
    """A mirror sync could not complete (source unreachable, bad download, disk full); the mirror is unchanged."""

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

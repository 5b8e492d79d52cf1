"""The shared city GIS: catalog, storage backends, publication, change feed.

The core package: it imports nothing else of Lutèce. It also holds the one
exception hierarchy (:mod:`gis.errors`), the configuration loader
(:mod:`gis.config`) and the root of the ``lutece`` command line.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lutece")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

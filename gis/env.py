"""The environment of one ``lutece`` call, in the spirit of ``rasterio.Env``.

Built once per CLI call from the global options and handed to subcommands
through click's context; the configuration is loaded on first use only, so
commands that do not need it never fail on it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from gis.config import Config, load_config


@dataclass
class Env:
    """Verbosity and configuration shared by every subcommand."""

    verbosity: int = 0
    config_path: Path | None = None
    _config: Config | None = field(default=None, repr=False)

    @property
    def quiet(self) -> bool:
        """True when progress bars and chatter must stay silent (``-q``)."""
        return self.verbosity < 0

    @cached_property
    def config(self) -> Config:
        return self._config if self._config is not None else load_config(self.config_path)

    def configure_logging(self) -> None:
        """Send logs to stderr at the level the ``-v``/``-q`` flags ask for."""
        level = {-1: logging.ERROR, 0: logging.WARNING, 1: logging.INFO}.get(self.verbosity, logging.DEBUG)
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", force=True)
        # laspy logs what it then raises; Lutèce turns that into one clear line, so hide it unless -vv.
        logging.getLogger("laspy").setLevel(logging.DEBUG if self.verbosity >= 2 else logging.CRITICAL)

"""open3d without its web visualiser: ``from pipelines.algorithms.lean_open3d import o3d``.

open3d's ``__init__`` imports ``open3d.visualization.draw_plotly``, which
imports plotly and dash: 1 s of the 1.6 s open3d takes to import, paid by
every process that runs a tile (each Dask worker), for drawing the pipelines
never do. A stand-in module takes its place when open3d has not been
imported yet; its functions say what to do if ever called. open3d's
geometry, search and clustering are untouched.
"""

from __future__ import annotations

import sys
import types

_PLOTLY_DRAWING = "open3d.visualization.draw_plotly"


def _stand_in() -> types.ModuleType:
    module = types.ModuleType(_PLOTLY_DRAWING, "open3d's plotly drawing, left unloaded by Lutèce")

    def __getattr__(name: str):  # any name open3d imports from it (PEP 562)
        if name.startswith("__"):
            raise AttributeError(name)

        def unavailable(*args, **kwargs):
            raise RuntimeError(f"open3d.visualization.{name} is not loaded in Lutèce's pipelines; "
                               "import open3d in a fresh Python process to draw with plotly")
        return unavailable

    module.__getattr__ = __getattr__
    return module


if "open3d" not in sys.modules:
    sys.modules.setdefault(_PLOTLY_DRAWING, _stand_in())

import open3d as o3d  # noqa: E402  (after the stand-in, on purpose)

__all__ = ["o3d"]

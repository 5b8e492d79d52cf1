"""What every stage shares: typed options checked before any data is touched.

A stage is built from its :class:`~pipelines.spec.StageSpec` with no I/O
(py3dtiles' tiler rule), so a pipeline can be validated and planned before it
reads a file. Options are a dataclass per stage; unknown options, wrong types
and out-of-range values are refused with the stage's tag in the message.
"""

from __future__ import annotations

import abc
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pyproj

from gis.errors import InputError
from pipelines.spec import StageSpec


@dataclass
class NoOptions:
    pass


class Stage(abc.ABC):
    """Base of every stage; ``kind`` is reader, filter or writer.

    A stage of each kind implements the methods of :data:`REQUIRED_METHODS`;
    a base class leaves some abstract (``abc.abstractmethod``), and the
    registry refuses a pipeline naming it before anything runs.
    """

    kind: ClassVar[str] = "filter"
    Options: ClassVar[type] = NoOptions

    def __init__(self, spec: StageSpec) -> None:
        self.spec = spec
        self.tag = spec.tag
        self.options = build_options(self.Options, spec)

    def describe(self) -> dict[str, Any]:
        """The stage as lineage records it: type, tag, inputs and every option's value."""
        return {"type": self.spec.type, "tag": self.tag, "inputs": list(self.spec.inputs),
                "options": dataclasses.asdict(self.options)}


# What the runner calls on a stage of each kind, besides describe().
REQUIRED_METHODS: dict[str, tuple[str, ...]] = {
    "reader": ("plan", "decode", "assemble"),
    "filter": ("process",),
    "writer": ("filename", "layer", "tile_part"),
    # a writer converting whole files (writers.3dtiles, run by pipelines.tiles3d), not tiles with a halo
    "writer.whole_files": ("filename", "layer"),
    # a reader of a whole plan file (readers.ifc, readers.indoor: one building), run by pipelines.interiors
    "reader.whole_files": ("path", "read"),
}


def missing_methods(stage_class: type[Stage]) -> list[str]:
    """The methods ``stage_class`` leaves abstract or lacks for its kind (empty for a runnable stage)."""
    abstract = sorted(getattr(stage_class, "__abstractmethods__", ()))
    shape = stage_class.kind + (".whole_files" if getattr(stage_class, "whole_files", False) else "")
    required = REQUIRED_METHODS.get(shape, ())
    lacking = [name for name in required if not callable(getattr(stage_class, name, None))]
    return abstract + [name for name in lacking if name not in abstract]


def build_options(options_class: type, spec: StageSpec) -> Any:
    """Instantiate ``options_class`` from the spec's options, refusing what does not fit."""
    fields = {f.name: f for f in dataclasses.fields(options_class)}
    where = f"stage '{spec.tag}' ({spec.type})"
    unknown = sorted(set(spec.options) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown option '{unknown[0]}'; its options are {', '.join(fields) or 'none'}")
    hints = typing.get_type_hints(options_class)
    values = {name: _coerce(value, hints[name], f"{where}: option '{name}'") for name, value in spec.options.items()}
    try:
        return options_class(**values)
    except TypeError as exc:  # a required option is missing
        raise InputError(f"{where}: {exc}".replace("__init__() ", "")) from None
    except ValueError as exc:
        raise InputError(f"{where}: {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Accept a value of the declared type (ints for floats, one string for a list of strings)."""
    origin = typing.get_origin(hint)
    allowed = typing.get_args(hint) if origin in (typing.Union, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    for kind in allowed:
        if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if kind in (int, str, bool) and type(value) is kind:
            return value
        if typing.get_origin(kind) in (list, tuple):
            items = [value] if isinstance(value, str) else value
            if isinstance(items, (list, tuple)):
                return list(items)
    names = " or ".join(getattr(k, "__name__", str(k)) for k in allowed)
    raise InputError(f"{where} must be {names}, not {value!r}")


def positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"option '{name}' must be > 0, not {value}")


@dataclass
class PointTile:
    """The points of one tile (its core plus a halo borrowed from the neighbours)."""

    xyz: np.ndarray
    classification: np.ndarray
    return_number: np.ndarray
    number_of_returns: np.ndarray
    crs: pyproj.CRS
    core: tuple[float, float, float, float]  # the part this tile owns in the products
    name: str = "tile"
    own: int | None = None  # the first ``own`` points are the tile's file's (the rest: the halo); None: all
    warnings: list[dict[str, str]] = field(default_factory=list)  # what the stages found wrong, for the run
    density: float | None = None  # pulses/m2 of the core (pulse_density() measures it once)
    used: dict[str, dict] = field(default_factory=dict)  # the values of the density-scaled options, by stage tag

    def __len__(self) -> int:
        return len(self.xyz)

    def subset(self, mask: np.ndarray) -> PointTile:
        return dataclasses.replace(
            self, xyz=self.xyz[mask], classification=self.classification[mask],
            return_number=self.return_number[mask], number_of_returns=self.number_of_returns[mask])

    def pulse_density(self) -> float:
        """First returns per m2 of the tile's core (:func:`pipelines.density.pulse_density`), measured once."""
        if self.density is None:
            from pipelines.density import pulse_density

            core = self.in_core()
            self.density = pulse_density(self.xyz[core, :2], self.return_number[core])
        return self.density

    def record(self, stage: str, **values: float) -> None:
        """Record the values a stage used for its scaled options (the lineage lists them per tile)."""
        self.used[stage] = {name: round(float(value), 3) for name, value in values.items()}

    def warn(self, stage: str, message: str) -> None:
        """Record a warning of ``stage`` about this tile (stderr, lineage and report show it)."""
        self.warnings.append({"stage": stage, "message": message})

    def own_points(self) -> np.ndarray:
        """Mask of the points read from the tile's own file (each file's points are written once)."""
        mask = np.zeros(len(self), dtype=bool)
        mask[: len(self) if self.own is None else self.own] = True
        return mask

    def in_core(self) -> np.ndarray:
        xmin, ymin, xmax, ymax = self.core
        x, y = self.xyz[:, 0], self.xyz[:, 1]
        return (x >= xmin) & (x < xmax) & (y >= ymin) & (y < ymax)

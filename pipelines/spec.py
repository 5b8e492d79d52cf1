"""Pipeline definitions: a YAML list of typed stages, in the spirit of PDAL's pipelines.

A pipeline file::

    name: lidar-to-2d
    output: ${OUTPUT:-build/products}
    pipeline:
      - type: readers.las
        filename: ${INPUT}
      - type: filters.ground
        tag: ground
        cell: 1.0
      - type: writers.dtm
        inputs: [ground]
        resolution: 0.5

Each stage has a ``type`` (a registry name or a dotted path), an optional
``tag`` (default: its type) and ``inputs`` (default: the previous stage); every
other key is an option of the stage. Command-line overrides
``--stage.TAG.OPTION=VALUE`` replace one option of one stage (the value is
parsed as YAML, so ``1.0`` is a number and ``[1, 2]`` a list).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gis.config import load_yaml_with_variables
from gis.errors import InputError

RESERVED = {"type", "tag", "inputs"}


@dataclass(frozen=True)
class StageSpec:
    """One stage as written in the pipeline file."""

    type: str
    tag: str
    inputs: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PipelineSpec:
    """A parsed pipeline: its stages in order and where products go."""

    name: str
    stages: tuple[StageSpec, ...]
    output: Path
    source: str = "pipeline"

    def stage(self, tag: str) -> StageSpec:
        return next(stage for stage in self.stages if stage.tag == tag)


def load_pipeline(path: Path, overrides: dict[str, dict[str, Any]] | None = None,
                  environ: dict[str, str] | None = None) -> PipelineSpec:
    """Read, substitute and parse a pipeline file, then apply the overrides."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such pipeline file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the pipeline ({exc})") from None
    return parse_pipeline(text, origin=str(path), overrides=overrides, environ=environ)


def parse_pipeline(text: str, origin: str = "pipeline",
                   overrides: dict[str, dict[str, Any]] | None = None,
                   environ: dict[str, str] | None = None) -> PipelineSpec:
    """Parse the text of a pipeline file (see the module docstring)."""
    try:
        document = load_yaml_with_variables(text, origin, environ)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({getattr(exc, 'problem', exc)}); fix the syntax") from None
    if isinstance(document, list):
        document = {"pipeline": document}
    if not isinstance(document, dict) or not isinstance(document.get("pipeline"), list) or not document["pipeline"]:
        raise InputError(f"{origin}: a pipeline needs a non-empty 'pipeline:' list of stages")
    stages = _stages(document["pipeline"], origin)
    stages = _apply_overrides(stages, overrides or {}, origin)
    # A relative output is relative to where the command runs, like any command-line path.
    output = Path(str(document.get("output", "products")))
    return PipelineSpec(name=str(document.get("name", Path(origin).stem)), stages=stages, output=output, source=origin)


def _stages(items: list[Any], origin: str) -> tuple[StageSpec, ...]:
    stages: list[StageSpec] = []
    for number, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise InputError(f"{origin}: stage {number} needs a 'type' (such as readers.las or writers.cog)")
        tag = str(item.get("tag", item["type"]))
        if any(stage.tag == tag for stage in stages):
            raise InputError(f"{origin}: stage {number}: the tag '{tag}' is used twice; give each stage its own tag")
        inputs = item.get("inputs", [stages[-1].tag] if stages else [])
        inputs = (inputs,) if isinstance(inputs, str) else tuple(str(i) for i in inputs)
        known = {stage.tag for stage in stages}
        for name in inputs:
            if name not in known:
                raise InputError(f"{origin}: stage '{tag}': input '{name}' is not the tag of an earlier stage "
                                 f"(earlier tags: {', '.join(sorted(known)) or 'none'})")
        options = {key: value for key, value in item.items() if key not in RESERVED}
        stages.append(StageSpec(type=item["type"], tag=tag, inputs=inputs, options=options))
    return tuple(stages)


def _apply_overrides(stages: tuple[StageSpec, ...], overrides: dict[str, dict[str, Any]], origin: str) -> tuple[StageSpec, ...]:
    tags = {stage.tag for stage in stages}
    for tag in overrides:
        if tag not in tags:
            raise InputError(f"--stage.{tag}...: no stage is tagged '{tag}' in {origin} (tags: {', '.join(sorted(tags))})")
    return tuple(StageSpec(s.type, s.tag, s.inputs, {**s.options, **overrides.get(s.tag, {})}) for s in stages)


def parse_overrides(arguments: list[str]) -> dict[str, dict[str, Any]]:
    """Turn ``--stage.TAG.OPTION=VALUE`` arguments into {tag: {option: value}}."""
    overrides: dict[str, dict[str, Any]] = {}
    for argument in arguments:
        key, separator, value = argument.partition("=")
        parts = key.split(".")
        if not separator or len(parts) < 3 or parts[0] != "--stage" or not parts[1] or not parts[-1]:
            raise InputError(f"{argument}: expected --stage.TAG.OPTION=VALUE")
        tag, option = ".".join(parts[1:-1]), parts[-1]
        overrides.setdefault(tag, {})[option] = yaml.safe_load(value) if value != "" else None
    return overrides

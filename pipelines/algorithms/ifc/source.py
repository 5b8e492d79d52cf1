"""Opening an IFC file: one clear error for what is not a readable IFC model with storeys."""

from __future__ import annotations

from pathlib import Path

from gis.errors import InputError

SCHEMAS = ("IFC2X3", "IFC4", "IFC4X3")
_HEAD = b"ISO-10303-21;"
_END = b"END-ISO-10303-21;"


def open_ifc(path: Path):
    """The model of an IFC-SPF file (IFC2x3, IFC4 or IFC4x3), checked before anything is read from it.

    Raises
    ------
    InputError
        The file is missing, is not IFC (STEP physical file), is truncated, has a schema
        ifcopenshell cannot read, or has no IfcBuildingStorey.
    """
    import ifcopenshell

    path = Path(path)
    check_file(path)
    try:
        model = ifcopenshell.open(str(path))
    except Exception as exc:  # ifcopenshell raises plain RuntimeError/SchemaError on any parse failure
        raise InputError(f"{path}: not a readable IFC file ({_first_line(exc)}); export it again as IFC2x3 or "
                         "IFC4 (STEP physical file)") from None
    if model.schema.upper() not in SCHEMAS:
        raise InputError(f"{path}: IFC schema {model.schema} is not supported; use IFC2x3, IFC4 or IFC4x3")
    if not model.by_type("IfcBuildingStorey"):
        raise InputError(f"{path}: the model has no storey (IfcBuildingStorey); interiors are split by storey, "
                         "so export it with its storeys")
    return model


def check_file(path: Path) -> None:
    """The cheap part of :func:`open_ifc`'s checks: an IFC-SPF file, whole (its first and last bytes)."""
    if not path.is_file():
        raise InputError(f"{path}: no such IFC file; give the building's .ifc file")
    _check_envelope(path)


def _check_envelope(path: Path) -> None:
    """A STEP physical file starts with ISO-10303-21; and ends with END-ISO-10303-21; (else it was cut)."""
    with path.open("rb") as stream:
        head = stream.read(64).lstrip(b"\xef\xbb\xbf \t\r\n")
        stream.seek(max(0, path.stat().st_size - 256))
        tail = stream.read().rstrip()
    if not head.startswith(_HEAD):
        kind = "an ifcXML or ifcZIP file" if head.startswith((b"<?xml", b"PK")) else "not an IFC (STEP) file"
        raise InputError(f"{path}: {kind}; give an IFC-SPF file (.ifc, starting with ISO-10303-21;)")
    if not tail.endswith(_END):
        raise InputError(f"{path}: truncated IFC file (it does not end with END-ISO-10303-21;); copy or export "
                         "it again")


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__

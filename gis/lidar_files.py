"""The lidar files named by a list of files, folders and glob patterns: one listing for every reader.

The pipelines' LAS reader and the 3D Tiles conversion both take inputs this
way; the listing lives below both (imports run pipelines -> tiles -> gis).
"""

from __future__ import annotations

import glob
from pathlib import Path

from gis.errors import InputError

LIDAR_SUFFIXES = (".las", ".laz")


def lidar_files(entries: list[str], where: str = "") -> list[Path]:
    """The LAS/LAZ files of ``entries``, each once (resolved), sorted within a folder or a pattern.

    Parameters
    ----------
    entries
        Files, folders (their .las/.laz files) and glob patterns.
    where
        Said after each error, e.g. ``" (stage 'read', option filename)"``.

    Raises
    ------
    InputError
        An entry that is no file, folder or pattern, or no lidar file at all.
    """
    found: list[Path] = []
    for entry in entries:
        path = Path(entry)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() in LIDAR_SUFFIXES)
        elif path.is_file():
            found.append(path)
        elif any(ch in entry for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(entry))
        else:
            raise InputError(f"{path}: no such lidar file or folder{where}")
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise InputError(f"no .las or .laz file found in {', '.join(entries)}{where}")
    return unique

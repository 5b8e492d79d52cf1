"""Checksums of products and the files a product folder holds, below the catalog and the backends.

- :func:`sha256_file`, :func:`sha256_tree`: a raster, a 3D Tiles folder (its
  regular files only, :func:`tree_files`);
- :func:`sha256_frame`: a vector layer's attributes then geometries as WKB,
  whatever holds them.

The catalog computes a version's checksum with these, and the file store
checks its copies with them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import numpy as np

from gis.errors import ProductError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def tree_files(folder: Path) -> list[tuple[str, Path]]:
    """The files of a product folder, as publication stores them: ``(relative POSIX path, file to read)``.

    Only regular files lying inside the folder. A symbolic link to a regular
    file inside the folder stands for that file (it is stored as a copy of it,
    under the link's name); every other link (to a file or folder outside,
    to a folder, dangling) and every special file is refused, so that nothing
    outside the product can be hashed or copied into the city store. Sorted
    as paths, component by component.

    Raises
    ------
    ProductError
        Naming the first entry refused and what to do.
    """
    root = folder.resolve()
    found = []
    for directory, folders, files in os.walk(root):  # a linked folder is listed, never entered
        for name in folders + files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                found.append((relative, _link_target(folder, root, relative, path)))
            elif name in files:
                if not stat.S_ISREG(path.lstat().st_mode):
                    raise ProductError(f"{folder}: {relative} is not a regular file; a product folder holds "
                                       f"files and folders only")
                found.append((relative, path))
    return sorted(found, key=lambda item: item[0].split("/"))


def _link_target(folder: Path, root: Path, relative: str, link: Path) -> Path:
    """The regular file inside ``root`` that the symbolic link ``link`` stands for; refuse any other link."""
    target = link.resolve()
    if target != root and root not in target.parents:
        raise ProductError(f"{folder}: {relative} is a symbolic link to {target}, outside the product; "
                           f"publication stores only the product's own files: copy the file into the folder "
                           f"or remove the link")
    if not target.exists():
        raise ProductError(f"{folder}: {relative} is a symbolic link to {target}, which does not exist; "
                           f"remove the link")
    if not target.is_file():
        raise ProductError(f"{folder}: {relative} is a symbolic link to a folder; replace it by a copy of "
                           f"the folder")
    return target


def sha256_tree(folder: Path) -> str:
    """The sha256 of a folder: of its files' relative paths and contents (:func:`tree_files`), in sorted order."""
    digest = hashlib.sha256()
    for relative, file in tree_files(folder):
        digest.update(relative.encode("utf-8") + b"\0")
        digest.update(sha256_file(file).encode("ascii") + b"\n")
    return digest.hexdigest()


def geometry_wkb(frame) -> np.ndarray:
    """The little-endian WKB of a GeoDataFrame's geometries (``None`` for a null one), as the checksum hashes them.

    Computed once per publication: the checksum and the PostGIS COPY both use it.
    """
    import shapely

    return shapely.to_wkb(np.asarray(frame.geometry.values), byte_order=1)


def sha256_frame(frame, wkb: np.ndarray | None = None) -> str:
    """The sha256 of a GeoDataFrame's data: its attributes in order, then its geometries as WKB.

    Independent of where the features came from: the geometry column is
    hashed last under the name ``geometry`` whatever it is called and wherever
    it stands, text is hashed as UTF-8 whatever its pandas dtype (``str`` or
    ``object``), a missing text as ``\\x00``. So a frame, the GeoPackage
    holding it and the version read back from either backend give the same
    checksum (for the column types a GeoPackage keeps: text, integers, reals,
    booleans). ``wkb`` is :func:`geometry_wkb` of the frame when already computed.
    """
    digest = hashlib.sha256()
    geometry = frame.geometry.name
    for name in frame.columns:
        if name != geometry:
            _hash_attribute(digest, name, frame[name])
    digest.update(b"geometry\0geometry\0")
    wkbs = geometry_wkb(frame) if wkb is None else wkb
    wkbs = np.where(wkbs == None, b"", wkbs)  # noqa: E711 (elementwise); a null geometry: length 0, no bytes
    # Lengths then bytes, each in one call.
    digest.update(np.fromiter(map(len, wkbs), dtype="<u4", count=len(wkbs)).tobytes())
    digest.update(b"".join(wkbs))
    return digest.hexdigest()


def _hash_attribute(digest, name: str, column) -> None:
    if column.dtype.kind in "biufcmM":
        values = column.to_numpy()
        if values.dtype != object:  # numbers and times: their bytes (times with a zone go as text)
            digest.update(f"{name}\0{column.dtype}\0".encode("utf-8"))
            digest.update(np.ascontiguousarray(values).tobytes())
            return
    digest.update(f"{name}\0str\0".encode("utf-8"))
    texts = column.to_numpy(dtype=object, na_value="\x00")
    try:
        joined = "\x1f".join(texts)  # the common case: every value a str
    except TypeError:
        joined = "\x1f".join(map(str, texts))
    digest.update(joined.encode("utf-8"))

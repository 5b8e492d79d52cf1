"""The content-addressed file store of rasters and 3D Tiles, shared by every backend.

``files/<sha256>/<name>`` holds one version's raster or 3D Tiles folder; two
versions with the same content share one folder. A copy is made under
``files/.staging/<token>/`` and renamed into place once complete and flushed,
so a folder under its checksum is always whole. Only the product's own
regular files are copied (:func:`~gis.checksums.tree_files`: a
symbolic link to a file inside the folder becomes a copy of that file, any
other link is refused), and the copy is hashed again before it is renamed
into place, so a folder's name is the checksum of what it holds.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from gis.checksums import sha256_file, sha256_tree, tree_files
from gis.errors import ProductError

STAGING = ".staging"


class FileStore:
    """Files of versions under ``root``, addressed by their sha256."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def staging(self, token: str) -> Path:
        return self.root / STAGING / token

    def put(self, source: Path, checksum: str, token: str) -> str:
        """Copy ``source`` (a file or a folder) under its checksum; return ``files:<sha>/<name>``.

        The reference names the file itself, or the ``tileset.json`` of a folder.
        """
        name = source.name if source.is_file() else "tileset.json"
        reference = f"files:{checksum}/{name}"
        final = self.root / checksum
        if final.is_dir():
            return reference
        staging = self.staging(token)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if source.is_file():
            shutil.copyfile(source, staging / source.name)
            copied = sha256_file(staging / source.name)
        else:
            for relative, file in tree_files(source):
                (staging / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, staging / relative)
            copied = sha256_tree(staging)
        if copied != checksum:
            shutil.rmtree(staging, ignore_errors=True)
            raise ProductError(f"{source}: changed while it was being published (its checksum is no longer "
                               f"{checksum}); publish it again once it is complete")
        fsync_tree(staging)
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            shutil.rmtree(staging, ignore_errors=True)  # same content, put there by another publisher
        return reference

    def path(self, reference: str) -> Path:
        """The local path of a ``files:`` reference."""
        return self.root / reference.removeprefix("files:")

    @staticmethod
    def key(reference: str) -> str:
        """The checksum folder of a ``files:`` reference."""
        return reference.removeprefix("files:").split("/", 1)[0]

    def keys(self) -> list[str]:
        """Every checksum folder present."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and p.name != STAGING)

    def staged(self) -> list[str]:
        """Every staging token present."""
        folder = self.root / STAGING
        return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []

    def remove(self, key: str, token: str) -> None:
        """Move a checksum folder out of the way in one rename, then delete it.

        A folder under its checksum is thus whole or absent, even if the
        deletion is interrupted (the rest is a staging leftover for gc).
        """
        trash = self.staging(f"trash-{key}-{token}")
        trash.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(self.root / key, trash)
        except FileNotFoundError:
            return
        shutil.rmtree(trash, ignore_errors=True)

    def remove_staged(self, token: str) -> None:
        shutil.rmtree(self.staging(token), ignore_errors=True)

    def sweep(self, referenced: set[str], live_tokens: set[str]) -> list[str]:
        """Remove the folders no reference names and the staged copies of dead publications.

        Returns what was removed (keys, and ``.staging/<token>`` for staged copies).
        """
        keys = {self.key(reference) for reference in referenced if reference and reference.startswith("files:")}
        removed = []
        for key in self.keys():
            if key not in keys:
                self.remove(key, uuid.uuid4().hex)
                removed.append(key)
        for token in self.staged():
            if token not in live_tokens:
                self.remove_staged(token)
                removed.append(f".staging/{token}")
        return removed


def fsync_tree(folder: Path) -> None:
    """Flush a folder's files and the folder itself to disk (before it is renamed into place)."""
    for root, _dirs, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as stream:
                os.fsync(stream.fileno())
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)

"""PostgreSQL's binary COPY format for a table's rows, encoded a column at a time with numpy.

The format (PostgreSQL manual, COPY, "Binary Format"): a signature, then per
row a 16-bit field count and, per field, a 32-bit length (-1 for NULL) and the
value in its type's binary form, all big-endian; a 16-bit -1 ends the data.
psycopg's ``Copy.write_row`` builds it with Python calls for every row (and
every bytes value); here each column is encoded at once, so that a row costs a
few items of one ``bytes.join``: fixed-width fields and the lengths between
two variable-length values are packed together by a numpy structured array.

Columns are given as ``(PostgreSQL type, values)``:

- ``boolean``, ``smallint``, ``integer``, ``bigint``, ``real``, ``double
  precision``: a numpy array (a NaN is sent as NaN), or a masked array whose
  masked values are sent as NULL;
- ``timestamp``, ``timestamptz``: a ``datetime64`` array, NaT sent as NULL
  (``timestamptz`` values in UTC);
- ``text``: a sequence of ``str`` or ``None``;
- ``bytes``: a sequence of ``bytes`` or ``None``, sent as they are (the
  geometry's WKB, which PostGIS reads with the geometry type's binary input).
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # then 32-bit flags and header extension length, both 0
TRAILER = b"\xff\xff"
FIXED = {"boolean": "?", "smallint": ">i2", "integer": ">i4", "bigint": ">i8", "real": ">f4",
         "double precision": ">f8"}
TIMESTAMPS = ("timestamp", "timestamptz")
_POSTGRES_EPOCH = np.datetime64("2000-01-01T00:00:00", "us")  # timestamps count microseconds from it


def copy_data(columns: Sequence[tuple[str, Any]], rows: int, chunk: int = 1 << 16) -> Iterator[bytes]:
    """The binary COPY data of ``rows`` rows, in pieces of ``chunk`` rows (memory stays bounded)."""
    yield SIGNATURE
    encoded = [_encoded(kind, values) for kind, values in columns]
    for start in range(0, rows, chunk):
        yield _rows(encoded, start, min(start + chunk, rows))
    yield TRAILER


def _encoded(kind: str, values) -> tuple[str, np.ndarray]:
    """A column ready for :func:`_rows`: fixed-width values as such, the others (and NULLs) as bytes."""
    if kind not in FIXED:
        return kind, _variable(kind, values)
    if not (isinstance(values, np.ma.MaskedArray) and values.mask.any()):
        return kind, np.asarray(values, FIXED[kind])
    data = np.asarray(values.data, FIXED[kind])
    encoded = np.array(data.view(f"V{data.itemsize}").tolist(), dtype=object)
    encoded[values.mask] = None
    return "bytes", encoded


def _variable(kind: str, values) -> np.ndarray:
    """The binary forms of a variable-length (or nullable) column: an object array of bytes, None for NULL."""
    if kind in TIMESTAMPS:
        times = np.asarray(values, "datetime64[us]")
        micros = (times - _POSTGRES_EPOCH).astype(">i8")
        encoded = np.array(micros.view("V8").tolist(), dtype=object)
        encoded[np.isnat(times)] = None
        return encoded
    if kind == "text":
        try:
            encoded = list(map(str.encode, values))  # the common case: no NULL
        except TypeError:
            encoded = [None if value is None else value.encode("utf-8") for value in values]
        return np.array(encoded, dtype=object)
    if kind == "bytes":
        return np.asarray(values, dtype=object)
    raise ValueError(f"no binary COPY encoding for {kind}")


def _rows(columns: list[tuple[str, np.ndarray]], start: int, stop: int) -> bytes:
    """Rows ``start:stop``: per row, packed fixed-width parts alternating with variable-length values."""
    count = stop - start
    pieces: list[Sequence[bytes]] = []  # one sequence of ``count`` bytes per position in a row
    packed: list[tuple[str, str, np.ndarray]] = [("fields", ">i2", np.full(count, len(columns)))]
    for index, (kind, values) in enumerate(columns):
        part = values[start:stop]
        if kind in FIXED:
            packed += [(f"length{index}", ">i4", np.full(count, part.dtype.itemsize)),
                       (f"value{index}", part.dtype.str, part)]
            continue
        missing = part == None  # noqa: E711 (elementwise)
        data = np.where(missing, b"", part)
        lengths = np.fromiter(map(len, data), dtype=np.int64, count=count)
        lengths[missing] = -1
        packed.append((f"length{index}", ">i4", lengths))
        pieces += [_pack(packed), data]
        packed = []
    if packed:
        pieces.append(_pack(packed))
    table = np.empty((count, len(pieces)), dtype=object)
    for position, piece in enumerate(pieces):
        table[:, position] = piece
    return b"".join(table.ravel())


def _pack(fields: list[tuple[str, str, np.ndarray]]) -> list[bytes]:
    """Fixed-width fields side by side, as one bytes object per row."""
    packed = np.empty(len(fields[0][2]), dtype=[(name, kind) for name, kind, _ in fields])
    for name, _kind, values in fields:
        packed[name] = values
    return packed.view(np.dtype((np.void, packed.dtype.itemsize))).tolist()

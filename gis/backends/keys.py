"""API keys of partners, stored hashed in the catalog's store (both backends).

A key opens ``shared`` layers to a partner (see ``server/access.py``, which
decides). Only the key's SHA-256 is stored, never the key: keys are 192
random bits, so a plain hash cannot be reversed by guessing and a slow
password hash would only cost every request time. Each key has a short
public id (its first characters, shown by ``lutece keys list`` and used to
revoke it) that says nothing of the secret part.

The table is created on the first key, self-contained, next to the catalog's
tables: ``lutece_api_keys`` in ``catalog.gpkg``, ``lutece.api_keys`` on
PostGIS. Reading a store without the table gives no key.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from gis.records import utc_now
from gis.errors import InputError, LayerNotFound

KEY_PREFIX = "lutece"
COLUMNS = ("key_id", "partner", "layers", "key_hash", "created", "expires", "revoked")

_GPKG_TABLE = """
CREATE TABLE IF NOT EXISTS lutece_api_keys (
    key_id TEXT PRIMARY KEY,
    partner TEXT NOT NULL,
    layers TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL,
    expires TEXT,
    revoked TEXT
)"""
_PG_TABLE = """
CREATE TABLE IF NOT EXISTS lutece.api_keys (
    key_id text PRIMARY KEY,
    partner text NOT NULL,
    layers jsonb NOT NULL,
    key_hash text NOT NULL UNIQUE,
    created text NOT NULL,
    expires text,
    revoked text
)"""


@dataclass(frozen=True)
class ApiKey:
    """A partner's key as stored (without the key itself)."""

    key_id: str
    partner: str
    layers: tuple[str, ...]
    key_hash: str
    created: str
    expires: str | None = None
    revoked: str | None = None

    def active(self, now: datetime | None = None) -> bool:
        """Not revoked and not expired at ``now`` (default: now)."""
        if self.revoked:
            return False
        if self.expires:
            now = now or datetime.now(timezone.utc)
            return now < datetime.fromisoformat(self.expires)
        return True

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.key_id, "partner": self.partner, "layers": list(self.layers), "created": self.created,
                "expires": self.expires, "revoked": self.revoked}


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str]:
    """A new key and its public id: ``lutece_<id>_<secret>``."""
    key_id = secrets.token_hex(4)
    return f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(24)}", key_id


def parse_expiry(text: str | None) -> str | None:
    """``YYYY-MM-DD`` (end of that day, UTC) or an ISO 8601 time, as an ISO UTC time; must be in the future."""
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"--expires {text!r} is not a date; use YYYY-MM-DD or an ISO 8601 time") from None
    if len(text) == 10:  # a date: the key works through that whole day
        moment = moment.replace(hour=23, minute=59, second=59)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if moment <= datetime.now(timezone.utc):
        raise InputError(f"--expires {text} is in the past; give a later date")
    return moment.astimezone(timezone.utc).isoformat()


class KeyStore:
    """The API keys of one backend (GeoPackage or PostGIS)."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.postgis = backend.name == "postgis"

    # -- writing ----------------------------------------------------------------------------------
    def create(self, partner: str, layers: list[str], expires: str | None = None) -> tuple[str, ApiKey]:
        """Make a key for ``partner`` opening ``layers``; return the key (shown once) and its record.

        Raises
        ------
        InputError
            No partner name, no layer, or a layer that is not in the catalog.
        """
        partner = (partner or "").strip()
        if not partner:
            raise InputError("--partner is empty; name the partner the key is for")
        layers = sorted({name.strip() for name in layers if name.strip()})
        if not layers:
            raise InputError("--layers is empty; list the shared layers the key opens, e.g. --layers trees,parcels")
        for layer_id in layers:
            if self.backend.find_layer(layer_id) is None:
                raise LayerNotFound(f"--layers: no layer {layer_id!r} in the catalog; see 'lutece layers list'")
        key, key_id = new_key()
        record = ApiKey(key_id, partner, tuple(layers), hash_key(key), utc_now(), parse_expiry(expires))
        row = (record.key_id, record.partner, json.dumps(list(record.layers)), record.key_hash, record.created,
               record.expires, record.revoked)
        if self.postgis:
            with self.backend._transaction() as cur:
                cur.execute(_PG_TABLE)
                cur.execute("INSERT INTO lutece.api_keys VALUES (%s, %s, %s::jsonb, %s, %s, %s, %s)", row)
        else:
            with self.backend._write() as con:
                con.execute(_GPKG_TABLE)
                con.execute("INSERT INTO lutece_api_keys VALUES (?, ?, ?, ?, ?, ?, ?)", row)
        return key, record

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key by its id (idempotent); raises :class:`~gis.errors.InputError` for an unknown id."""
        now = utc_now()
        if self.postgis:
            with self.backend._transaction() as cur:
                cur.execute(_PG_TABLE)
                cur.execute("UPDATE lutece.api_keys SET revoked=COALESCE(revoked, %s) WHERE key_id=%s", (now, key_id))
                found = cur.rowcount
        else:
            with self.backend._write() as con:
                con.execute(_GPKG_TABLE)
                found = con.execute("UPDATE lutece_api_keys SET revoked=COALESCE(revoked, ?) WHERE key_id=?",
                                    (now, key_id)).rowcount
        if not found:
            raise InputError(f"no API key with id {key_id!r}; see 'lutece keys list'")
        return next(key for key in self.list() if key.key_id == key_id)

    # -- reading ----------------------------------------------------------------------------------
    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        if self.postgis:
            with self.backend._cursor() as cur:
                cur.execute("SELECT to_regclass('lutece.api_keys') IS NOT NULL")
                if not cur.fetchone()[0]:
                    return []
                cur.execute(f"SELECT {', '.join(COLUMNS)} FROM lutece.api_keys ORDER BY created, key_id")
                rows = cur.fetchall()
        else:
            with self.backend._read() as con:
                exists = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='lutece_api_keys'")
                if exists.fetchone() is None:
                    return []
                rows = [tuple(row) for row in
                        con.execute(f"SELECT {', '.join(COLUMNS)} FROM lutece_api_keys ORDER BY created, key_id")]
        return [_record(row) for row in rows]


def _record(row: tuple) -> ApiKey:
    data = dict(zip(COLUMNS, row))
    layers = data["layers"]
    data["layers"] = tuple(json.loads(layers) if isinstance(layers, str) else layers)
    return ApiKey(**data)

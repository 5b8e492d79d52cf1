"""Who may see which layer: the ONE place where visibility is decided.

Every route, listing and document of the server asks :func:`can_see`; a
layer a caller may not see is answered exactly as a layer that does not
exist. The rule:

- ``open`` layers: everyone;
- ``shared`` layers: a partner whose (active) key lists the layer;
- ``internal`` layers: never served;
- a withdrawn layer (no current version): nobody.

A request becomes a :class:`Caller` through :func:`caller_for`: the key comes
in ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``; an unknown, revoked or
expired key makes an anonymous caller (no oracle on which keys exist).
Keys are looked up in a :class:`Keyring`, an in-memory copy of the store's
hashed keys that the server's follower refreshes every second or so, so a
revocation takes effect within seconds in every worker without a query per
request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from gis.backends.keys import ApiKey, hash_key
from gis.records import Layer


@dataclass(frozen=True)
class Caller:
    """Who is asking: anonymous (``partner`` None) or a partner with the layer ids its key opens."""

    partner: str | None = None
    layers: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None

    @property
    def anonymous(self) -> bool:
        return self.partner is None


ANONYMOUS = Caller()


def can_see(caller: Caller | None, layer: Layer | None) -> bool:
    """Whether ``caller`` (None: anonymous) may see ``layer`` (None: a layer that does not exist)."""
    if layer is None or layer.current_version is None:
        return False
    if layer.access == "open":
        return True
    if layer.access == "shared":
        return caller is not None and caller.partner is not None and layer.id in caller.layers
    return False


def visible(caller: Caller | None, layers: Iterable[Layer]) -> list[Layer]:
    """The layers ``caller`` may see, in the given order."""
    return [layer for layer in layers if can_see(caller, layer)]


class Keyring:
    """The active keys by hash, replaced whole when the store's keys change."""

    def __init__(self, keys: Iterable[ApiKey] = ()) -> None:
        self._by_hash: dict[str, ApiKey] = {}
        self.replace(keys)

    def replace(self, keys: Iterable[ApiKey]) -> None:
        self._by_hash = {key.key_hash: key for key in keys if not key.revoked}  # one assignment: atomic

    def caller(self, key: str | None, now: datetime | None = None) -> Caller:
        """The caller a presented key stands for (anonymous when it is missing, unknown, revoked or expired)."""
        if not key:
            return ANONYMOUS
        record = self._by_hash.get(hash_key(key))
        if record is None or not record.active(now or datetime.now(timezone.utc)):
            return ANONYMOUS
        return Caller(record.partner, frozenset(record.layers), record.key_id)


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The API key of a request's headers: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    authorization = headers.get("Authorization") or ""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    key = (headers.get("X-API-Key") or "").strip()
    return key or None


def caller_for(headers: Mapping[str, str], keyring: Keyring) -> Caller:
    """The :class:`Caller` of a request, from its headers."""
    return keyring.caller(presented_key(headers))

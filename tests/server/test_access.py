"""The access rule, the keyring and the key store (hashed, on both backends)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gis.backends.keys import ApiKey, KeyStore, hash_key, parse_expiry
from gis.records import Layer
from gis.errors import InputError, LayerNotFound
from server.access import ANONYMOUS, Caller, Keyring, caller_for, can_see, presented_key


def layer(layer_id: str, access: str, current: int | None = 1) -> Layer:
    return Layer(id=layer_id, title=layer_id, kind="vector", crs="EPSG:2154", licence="ODbL-1.0", access=access,
                 current_version=current)


PARTNER = Caller("acme", frozenset({"trees"}))


@pytest.mark.parametrize("target, anonymous, partner", [
    (layer("streets", "open"), True, True),
    (layer("trees", "shared"), False, True),
    (layer("rooms", "shared"), False, False),  # shared, but not in the partner's key
    (layer("trees", "internal"), False, False),  # internal: never, whatever the key lists
    (layer("trees", "shared", current=None), False, False),  # withdrawn
    (layer("streets", "open", current=None), False, False),
    (None, False, False),  # does not exist
])
def test_can_see(target, anonymous, partner):
    assert can_see(None, target) is anonymous
    assert can_see(ANONYMOUS, target) is anonymous
    assert can_see(PARTNER, target) is partner


def test_presented_key_from_either_header():
    assert presented_key({"Authorization": "Bearer abc"}) == "abc"
    assert presented_key({"Authorization": "bearer  abc "}) == "abc"
    assert presented_key({"X-API-Key": "xyz"}) == "xyz"
    assert presented_key({"Authorization": "Basic Zm9v"}) is None
    assert presented_key({}) is None


def test_keyring_ignores_unknown_revoked_and_expired_keys():
    now = datetime.now(timezone.utc)
    good = ApiKey("a1", "acme", ("trees",), hash_key("k-good"), now.isoformat())
    revoked = ApiKey("a2", "acme", ("trees",), hash_key("k-revoked"), now.isoformat(), revoked=now.isoformat())
    expired = ApiKey("a3", "acme", ("trees",), hash_key("k-expired"), now.isoformat(),
                     expires=(now - timedelta(seconds=1)).isoformat())
    ring = Keyring([good, revoked, expired])
    assert caller_for({"X-API-Key": "k-good"}, ring) == Caller("acme", frozenset({"trees"}), "a1")
    for key in ("k-revoked", "k-expired", "k-unknown", ""):
        assert caller_for({"X-API-Key": key}, ring) == ANONYMOUS


def test_expiry_dates():
    assert parse_expiry("2999-01-31").startswith("2999-01-31T23:59:59")
    with pytest.raises(InputError, match="in the past"):
        parse_expiry("2000-01-01")
    with pytest.raises(InputError, match="not a date"):
        parse_expiry("next week")


def test_key_store_keeps_only_hashes(catalog, cadastre):
    catalog.publish(cadastre, "trees", licence="restricted", access="shared")
    store = KeyStore(catalog.backend)
    assert store.list() == []
    key, record = store.create("acme", ["trees"], "2999-12-31")
    assert record.key_hash == hash_key(key) and key not in repr(record)
    listed = store.list()
    assert [k.key_id for k in listed] == [record.key_id] and listed[0].layers == ("trees",)
    assert _raw_store_contains(catalog.backend, key) is False
    assert _raw_store_contains(catalog.backend, record.key_hash) is True  # the oracle can find what is there
    revoked = store.revoke(record.key_id)
    assert revoked.revoked and not revoked.active()
    with pytest.raises(InputError, match="no API key"):
        store.revoke("nope")
    with pytest.raises(LayerNotFound):
        store.create("acme", ["no-such-layer"])
    with pytest.raises(InputError):
        store.create(" ", ["trees"])


def _raw_store_contains(backend, text: str) -> bool:
    """Whether ``text`` appears anywhere in the store's files or key table (read raw)."""
    if backend.name == "geopackage":
        backend_files = [backend.gpkg, backend.gpkg.with_name(backend.gpkg.name + "-wal")]
        return any(path.is_file() and text.encode() in path.read_bytes() for path in backend_files)
    with backend._cursor() as cur:
        cur.execute("SELECT count(*) FROM lutece.api_keys WHERE row_to_json(api_keys)::text LIKE %s",
                    (f"%{text}%",))
        return cur.fetchone()[0] > 0

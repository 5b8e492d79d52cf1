"""``lutece mirror`` against a real server (gunicorn) on loopback: syncs, the randomised sequence, interruptions.

The truth is the test's own record of what it published and how each layer
is classified now, and the bytes the server serves; the mirror must hold
exactly the current versions of the currently open layers, byte for byte,
and no layer that was never open may appear anywhere (mirror or feeds).
``LUTECE_MIRROR_SEED`` picks another sequence; ``LUTECE_MIRROR_STEPS`` its length.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from live_city import ROOT, City, _write_config
from mirror_support import (KINDS, OPEN_LICENCES, free_port, kill_group, make_product, mirror_command, run_mirror,
                            snapshot, start_on)
from gis.mirror.sync import sync

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("LUTECE_MIRROR_SEED", "20261203"))
STEPS = int(os.environ.get("LUTECE_MIRROR_STEPS", "200"))  # the 200 operations, on GeoPackage
POSTGIS_STEPS = int(os.environ.get("LUTECE_MIRROR_POSTGIS_STEPS", "40"))  # the same code above another store


@pytest.fixture(params=["geopackage", "postgis"])
def city(request, tmp_path, district) -> City:
    """An empty city on each backend (a fresh database on PostGIS)."""
    folder = tmp_path / "city"
    folder.mkdir()
    store = {"backend": request.param, "path": str(folder / "city"), "retention": 3}
    if request.param == "postgis":
        cluster = request.getfixturevalue("server_postgis")
        database = f"m_{uuid.uuid4().hex[:16]}"
        cluster.create_database(database)
        request.addfinalizer(lambda: cluster.drop_database(database))
        store["dsn"] = cluster.dsn(database)
    return City(request.param, store, _write_config(folder, store, "server:\n  poll_interval: 0.5\n"), district)


@pytest.fixture
def served(city, tmp_path):
    """The city with one open layer of each kind and a shared one, behind a real server on a fixed port."""
    with city.catalog() as catalog:
        for index, kind in enumerate(KINDS):
            catalog.publish(make_product(tmp_path, kind, index), f"open-{kind[:4]}", kind=kind,
                            licence=OPEN_LICENCES[index % len(OPEN_LICENCES)], access="open", title=f"Ouverte {kind}")
        catalog.publish(make_product(tmp_path, "vector", 9), "hidden-vect", licence="restricted", access="shared",
                        title="Cachée")
        catalog.publish(make_product(tmp_path, "cityjson", 9), "hidden-city", licence="restricted", access="shared",
                        title="Maquette cachée")
    server = start_on(city, tmp_path, free_port())
    yield server
    kill_group(server.process)


def served_files(source: str, fetched: dict[str, str] | None = None, body: bytes | None = None) -> dict[str, str]:
    """What the server serves now: each open dataset's files, fetched and hashed (dataset/name -> sha256).

    ``fetched`` caches the hash per URL across calls (a download URL names one immutable version);
    ``body`` is the catalogue (JSON-LD) when already fetched.
    """
    import rdflib
    from rdflib.namespace import DCAT, DCTERMS

    body = body if body is not None else requests.get(f"{source}/catalog", timeout=60).content
    graph = rdflib.Graph().parse(data=body, format="json-ld")
    found = {}
    for node in graph.subjects(rdflib.RDF.type, DCAT.Dataset):
        layer_id = str(graph.value(node, DCTERMS.identifier))
        for distribution in graph.objects(node, DCAT.distribution):
            url = graph.value(distribution, DCAT.downloadURL)
            if url is not None:
                if fetched is None or str(url) not in fetched:
                    digest = hashlib.sha256(requests.get(str(url), timeout=60).content).hexdigest()
                    if fetched is not None:
                        fetched[str(url)] = digest
                found[f"{layer_id}/{str(url).rsplit('/', 1)[1]}"] = digest if fetched is None else fetched[str(url)]
    return found


def mirrored_files(target: Path) -> dict[str, str]:
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    found = {}
    for dataset in index["datasets"]:
        for item in dataset["files"]:
            found[f"{dataset['id']}/{item['name']}"] = hashlib.sha256((target / item["path"]).read_bytes()).hexdigest()
    data = {p.relative_to(target / "datasets").as_posix() for p in (target / "datasets").rglob("*")
            if p.is_file() and p.name not in ("dcat.jsonld", "LICENCE.txt")} if (target / "datasets").is_dir() else set()
    assert data == set(found), "files in the datasets' folders that the index does not list (or the reverse)"
    return found


def test_first_sync_then_incremental_then_withdrawal(served, city, tmp_path):
    target = tmp_path / "mirror"
    first = sync(served.url, target)
    assert first.datasets == 4 and mirrored_files(target) == served_files(served.url)
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    for hidden in ("hidden-vect", "Cachée", "hidden-city", "Maquette cachée"):
        assert hidden not in (target / "index.json").read_text() + (target / "index.html").read_text()
    # the CityJSON is mirrored as published, byte for byte
    model = (target / "datasets" / "open-city" / "open-city-v1.city.json").read_bytes()
    assert model == make_product(tmp_path / "again", "cityjson", 3).read_bytes()
    notice = (target / "datasets" / "open-vect" / "LICENCE.txt").read_text(encoding="utf-8")
    assert "ODbL" in notice and "Share-alike" in notice and "Partage à l'identique" in notice
    assert "Share-alike" not in (target / "datasets" / "open-rast" / "LICENCE.txt").read_text(encoding="utf-8")
    assert {d["id"] for d in index["datasets"]} == {"open-vect", "open-rast", "open-mesh", "open-city"}
    # nothing changed: one request in all
    again = sync(served.url, target)
    assert again.unchanged and again.requests == 1 and again.downloaded == []
    # one layer changes: the feed (which describes it) and that layer's one file: no catalogue
    with city.catalog() as catalog:
        catalog.publish(make_product(tmp_path, "raster", 42), "open-rast")
    changed = sync(served.url, target)
    assert changed.downloaded == ["open-rast/open-rast-v2.tif"] and changed.requests == 2
    assert mirrored_files(target) == served_files(served.url)
    assert not (target / "datasets" / "open-rast" / "open-rast-v1.tif").exists()
    assert "open-rast-v2.tif" in (target / "datasets" / "open-rast" / "dcat.jsonld").read_text()  # from the feed
    # a withdrawal and a reclassification to shared: out of the current index; with grace, archived
    with city.catalog() as catalog:
        catalog.withdraw("open-mesh")
        catalog.reclassify("open-vect", "shared", licence="ODbL-1.0")
    report = sync(served.url, target, grace_days=30)
    assert sorted(report.archived) == ["open-mesh", "open-vect"]
    index = json.loads((target / "index.json").read_text(encoding="utf-8"))
    assert [d["id"] for d in index["datasets"]] == ["open-city", "open-rast"]
    assert sorted(a["id"] for a in index["archived"]) == ["open-mesh", "open-vect"]
    assert (target / "archive" / "open-vect" / "open-vect-v1.gpkg").is_file()
    assert mirrored_files(target) == served_files(served.url)


def test_bad_source_and_unreachable_server_give_one_error_line(tmp_path):
    result = run_mirror("ftp://example.org", tmp_path / "m")
    assert result.returncode == 1 and result.stderr.strip().startswith("Error: --source") and "Traceback" not in result.stderr
    result = run_mirror(f"http://127.0.0.1:{free_port()}", tmp_path / "m")
    assert result.returncode == 1 and "unreachable" in result.stderr and "next run retries" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()  # a first sync that got nothing leaves no folder behind


# -- the randomised sequence ------------------------------------------------------------------------
def test_randomised_operations_keep_the_mirror_exact_and_leak_nothing(city, tmp_path):
    rng = random.Random(SEED)
    steps = STEPS if city.backend == "geopackage" else POSTGIS_STEPS  # the same code above the store
    print(f"randomised mirror sequence on {city.backend}: seed {SEED}, {steps} operations "
          f"(LUTECE_MIRROR_SEED, LUTECE_MIRROR_STEPS, LUTECE_MIRROR_POSTGIS_STEPS)")
    ids = {f"lyr-{kind[:4]}-{n}": kind for n in range(2) for kind in KINDS}
    access = {}  # the test's own record: layer -> (access, withdrawn)
    ever_open: set[str] = set()
    fetched: dict[str, str] = {}
    target = tmp_path / "mirror"
    city.catalog().close()  # creates the empty city the server opens
    server = start_on(city, tmp_path, free_port())
    started = time.monotonic()
    try:
        with city.catalog() as catalog:
            for step in range(steps):
                operation = _random_operation(catalog, rng, ids, access, tmp_path, step)
                open_now = {layer for layer, (level, withdrawn) in access.items() if level == "open" and not withdrawn}
                ever_open |= open_now
                sync(server.url, target)
                _check_step(server.url, target, open_now, set(ids) - ever_open, fetched, (step, operation))
    finally:
        kill_group(server.process)
    print(f"{steps} operations in {time.monotonic() - started:.0f} s")


def _check_step(source: str, target: Path, open_now: set[str], never: set[str], fetched: dict, where) -> None:
    """The mirror holds exactly the open layers' served files; no hidden layer in the feeds or the mirror."""
    catalogue = requests.get(f"{source}/catalog", timeout=60).content
    mirrored = mirrored_files(target)
    assert {key.split("/")[0] for key in mirrored} == open_now, where
    assert mirrored == served_files(source, fetched, catalogue), where
    feed = requests.get(f"{source}/changes?since=0&limit=1000", timeout=60)
    assert set(feed.json()["datasets"]) <= open_now, where  # described: only what is public now
    turtle = requests.get(f"{source}/catalog?f=ttl", timeout=60).text
    index = (target / "index.json").read_text() + (target / "index.html").read_text()
    current = catalogue.decode() + turtle + index
    for layer in never:  # never open: not even in a withdrawal
        assert not re.search(rf"\b{layer}\b", current + feed.text), (where, layer)
    named = set(re.findall(r"\blyr-[a-z]{4}-\d\b", current))  # the catalogue, its Turtle, the mirror's index
    assert named <= open_now, (where, named - open_now)


def _random_operation(catalog, rng: random.Random, ids: dict[str, str], access: dict, folder: Path, step: int):
    """One real operation on a random layer: a creation, or one of those its state allows (no no-op)."""
    layer = rng.choice(sorted(ids))
    kind = ids[layer]
    if layer not in access:
        level = rng.choice(["open", "open", "shared", "internal"])
        licence = rng.choice(OPEN_LICENCES) if level == "open" else "restricted"
        catalog.publish(make_product(folder, kind, 1000 + step), layer, kind=kind, licence=licence, access=level,
                        title=f"Couche {layer}")
        access[layer] = (level, False)
        return ("create", layer, level)
    level, withdrawn = access[layer]
    current = catalog.layer(layer).current_version
    earlier = [v.number for v in catalog.history(layer) if v.number != current]
    allowed = ["publish", "publish", "reclassify", "reclassify"] + ([] if withdrawn else ["withdraw"]) + \
        (["rollback"] if earlier else [])
    choice = rng.choice(allowed)
    if choice == "publish":
        catalog.publish(make_product(folder, kind, 1000 + step), layer, kind=kind)
        access[layer] = (level, False)
    elif choice == "withdraw":
        catalog.withdraw(layer)
        access[layer] = (level, True)
    elif choice == "reclassify":
        new = rng.choice([other for other in ("open", "shared", "internal") if other != level])
        licence = rng.choice(OPEN_LICENCES) if new == "open" else "restricted"
        catalog.reclassify(layer, new, licence=licence)
        access[layer] = (new, withdrawn)
    else:
        catalog.rollback(layer, to=rng.choice(earlier))
        access[layer] = (level, False)
    return (choice, layer, access[layer])


# -- interruptions ----------------------------------------------------------------------------------
@pytest.fixture
def big(city, tmp_path):
    """A served city with a big (16 MB) raster, the mirror synced once before it was published."""
    with city.catalog() as catalog:
        catalog.publish(make_product(tmp_path, "vector", 1), "small", licence="etalab-2.0", access="open", title="S")
    port = free_port()
    server = start_on(city, tmp_path, port)
    target = tmp_path / "mirror"
    sync(server.url, target)
    with city.catalog() as catalog:
        catalog.publish(make_product(tmp_path, "raster", 2, big=True), "large", licence="etalab-2.0", access="open",
                        title="L")
    yield server, target, port
    kill_group(server.process)


def _partial(target: Path) -> Path | None:
    found = list((target / ".lutece-mirror" / "staging").glob("*.part"))
    return found[0] if found else None


def test_kill_9_during_a_download_leaves_the_mirror_as_it_was(big):
    server, target, _port = big
    before = snapshot(target)
    process = subprocess.Popen(mirror_command(server.url, target), env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_partial(target) and _partial(target).stat().st_size > 0):
        time.sleep(0.005)
    process.kill()
    process.wait()
    assert snapshot(target) == before
    result = run_mirror(server.url, target)
    assert result.returncode == 0, result.stderr
    assert mirrored_files(target) == served_files(server.url)


def test_server_killed_mid_download_then_restarted(big, city, tmp_path):
    server, target, port = big
    before = snapshot(target)
    process = subprocess.Popen(mirror_command(server.url, target), env={**os.environ, "PYTHONPATH": str(ROOT)},
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (_partial(target) and _partial(target).stat().st_size > 0):
        time.sleep(0.005)
    kill_group(server.process)
    _out, err = process.communicate(timeout=120)
    assert process.returncode == 1 and err.startswith("Error: ") and "next run" in err, err
    assert snapshot(target) == before
    down = run_mirror(server.url, target)  # the server is down: nothing changes either
    assert down.returncode == 1 and "unreachable" in down.stderr and snapshot(target) == before
    restarted = start_on(city, tmp_path, port)
    try:
        result = run_mirror(restarted.url, target)
        assert result.returncode == 0, result.stderr
        assert mirrored_files(target) == served_files(restarted.url)
    finally:
        kill_group(restarted.process)


def test_a_corrupted_download_is_refused_and_redone(big, city):
    server, target, _port = big
    before = snapshot(target)
    served = served_files(server.url)  # builds the downloads; now corrupt the cached GeoPackage on the server
    cached = next(Path(city.store["path"]).glob("downloads/small/*/small-v1.gpkg"))
    with city.catalog() as catalog:  # a new version of "small" so that the mirror needs the corrupted file
        catalog.publish(make_product(cached.parent, "vector", 77), "small")
    served = served_files(server.url)
    cached = next(Path(city.store["path"]).glob("downloads/small/*/small-v2.gpkg"))
    good = cached.read_bytes()
    cached.write_bytes(good[:1000] + bytes([good[1000] ^ 0xFF]) + good[1001:])
    result = run_mirror(server.url, target)
    assert result.returncode == 1 and "does not match the catalogue's checksum" in result.stderr, result.stderr
    assert snapshot(target) == before
    staged = [path for path in (target / ".lutece-mirror" / "staging").iterdir() if len(path.name) == 64]
    assert staged  # the large raster's download ended, verified, and waits in staging for the next run
    for path in staged:  # not synced yet: a power cut may leave it with its size and other bytes
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
    cached.write_bytes(good)
    result = run_mirror(server.url, target)
    assert result.returncode == 0, result.stderr
    assert mirrored_files(target) == served


@pytest.fixture
def small_disk(tmp_path):
    """A folder on a 4 MB filesystem of its own (tmpfs, mounted as root), or None where mounting is not allowed."""
    folder = tmp_path / "small-disk"
    folder.mkdir()
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(folder)], capture_output=True)
    except OSError:  # no mount command
        mounted = None
    if mounted is None or mounted.returncode != 0:
        yield None
        return
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def _file_size_limit():
    """The mirror's process may write files of 1 MB at most (a full disk as the writer sees it: EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def test_a_full_disk_leaves_the_mirror_as_it_was(big, small_disk):
    """On a real 4 MB filesystem (ENOSPC), grown afterwards; where mounting is refused, a file-size limit (EFBIG)."""
    server, target, _port = big
    if small_disk is not None:  # the mirror synced before the 16 MB raster, moved onto the small disk
        shutil.copytree(target, small_disk / "mirror")
        target = small_disk / "mirror"
    print("full disk:", "a 4 MB tmpfs" if small_disk is not None else "a 1 MB file-size limit (mount refused)")
    before = snapshot(target)
    result = run_mirror(server.url, target, preexec_fn=None if small_disk is not None else _file_size_limit)
    assert result.returncode == 1 and "no space left" in result.stderr and "Traceback" not in result.stderr, \
        result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "run again" in result.stderr
    assert snapshot(target) == before and _partial(target) is None
    if small_disk is not None:  # space is freed (the filesystem grows), then the next run completes the mirror
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    result = run_mirror(server.url, target)
    assert result.returncode == 0, result.stderr
    assert mirrored_files(target) == served_files(server.url)


def test_watch_mode_shows_a_new_open_publication_within_10_seconds(served, city, tmp_path):
    target = tmp_path / "watched"
    process = subprocess.Popen(mirror_command(served.url, target, "--watch", "--interval", "1"),
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (target / "index.json").is_file():
            assert time.monotonic() < deadline and process.poll() is None, "the first sync did not happen"
            time.sleep(0.2)
        with city.catalog() as catalog:
            catalog.publish(make_product(tmp_path, "raster", 5), "nouvelle", licence="etalab-2.0", access="open",
                            title="Nouvelle couche")
        published = time.monotonic()
        while "nouvelle" not in {d["id"] for d in json.loads((target / "index.json").read_text())["datasets"]}:
            assert time.monotonic() - published < 10, "not in the mirror within 10 s"
            time.sleep(0.2)
        assert (target / "datasets" / "nouvelle" / "nouvelle-v1.tif").is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0

"""The mirror's commit: a sync killed after any step of applying its journal is finished by the next run."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from gis.mirror import state as records


def _tree(target: Path) -> dict[str, str]:
    return {path.relative_to(target).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(target.rglob("*")) if path.is_file() and path.name != "lock"}


def _mirror(folder: Path) -> tuple[Path, list[dict], dict]:
    """A mirror holding a v1 and a dataset about to be withdrawn, with v2 staged (one sha for two names)."""
    target = folder / "mirror"
    staging = records.staging(target)
    staging.mkdir(parents=True)
    (target / "datasets" / "a").mkdir(parents=True)
    (target / "datasets" / "a" / "a-v1.gpkg").write_bytes(b"version 1")
    (target / "datasets" / "gone").mkdir()
    (target / "datasets" / "gone" / "gone-v4.tif").write_bytes(b"withdrawn")
    (target / "index.json").write_text('{"old": true}')
    (staging / ("ab" * 32)).write_bytes(b"version 2")
    (staging / "index.json").write_text('{"new": true}')
    steps = [{"do": "copy", "from": f".lutece-mirror/staging/{'ab' * 32}", "to": "datasets/b/b-v1.gpkg"},
             {"do": "move", "from": f".lutece-mirror/staging/{'ab' * 32}", "to": "datasets/a/a-v2.gpkg"},
             {"do": "remove", "path": "datasets/a/a-v1.gpkg"},
             {"do": "rename-dir", "from": "datasets/gone", "to": "archive/gone"},
             {"do": "move", "from": ".lutece-mirror/staging/index.json", "to": "index.json"}]
    return target, steps, {"source": "http://x", "last_seq": 7, "datasets": {}, "archived": {}, "catalog_etag": None}


def test_a_commit_killed_after_any_step_is_finished_by_the_next_run(tmp_path):
    target, steps, state = _mirror(tmp_path / "reference")
    records.commit(target, steps, state)
    expected = _tree(target)
    assert expected["datasets/a/a-v2.gpkg"] == expected["datasets/b/b-v1.gpkg"]
    assert "datasets/a/a-v1.gpkg" not in expected and "archive/gone/gone-v4.tif" in expected
    for done in range(len(steps) + 1):
        target, steps, state = _mirror(tmp_path / f"killed-{done}")
        records.write_json(records.home(target) / "journal.json", {"steps": steps, "state": state})
        for step in steps[:done]:  # the kill came after these
            records._apply(target, step)
        assert records.apply_journal(target)  # the next run
        assert _tree(target) == expected, done
        assert not (records.home(target) / "journal.json").exists()
        assert json.loads((records.home(target) / "state.json").read_text())["last_seq"] == 7
        shutil.rmtree(target)

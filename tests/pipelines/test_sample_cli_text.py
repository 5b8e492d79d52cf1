"""``lutece sample info`` shows a folder's name and its manifest's text literally (never as Rich markup)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from pipelines.synthetic.cli import sample


def test_sample_info_shows_markup_in_names_literally(district, tmp_path):
    folder = tmp_path / "a[" / "]b [red]"  # the path reads "a[/]b [red]": a closing tag with nothing open
    folder.mkdir(parents=True)
    manifest = json.loads((district / "manifest.json").read_text(encoding="utf-8"))
    name, facts = next(iter(manifest["files"].items()))
    facts["description"] = "[/x] \x1b[31mrouge"
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = CliRunner().invoke(sample, ["info", str(folder)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, (result.output, result.exception)
    assert f"{tmp_path}/a[/]b [red]" in result.output
    assert "[/x] \\x1b[31mrouge" in result.output and "\x1b" not in result.output

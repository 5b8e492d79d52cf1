"""``lutece keys list`` shows a partner's name literally (never as Rich markup, no raw control characters)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from gis.backends.keys import KeyStore
from gis.catalog.service import Catalog
from gis.config import load_config
from gis.env import Env
from server.cli import keys

PARTNER = "Partenaire [/x] [red]rouge \x1b[31m"


def test_keys_list_shows_the_partner_literally(tmp_path, district):
    config = tmp_path / "lutece.yml"
    config.write_text(f"store:\n  path: {tmp_path / 'city'}\n", encoding="utf-8")
    with Catalog.from_config(load_config(config)) as catalog:
        catalog.publish(district / "district.gpkg", "trees", source_layer="trees", licence="etalab-2.0",
                        access="shared")
        KeyStore(catalog.backend).create(PARTNER, ["trees"])
    runner = CliRunner()
    table = runner.invoke(keys, ["list"], obj=Env(config_path=config), env={"COLUMNS": "400"})
    assert table.exit_code == 0, (table.output, table.exception)
    assert "Partenaire [/x] [red]rouge \\x1b[31m" in table.output and "\x1b" not in table.output
    listed = runner.invoke(keys, ["list", "--json"], obj=Env(config_path=config))
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["partner"] == PARTNER

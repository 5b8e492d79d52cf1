"""Click groups whose subcommands other packages add through an entry-point group (as rasterio's ``rio`` does).

The root ``lutece`` group finds the packages' groups in ``lutece.commands``;
``lutece tiles`` finds commands that need more than ``tiles/`` (``tiles interior``
reads building plans with ``pipelines/``) in ``lutece.tiles.commands``. So a
package never imports one that imports it: the entry points, declared in
pyproject.toml, point the other way.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import click


class EntryPointGroup(click.Group):
    """A click group that also lists and loads the commands of the entry-point group ``entry_point_group``."""

    def __init__(self, *args, entry_point_group: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entry_point_group = entry_point_group

    def _plugins(self) -> dict[str, object]:
        return {entry.name: entry for entry in entry_points(group=self.entry_point_group)}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command

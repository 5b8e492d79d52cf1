"""The public change feed: the catalog's events as the public may know them.

Each catalog event is seen through the layer's state before and after it, and
the caller's rule ``visible(layer)`` decides (the server passes its one
visibility function for an anonymous caller):

=====================  =================  ===================================================
visible before         visible after      public event
=====================  =================  ===================================================
no                     no                 none (nothing is told, not even that it happened)
no                     yes                ``publish`` (``rollback`` when it was one)
yes                    no                 ``withdraw``: the layer id and the time, nothing more
yes                    yes                the action (``publish``, ``rollback``; a licence
                                          change is told as a ``publish``)
=====================  =================  ===================================================

The public events carry a sequence number of their own, 1, 2, 3... in the
catalog's order: the catalog's numbers would show, by their gaps, how many
events the public is not told about. The rule looks at the event only, so
the numbering never changes once given.

Example
-------
>>> feed = PublicFeed(visible=lambda layer: layer.access == "open" and layer.current_version is not None)
>>> page = feed.page(catalog, since=0, limit=100)                                     # doctest: +SKIP
>>> page["events"][0]
{'seq': 1, 'layer': 'buildings', 'action': 'publish', 'version': 1, 'licence': 'ODbL-1.0', 'time': '...'}
"""

from __future__ import annotations

import threading
from typing import Any, Callable

from gis.errors import InputError
from gis.records import ChangeEvent, Layer

DEFAULT_LIMIT, MAX_LIMIT = 100, 1000
_BATCH = 5000  # catalog events read at a time when catching up


def _state(event: ChangeEvent, after: bool) -> Layer:
    """The layer as the event left it (``after``) or found it, as far as visibility goes."""
    return Layer(id=event.layer_id, title="", kind="", crs=None, licence=event.licence or "",
                 access=(event.access_after if after else event.access_before) or "",
                 current_version=event.version if after else event.previous_version)


def public_event(event: ChangeEvent, visible: Callable[[Layer], bool]) -> dict[str, Any] | None:
    """What the public is told of one catalog event (without its public ``seq``), or None."""
    before = visible(_state(event, after=False)) if event.access_before is not None else False
    after = visible(_state(event, after=True))
    if not before and not after:
        return None
    if before and not after:
        return {"layer": event.layer_id, "action": "withdraw", "time": event.time}
    action = "rollback" if event.action == "rollback" else "publish"
    return {"layer": event.layer_id, "action": action, "version": event.version, "licence": event.licence,
            "time": event.time}


class PublicFeed:
    """The public events, numbered, kept up to date incrementally from the catalog's feed.

    Parameters
    ----------
    visible
        ``visible(layer) -> bool``: whether the public may see a layer in
        that state (access level, current version).

    One instance serves many requests (thread-safe); it reads only the
    catalog events it has not read yet.
    """

    def __init__(self, visible: Callable[[Layer], bool]) -> None:
        self.visible = visible
        self._events: list[dict[str, Any]] = []
        self._read_up_to = 0  # the catalog seq read so far
        self._lock = threading.Lock()

    @property
    def read_up_to(self) -> int:
        """The catalog's seq read so far (it moves on also for events the public is not told)."""
        return self._read_up_to

    def last_time(self) -> str | None:
        """The time of the latest public event (None before the first)."""
        return self._events[-1]["time"] if self._events else None

    def refresh(self, catalog) -> int:
        """Read the catalog's new events; return the last public seq."""
        with self._lock:
            while True:
                batch = catalog.events(after=self._read_up_to, limit=_BATCH)
                for event in batch:
                    told = public_event(event, self.visible)
                    if told is not None:
                        self._events.append({"seq": len(self._events) + 1, **told})
                    self._read_up_to = event.seq
                if len(batch) < _BATCH:
                    return len(self._events)

    def page(self, catalog, since: int = 0, limit: int = DEFAULT_LIMIT) -> dict[str, Any]:
        """The public events after ``since``, at most ``limit`` of them.

        Returns
        -------
        dict
            ``events`` (each ``seq``, ``layer``, ``action``, ``time`` and, for
            a publication, ``version`` and ``licence``), ``since``, ``next``
            (the seq to ask from next time: the last one given, or ``since``),
            ``last`` (the latest public seq) and ``more`` (whether events
            after ``next`` exist already).

        Raises
        ------
        InputError
            ``since`` below 0 or past the latest public seq, or ``limit`` below 1.
        """
        if limit < 1:
            raise InputError("limit must be 1 or more")
        last = self.refresh(catalog)
        if since < 0 or since > last:
            raise InputError(f"since must be between 0 and {last}, the latest change")
        events = self._events[since:since + min(limit, MAX_LIMIT)]
        following = since + len(events)
        return {"events": [dict(event) for event in events], "since": since, "next": following, "last": last,
                "more": following < last}

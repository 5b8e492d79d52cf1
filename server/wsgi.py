"""Running the app under gunicorn: N worker processes, each with its own app built after the fork.

``gunicorn "server.wsgi:application()"`` also works (the configuration from
``$LUTECE_CONFIG`` or ``./lutece.yml``); ``lutece serve`` uses
:class:`GunicornServer`. SIGTERM: gunicorn stops accepting, lets the workers
finish the requests in flight (``graceful_timeout``), and each worker closes
its follower and connection pools on exit.
"""

from __future__ import annotations

import logging
import sys


def application(config_path: str | None = None):
    """A WSGI app for ``gunicorn "server.wsgi:application()"`` (one per worker)."""
    from gis.config import load_config
    from server.app import create_app

    return create_app(load_config(config_path))


def _worker_exit(_server, worker) -> None:
    app = getattr(worker, "wsgi", None)
    state = getattr(app, "extensions", {}).get("lutece") if app is not None else None
    if state is not None:
        state.close()


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(handler)
    logging.getLogger("lutece.access").setLevel(logging.INFO)
    logging.getLogger("pygeoapi").setLevel(logging.CRITICAL)  # its errors are answered as OGC exceptions


class GunicornServer:
    """gunicorn's application object for the Lutèce server."""

    def __new__(cls, config, settings: dict):
        from gunicorn.app.base import BaseApplication

        class _Server(BaseApplication):
            def load_config(self) -> None:
                self.cfg.set("bind", f"{settings['host']}:{settings['port']}")
                self.cfg.set("workers", int(settings["workers"]))
                self.cfg.set("worker_class", "sync")
                self.cfg.set("timeout", 60)
                self.cfg.set("graceful_timeout", 20)
                self.cfg.set("keepalive", 5)
                self.cfg.set("accesslog", None)  # our own access log: one line per request, no key
                self.cfg.set("worker_exit", _worker_exit)
                self.cfg.set("proc_name", "lutece-server")
                if "control_socket_disable" in self.cfg.settings:  # gunicorn >= 24: one fixed path per user
                    self.cfg.set("control_socket_disable", True)

            def load(self):
                from server.app import create_app

                _configure_logging()
                return create_app(config, settings)

        return _Server()

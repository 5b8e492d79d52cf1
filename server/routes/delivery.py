"""The delivery route families in one dispatcher that the app puts in front of pygeoapi.

:class:`DeliveryRoutes` answers a request when one of its families has a
rule for the path (3D Tiles, CityJSON files, vector tiles, coverages and maps,
the catalog's records, the open-data feeds) and returns ``None`` otherwise, so that the app hands the request on
(to pygeoapi). Errors become OGC exception bodies here, in one place: our own
errors with their status, anything else a 500 that shows no traceback.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Callable, Iterable

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect
from werkzeug.wrappers import Request, Response

from gis.errors import LuteceError
from server.routes import cityjson, coverages, feeds, records, tiles3d, vtiles
from server.routes.http import CORS_HEADERS, Delivery, error_response, not_found, ogc_error

log = logging.getLogger(__name__)


def families() -> list[ModuleType]:
    """The route families, each a module with ``RULES`` (a werkzeug Map) and ``handle()``."""
    return [records, tiles3d, cityjson, vtiles, coverages, feeds]


class DeliveryRoutes:
    """Dispatch a request to the family whose rules match its path.

    Parameters
    ----------
    delivery
        The catalog and the visibility rule (see :class:`~server.routes.http.Delivery`).
    """

    def __init__(self, delivery: Delivery, modules: Iterable[ModuleType] | None = None) -> None:
        self.delivery = delivery
        self.modules = list(modules) if modules is not None else families()
        # every family's rules in one map: most requests (pygeoapi's) are told "not ours" by one match
        self.any_rule = Map([rule.empty() for module in self.modules for rule in module.RULES.iter_rules()],
                            strict_slashes=False, merge_slashes=False)

    def __call__(self, request: Request) -> Response | None:
        if _match_map(self.any_rule, request) is None:
            return None
        for module in self.modules:
            matched = _match(module, request)
            if matched is None:
                continue
            endpoint, args = matched
            if request.method == "OPTIONS":
                return Response(status=204, headers=CORS_HEADERS)
            if request.method not in ("GET", "HEAD"):
                return ogc_error(405, "InvalidRequest", "method not allowed; use GET")
            response = self._answer(module, request, endpoint, args)
            if response is not None:
                return response
        return None

    def _answer(self, module: ModuleType, request: Request, endpoint: str, args: dict) -> Response | None:
        try:
            return module.handle(self.delivery, request, endpoint, **args)
        except LuteceError as error:
            return error_response(error)
        except HTTPException as error:  # werkzeug's own, e.g. 416 for a range past the end
            response = ogc_error(error.code or 400, "InvalidParameterValue", error.name)
            if error.code == 416 and getattr(error, "length", None) is not None:
                response.headers["Content-Range"] = f"bytes */{error.length}"
            return response
        except Exception:  # never a traceback in a body; the log has it
            log.exception("%s %s failed", request.method, request.path)
            return ogc_error(500, "NoApplicableCode", "internal server error")

    def wsgi(self, fallback: Callable | None = None) -> Callable:
        """A WSGI app: these routes, then ``fallback`` (a WSGI app), else the not-found answer."""
        def application(environ, start_response):
            request = Request(environ)
            response = self(request)
            if response is None:
                if fallback is not None:
                    return fallback(environ, start_response)
                response = not_found()
            return response(environ, start_response)

        return application


def _match(module: ModuleType, request: Request) -> tuple[str, dict] | None:
    return _match_map(module.RULES, request)


def _match_map(rules: Map, request: Request) -> tuple[str, dict] | None:
    adapter = rules.bind_to_environ(request.environ)
    try:
        return adapter.match(method="GET")
    except (HTTPException, RequestRedirect):
        return None

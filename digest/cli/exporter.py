"""``digest metrics-server``: the counts of one host's workers, for hosts without the web app.

Workers on another machine write their counts to that machine's ``PROMETHEUS_MULTIPROC_DIR``,
which the web app's ``/metrics`` cannot read. This command serves that directory's sum on
its own port, behind the same bearer token as ``/metrics``. The scrape-time gauges (readers,
editions, feeds, beat) are not repeated here: the web app's ``/metrics`` has them.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import typer
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from digest.cli.common import errors_to_exit, open_app, out
from digest.errors import ConfigError
from digest.metrics import multiprocess_dir, scrape_token

__all__ = ["exporter", "metrics_server"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def exporter(token: str, directory: str) -> WSGIApp:
    """A WSGI app serving the sum of ``directory`` to a bearer of ``token`` (401, 403)."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    inner = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scheme, _, given = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer"),
                                                ("Content-Type", "text/plain")])
            return [b"metrics token required\n"]
        if not hmac.compare_digest(given.strip().encode(), token.encode()):
            start_response("403 Forbidden", [("Content-Type", "text/plain")])
            return [b"wrong metrics token\n"]
        return inner(environ, start_response)  # type: ignore[no-any-return]

    return app


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@errors_to_exit
def metrics_server(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 9464,
) -> None:
    """Serve this host's worker counts (PROMETHEUS_MULTIPROC_DIR) to Prometheus."""
    directory = multiprocess_dir()
    if directory is None or not os.path.isdir(directory):
        raise ConfigError("PROMETHEUS_MULTIPROC_DIR must name the directory this host's "
                          "workers count into (docs/operating.md, Metrics)")
    token = scrape_token(open_app().settings)
    if token is None:
        raise ConfigError("set DIGEST_METRICS_TOKEN (or DIGEST_ADMIN_TOKEN): the counts are "
                          "served only to a bearer of it")
    server = make_server(host, port, exporter(token, directory), handler_class=_Quiet)
    out.print(f"serving {directory} on http://{host}:{port}/metrics", highlight=False)
    server.serve_forever()

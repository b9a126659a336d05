"""``mlops-lite ui``: the dashboard on the standard library's threading HTTP server."""

from __future__ import annotations

import ipaddress
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlops_lite.ui.app import Dashboard, Response

__all__ = ["DashboardServer", "serve"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_name(header: str) -> str:
    """The host of a ``Host`` header, without its port (``[::1]:80`` gives ``::1``)."""
    if header.startswith("["):
        return header[1 : header.find("]")]
    return header.rsplit(":", 1)[0]


class _Handler(BaseHTTPRequestHandler):
    server: DashboardServer
    server_version = "mlops-lite"
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._respond(head=False)

    def do_HEAD(self) -> None:
        self._respond(head=True)

    def _refuse_write(self) -> None:
        # Read-only: nothing a request sends can change the repository.
        self._send(
            Response(
                405,
                b"the dashboard is read-only\n",
                "text/plain; charset=utf-8",
                {"Allow": "GET, HEAD"},
            ),
            head=False,
        )

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse_write

    def _respond(self, *, head: bool) -> None:
        if not self._host_allowed():
            self._send(
                Response(421, b"unexpected Host header\n", "text/plain; charset=utf-8", {}),
                head=head,
            )
            return
        self._send(self.server.dashboard.handle(self.path), head=head)

    def _host_allowed(self) -> bool:
        # Served on loopback, only loopback names may be asked for: a web page
        # elsewhere cannot read the dashboard through DNS rebinding.
        if not self.server.loopback_only:
            return True
        return _is_loopback(_host_name(self.headers.get("Host") or ""))

    def _send(self, response: Response, *, head: bool) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if not head:
            self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class DashboardServer(ThreadingHTTPServer):
    """The HTTP server of one repository's dashboard; one thread per request."""

    daemon_threads = True

    def __init__(
        self, root: str, host: str = "127.0.0.1", port: int = 0, *, verbose: bool = False
    ) -> None:
        self.dashboard = Dashboard(root)
        self.loopback_only = _is_loopback(host)
        self.verbose = verbose
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        """Where the dashboard is served."""
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/"

    def start_in_background(self) -> threading.Thread:
        """Serve from a daemon thread (tests, benchmarks); ``shutdown()`` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="mlops-lite-ui", daemon=True)
        thread.start()
        return thread


def serve(
    root: str, *, host: str = "127.0.0.1", port: int = 8237, open_browser: bool = False
) -> None:
    """Serve the dashboard until interrupted."""
    with DashboardServer(root, host, port, verbose=False) as server:
        print(f"mlops-lite dashboard of {root}: {server.url}  (Ctrl-C stops it)", flush=True)
        if not _is_loopback(host):
            print(
                f"warning: listening on {host}: whoever reaches this address can read your runs",
                file=sys.stderr,
            )
        if open_browser:
            import webbrowser

            webbrowser.open(server.url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass

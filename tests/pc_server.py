"""A stand-in for Microsoft Planetary Computer on 127.0.0.1: its SAS token endpoint and its blob
storage, which refuses unsigned requests and requests with expired tokens.

The token endpoint answers ``GET /api/sas/v1/token/{account}/{container}`` like the real one
(``{"msft:expiry": ..., "token": "st=...&se=...&sp=rl&sig=..."}``); point the
``planetary-computer`` package at it with ``PC_SDK_SAS_URL``. Blob reads arrive as proxy
requests (``GDAL_HTTP_PROXY`` set to this server): the items keep their real
``http://<account>.blob.core.windows.net/<container>/<path>`` hrefs, and the file served is
``root/<path>``, with byte ranges. Every refusal and every token issued is counted.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse


class PlanetaryComputerStandIn:
    """``with PlanetaryComputerStandIn(root) as pc:`` → ``pc.proxy`` (host:port), ``pc.sas_url``."""

    def __init__(self, root: Path, token_seconds: float = 30.0) -> None:
        self.root, self.token_seconds = Path(root), token_seconds
        self.tokens: dict[str, dt.datetime] = {}  # sig -> expiry
        self.refused: list[tuple[str, str]] = []  # (path, why)
        self.served: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", ctype="application/json", headers=()):
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in headers:
                    self.send_header(k, v)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_HEAD(self):  # noqa: N802
                self.do_GET()

            def do_GET(self):  # noqa: N802
                u = urlparse(self.path)
                if u.path.startswith("/api/sas/v1/token/"):
                    return self._token()
                why = server.check(parse_qs(u.query))
                if why:
                    server.refused.append((u.path, why))
                    return self._send(403, json.dumps({"error": why}).encode())
                return self._file(u.path.lstrip("/").split("/", 1)[-1])  # drop the container

            def _token(self):
                sig = secrets.token_hex(8)
                exp = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=server.token_seconds)
                server.tokens[sig] = exp
                se = exp.strftime("%Y-%m-%dT%H:%M:%SZ")
                body = {"msft:expiry": exp.isoformat(), "token": f"st=2020-01-01T00%3A00%3A00Z&se={se}&sp=rl&sig={sig}"}
                self._send(200, json.dumps(body).encode())

            def _file(self, rel):
                f = (server.root / rel).resolve()
                if not f.is_file() or server.root.resolve() not in f.parents:
                    return self._send(404)
                size = f.stat().st_size
                start, end, code, extra = 0, size - 1, 200, []
                rng = self.headers.get("Range")
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].split(",")[0].partition("-")
                    start, end, code = int(a), min(int(b) if b else size - 1, size - 1), 206
                    extra.append(("Content-Range", f"bytes {start}-{end}/{size}"))
                with open(f, "rb") as fh:
                    fh.seek(start)
                    data = fh.read(end - start + 1)
                server.served.append(rel)
                self._send(code, data, "image/tiff", [("Accept-Ranges", "bytes"), *extra])

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.proxy = f"127.0.0.1:{port}"
        self.sas_url = f"http://127.0.0.1:{port}/api/sas/v1/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def check(self, query: dict) -> str | None:
        """Why a blob request is refused (no or unknown signature, expired token), or None."""
        sig = (query.get("sig") or [None])[0]
        if sig is None:
            return "unsigned"
        exp = self.tokens.get(sig)
        if exp is None:
            return "unknown signature"
        if dt.datetime.now(dt.timezone.utc) >= exp:
            return "token expired"
        return None

    def __enter__(self) -> "PlanetaryComputerStandIn":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A small STAC API on 127.0.0.1 for the tests: item search (collections, bbox, datetime and the
query extension's ``eo:cloud_cover``) plus the COG files themselves over HTTP with byte ranges,
so GDAL's ``/vsicurl/`` windowed reading is what gets exercised. Counts bytes served per file."""
from __future__ import annotations

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

CONFORMS = ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
            "https://api.stacspec.org/v1.0.0/item-search#query"]


def _overlaps(a, b) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def _in_range(date: str, spec: str | None) -> bool:
    if not spec:
        return True
    lo, _, hi = spec.partition("/") if "/" in spec else (spec, "", spec)
    lo, hi = (None if v in ("", "..") else v for v in (lo, hi))
    d = date[:10]
    return (lo is None or d >= lo[:10]) and (hi is None or d <= hi[:10])


def _query_ok(item, query) -> bool:
    for prop, ops in (query or {}).items():
        v = item["properties"].get(prop)
        for op, ref in ops.items():
            if v is None or not {"lt": v < ref, "lte": v <= ref, "gt": v > ref, "gte": v >= ref, "eq": v == ref}[op]:
                return False
    return True


class StacServer:
    """``with StacServer(root, items) as srv:`` → ``srv.url``; files under ``root`` at ``srv.url + path``."""

    def __init__(self, root: Path, items: list[dict]) -> None:
        self.root, self.items = Path(root), items
        self.bytes_served: Counter = Counter()
        self.searches: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, doc, code=200):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _search(self, params):
                server.searches.append(params)
                bbox = params.get("bbox")
                if isinstance(bbox, str):
                    bbox = [float(v) for v in bbox.split(",")]
                cols = params.get("collections")
                if isinstance(cols, str):
                    cols = cols.split(",")
                query = params.get("query")
                if isinstance(query, str):
                    query = json.loads(query)
                feats = [it for it in server.items
                         if (not cols or it.get("collection") in cols) and (not bbox or _overlaps(it["bbox"], bbox))
                         and _in_range(it["properties"]["datetime"], params.get("datetime"))
                         and _query_ok(it, query)]
                self._json({"type": "FeatureCollection", "features": feats, "links": []})

            def do_GET(self):  # noqa: N802
                u = urlparse(self.path)
                if u.path in ("/", ""):
                    return self._json({"type": "Catalog", "stac_version": "1.0.0", "id": "test-api",
                                       "description": "test", "conformsTo": CONFORMS, "links": [
                                           {"rel": "self", "href": server.url},
                                           {"rel": "root", "href": server.url},
                                           {"rel": "search", "href": server.url + "search", "method": "GET",
                                            "type": "application/geo+json"},
                                           {"rel": "search", "href": server.url + "search", "method": "POST",
                                            "type": "application/geo+json"}]})
                if u.path == "/conformance":
                    return self._json({"conformsTo": CONFORMS})
                if u.path == "/search":
                    return self._search({k: v[0] for k, v in parse_qs(u.query).items()})
                return self._file(u.path, head=False)

            def do_HEAD(self):  # noqa: N802
                return self._file(urlparse(self.path).path, head=True)

            def do_POST(self):  # noqa: N802
                if urlparse(self.path).path != "/search":
                    return self._json({"code": "NotFound"}, 404)
                n = int(self.headers.get("Content-Length", 0))
                return self._search(json.loads(self.rfile.read(n) or b"{}"))

            def _file(self, path, head):
                f = (server.root / path.lstrip("/")).resolve()
                if not f.is_file() or server.root.resolve() not in f.parents:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                size = f.stat().st_size
                rng = self.headers.get("Range")
                start, end = 0, size - 1
                if rng and rng.startswith("bytes="):
                    a, _, b = rng[6:].split(",")[0].partition("-")
                    start, end = int(a), min(int(b) if b else size - 1, size - 1)
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
                else:
                    self.send_response(200)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "image/tiff")
                self.send_header("Content-Length", str(end - start + 1))
                self.end_headers()
                if head:
                    return
                with open(f, "rb") as fh:
                    fh.seek(start)
                    data = fh.read(end - start + 1)
                server.bytes_served[str(f.relative_to(server.root.resolve()))] += len(data)
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "StacServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""Serve the built web UI at `/`, falling back to `index.html` so deep links survive a reload.

The UI is built from `ui/` into `static/` beside this module and ships inside the wheel.
It is the router's fallback, so it only sees requests no route matched (a known path with
the wrong method still gets the router's 405), whatever order routes are added in. Unknown
paths under the API prefixes keep answering a JSON 404, never the UI's HTML.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).with_name("static")

# Paths that belong to the server, not the UI.
_API_PREFIXES = ("/api/", "/v1/", "/docs", "/openapi.json", "/health", "/version")

_NOT_BUILT = """<!doctype html><html><head><meta charset="utf-8"><title>tracemark</title></head>
<body style="font-family:system-ui;margin:3em"><h1>tracemark</h1>
<p>The web UI is not built in this installation. Build it with <code>make ui</code>
(needs Node.js 20) or install a released wheel, which ships it.</p>
<p>The REST API is served at <a href="/docs">/docs</a>.</p></body></html>"""


class SinglePageApp:
    """An ASGI app: static files of the built UI, `index.html` for any other page path."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or STATIC_DIR).resolve()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer one request that no API route matched."""
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(_API_PREFIXES) or path.rstrip("/") in ("/api", "/v1"):
            raise StarletteHTTPException(404, f"no API endpoint at {path}")
        if scope["method"] not in ("GET", "HEAD"):
            raise StarletteHTTPException(405, "the web UI only answers GET")
        response = self._response(path)
        await response(scope, receive, send)

    def _response(self, path: str) -> Response:
        index = self.directory / "index.html"
        if not index.is_file():
            return HTMLResponse(_NOT_BUILT, status_code=503)
        relative = path.lstrip("/")
        if relative:
            candidate = (self.directory / relative).resolve()
            inside = candidate.is_relative_to(self.directory)
            if inside and candidate.is_file():
                # Vite fingerprints everything under assets/, so those never change.
                immutable = relative.startswith("assets/")
                cache = "public, max-age=31536000, immutable" if immutable else "no-cache"
                return FileResponse(candidate, headers={"cache-control": cache})
            if relative.startswith("assets/") or ("/" not in relative and "." in relative):
                # A missing file (a stale asset, a typo): a real 404, not the app's HTML.
                raise StarletteHTTPException(404, f"no file {path}")
        return FileResponse(index, headers={"cache-control": "no-cache"})


def mount_ui(app: FastAPI) -> None:
    """Serve the UI for every path that no route of `app` claims."""
    app.router.default = SinglePageApp()

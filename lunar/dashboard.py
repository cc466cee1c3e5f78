"""The fleet dashboard's files: ``GET /`` and ``GET /static/<file>``.

The page, its stylesheet and its JavaScript modules are plain files in
``lunar/static``, served as they are. Only names made of letters, digits,
``_``, ``-`` and ``.`` that start with a letter or digit, have a known
suffix and exist directly in that folder are served, so no request reaches
outside it. This module does not cache, compress or build anything, and it
does not serve subfolders.
"""

import logging
import re
from http import HTTPStatus
from pathlib import Path
from typing import Dict, List

from lunar.web import HttpError, Request, Response, Route

logger = logging.getLogger(__name__)

STATIC_DIRECTORY = Path(__file__).resolve().with_name("static")
INDEX_FILE = "index.html"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    # Browsers run module scripts only when served with a JavaScript type.
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# The page loads nothing from other origins and runs no inline script or style.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

_STATIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*", re.ASCII)


def dashboard_routes() -> List[Route]:
    """Return the routes of the page and its static files."""
    return [
        Route("/", {"GET": get_index}),
        Route("/static/{name}", {"GET": get_static_file}),
    ]


def get_index(request: Request) -> Response:
    """Serve the dashboard page."""
    return _file_response(INDEX_FILE)


def get_static_file(request: Request) -> Response:
    """Serve one file of ``lunar/static``, or 404."""
    return _file_response(request.params["name"])


def _file_response(name: str) -> Response:
    suffix = Path(name).suffix
    if not _STATIC_NAME.fullmatch(name) or suffix not in CONTENT_TYPES:
        raise HttpError(HTTPStatus.NOT_FOUND, f"no static file named {name!r}")
    path = STATIC_DIRECTORY / name
    try:
        body = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise HttpError(HTTPStatus.NOT_FOUND, f"no static file named {name!r}") from None
    except OSError as error:
        logger.error("cannot read static file %s: %s", path, error)
        raise HttpError(HTTPStatus.INTERNAL_SERVER_ERROR,
                        f"static file {name!r} could not be read; the server log has the details") from None
    headers: Dict[str, str] = {
        "Content-Type": CONTENT_TYPES[suffix],
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if suffix == ".html":
        headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return Response(HTTPStatus.OK, body, headers)

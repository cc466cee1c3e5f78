"""Cross-origin resource sharing (CORS): which browser origins may read lunar's responses.

A ``CorsPolicy`` lists the allowed origins and computes the headers that
``lunar.web`` adds: those of the response to a preflight request, and those of
an ordinary response to an allowed origin. A request from an origin that is not
allowed gets no CORS headers, so the browser withholds the response from the
page. The policy allows no credentials (cookies or HTTP authentication),
which lunar does not use.
"""

import re
from typing import Dict, Mapping, Optional, Sequence

ANY_ORIGIN = "*"
PREFLIGHT_MAX_AGE_SECONDS = 600  # how long a browser may reuse a preflight response
# Request headers a page may send: JSON bodies, and revalidation of polled lists.
ALLOWED_REQUEST_HEADERS = "Content-Type, If-None-Match"
# Response headers a page may read besides the CORS-safelisted ones.
EXPOSED_RESPONSE_HEADERS = "X-Total-Count, Link, ETag"

# scheme://host[:port] with no path, as browsers send it in Origin.
_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://(?:\[[0-9a-f:.]+\]|[^/?#@\[\]:\s]+)(?::[0-9]{1,5})?")


def parse_origin(text: str) -> str:
    """Return an allowed-origin setting in lower case, or raise ValueError naming the form.

    Accepts ``*`` or ``scheme://host[:port]``, such as
    ``https://dashboard.example.com`` or ``http://localhost:3000``.
    """
    origin = text.strip().lower()
    if origin != ANY_ORIGIN and _ORIGIN.fullmatch(origin) is None:
        raise ValueError(
            f"invalid origin {text!r}: use scheme://host[:port] without a path or a "
            "trailing slash, such as http://localhost:3000, or * for any origin"
        )
    return origin


class CorsPolicy:
    """The origins allowed to read responses from a browser; empty means CORS is off."""

    def __init__(self, origins: Sequence[str] = ()) -> None:
        self.origins = frozenset(parse_origin(origin) for origin in origins)

    @property
    def enabled(self) -> bool:
        """Whether any origin is allowed."""
        return bool(self.origins)

    def allowed_origin(self, request_headers: Mapping[str, str]) -> Optional[str]:
        """Return the Access-Control-Allow-Origin value for a request, or None if not allowed."""
        origin = request_headers.get("Origin")
        if origin is None or not self.origins:
            return None
        if ANY_ORIGIN in self.origins:
            return ANY_ORIGIN
        # Browsers send the origin in lower case, but a proxy or a script may
        # not. The value goes back exactly as sent, which browsers compare to.
        if origin.lower() in self.origins:
            return origin
        return None

    def preflight_headers(self, request_headers: Mapping[str, str], allow: str) -> Optional[Dict[str, str]]:
        """Return the headers of a 204 response to a preflight request from an allowed origin.

        ``allow`` is the route's comma-separated list of methods. Returns None
        when the request is not a preflight (an OPTIONS request that has both
        Origin and Access-Control-Request-Method) or its origin is not allowed.
        """
        if request_headers.get("Access-Control-Request-Method") is None:
            return None
        origin = self.allowed_origin(request_headers)
        if origin is None:
            return None
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": allow,
            "Access-Control-Allow-Headers": ALLOWED_REQUEST_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_SECONDS),
            "Vary": "Origin",
        }

    def response_headers(self, request_headers: Mapping[str, str]) -> Dict[str, str]:
        """Return the CORS headers of an ordinary response; none if the origin is not allowed.

        While CORS is on, every response gets ``Vary: Origin``: responses
        differ by Origin, and a shared cache must not serve the response for
        one origin to another.
        """
        if not self.origins:
            return {}
        origin = self.allowed_origin(request_headers)
        if origin is None:
            return {"Vary": "Origin"}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSED_RESPONSE_HEADERS,
            "Vary": "Origin",
        }

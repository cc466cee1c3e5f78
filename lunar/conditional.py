"""Entity tags of response bodies and the If-None-Match comparison of RFC 9110.

The entity tag is a hash of the body, so it changes exactly when the body
changes, barring a hash collision (a chance of about 2^-96 per pair of
bodies). ``lunar.web`` tags every 200 JSON response to GET and HEAD and
responds to a matching If-None-Match with 304, so endpoints do nothing for it.
This module does not handle If-Match, If-Modified-Since or range requests:
lunar's responses have no modification dates and are small.
"""

import hashlib
import re
from typing import List

ETAG_DIGEST_BYTES = 12  # 96 bits of BLAKE2b, written as 24 hexadecimal digits

# One entity tag of a list, weak or strong (RFC 9110, section 8.8.3).
_ENTITY_TAG = re.compile(r'(?:W/)?"([^"]*)"')


def entity_tag(body: bytes) -> str:
    """Return the strong, quoted entity tag of a response body."""
    return '"' + hashlib.blake2b(body, digest_size=ETAG_DIGEST_BYTES).hexdigest() + '"'


def none_match(field_values: List[str], tag: str) -> bool:
    """Tell whether If-None-Match field values match ``tag``.

    ``*`` matches any current representation. Otherwise the field is a
    comma-separated list of entity tags, compared with the weak comparison
    that RFC 9110 (section 13.1.2) prescribes for If-None-Match:
    ``W/"x"`` matches ``"x"``. Text that is not an entity tag is skipped.
    """
    opaque_tag = tag.strip('"')
    for value in field_values:
        if value.strip() == "*":
            return True
        if opaque_tag in _ENTITY_TAG.findall(value):
            return True
    return False

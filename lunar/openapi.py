"""The OpenAPI 3.1 document of the fleet API, served at GET /openapi.json.

It describes every route of ``FleetApi.routes``, every query parameter, every
status with its body schema and the headers that matter to clients. The
tests request every documented path and check the real responses against
these schemas, and check that the document and the route table list the
same paths and methods. This module does not generate the document from the
code: the tests keep the two in step.
"""

from typing import Any, Dict, List

from lunar import __version__
from lunar.messages import MAX_MESSAGE_NUMBER
from lunar.query import (
    DEFAULT_MESSAGE_PAGE_SIZE,
    DEFAULT_SORT,
    MAX_OFFSET,
    MAX_PAGE_SIZE,
    ORDERS,
    SORT_FIELDS,
    STATUSES,
)

OPENAPI_VERSION = "3.1.0"
EXAMPLE_CHANNEL = "193270a9-c9cf-404a-8f83-838e71d9ae67"


def _ref(kind: str, name: str) -> Dict[str, str]:
    return {"$ref": f"#/components/{kind}/{name}"}


def _json_content(schema: Dict[str, Any]) -> Dict[str, Any]:
    return {"application/json": {"schema": schema}}


def _nullable(type_name: str, description: str) -> Dict[str, Any]:
    return {"type": [type_name, "null"], "description": description}


_SCHEMAS: Dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error response: one field that says what was wrong.",
        "properties": {"error": {"type": "string"}},
        "required": ["error"],
        "additionalProperties": False,
    },
    "Rocket": {
        "type": "object",
        "properties": {
            "channel": {"type": "string", "description": "The rocket's id."},
            "type": _nullable("string", "Rocket type from the launch message; null until launched."),
            "speed": _nullable(
                "number",
                "Launch speed plus increases minus decreases; null until launched. "
                "It is never clamped, so it can be negative.",
            ),
            "mission": _nullable("string", "Current mission; null until launched."),
            "status": {"type": "string", "enum": list(STATUSES)},
            "explosionReason": _nullable("string", "Null unless exploded."),
            "launchTime": _nullable("string", "The launch message's messageTime, exactly as sent."),
            "lastMessageNumber": {
                "type": "integer", "minimum": 0,
                "description": "The last applied message; 0 if none.",
            },
            "lastMessageTime": _nullable("string", "The last applied message's messageTime."),
            "pendingMessages": {
                "type": "integer", "minimum": 0,
                "description": "Received messages that wait behind a gap.",
            },
        },
        "required": [
            "channel", "type", "speed", "mission", "status", "explosionReason",
            "launchTime", "lastMessageNumber", "lastMessageTime", "pendingMessages",
        ],
        "additionalProperties": False,
    },
    "RocketList": {"type": "array", "items": _ref("schemas", "Rocket")},
    "MissionNames": {
        "type": "array",
        "description": "Current missions, once each, sorted case-insensitively.",
        "items": {"type": "string"},
    },
    "MissionSummary": {
        "type": "object",
        "properties": {
            "mission": {"type": "string"},
            "rockets": {"type": "integer", "minimum": 1,
                        "description": "Rockets whose current mission this is."},
            "exploded": {"type": "integer", "minimum": 0,
                         "description": "Of those, rockets that exploded."},
            "launched": {"type": "integer", "minimum": 0,
                         "description": "Of those, rockets launched and not exploded."},
        },
        "required": ["mission", "rockets", "exploded", "launched"],
        "additionalProperties": False,
    },
    "MissionSummaryList": {"type": "array", "items": _ref("schemas", "MissionSummary")},
    "TelemetryMessage": {
        "type": "object",
        "description": "One message as the rockets program posts it.",
        "properties": {
            "metadata": {
                "type": "object",
                "properties": {
                    "channel": {"type": "string", "minLength": 1},
                    "messageNumber": {"type": "integer", "minimum": 1, "maximum": MAX_MESSAGE_NUMBER},
                    "messageTime": {"type": "string", "format": "date-time",
                                    "description": "RFC 3339 with a Z or an offset."},
                    "messageType": {"type": "string", "minLength": 1},
                },
                "required": ["channel", "messageNumber", "messageTime", "messageType"],
            },
            "message": {
                "type": "object",
                "description": "The payload. RocketLaunched has type, launchSpeed and mission; "
                               "RocketSpeedIncreased and RocketSpeedDecreased have by; "
                               "RocketExploded has reason; RocketMissionChanged has newMission.",
            },
        },
        "required": ["metadata", "message"],
    },
    "TelemetryBatch": {
        "type": "array",
        "description": "A batch: up to 10,000 messages, answered one by one in order.",
        "items": _ref("schemas", "TelemetryMessage"),
    },
    "BatchOutcome": {
        "type": "object",
        "description": "What happened to one message of a batch. Applied, buffered and "
                       "duplicate messages are stored; invalid and refused ones are not, and "
                       "their error names the field or the limit.",
        "properties": {
            "outcome": {"type": "string",
                        "enum": ["applied", "buffered", "duplicate", "invalid", "refused"]},
            "error": {"type": "string"},
        },
        "required": ["outcome"],
        "additionalProperties": False,
    },
    "BatchOutcomeList": {"type": "array", "items": _ref("schemas", "BatchOutcome")},
    "StoredMessage": {
        "type": "object",
        "properties": {
            "messageNumber": {"type": "integer", "minimum": 1},
            "messageType": {"type": "string"},
            "messageTime": {"type": "string", "description": "As the sender wrote it."},
            "receivedAt": {"type": "string", "format": "date-time",
                           "description": "When lunar stored it, RFC 3339 in UTC."},
            "state": {"type": "string", "enum": ["applied", "buffered"],
                      "description": "buffered while it waits behind a gap."},
            "message": _ref("schemas", "TelemetryMessage"),
        },
        "required": ["messageNumber", "messageType", "messageTime", "receivedAt", "state", "message"],
        "additionalProperties": False,
    },
    "StoredMessageList": {"type": "array", "items": _ref("schemas", "StoredMessage")},
    "OpenApiDocument": {
        "type": "object",
        "properties": {"openapi": {"type": "string"}, "info": {"type": "object"},
                       "paths": {"type": "object"}},
        "required": ["openapi", "info", "paths"],
    },
}

_HEADERS: Dict[str, Any] = {
    "X-Total-Count": {
        "description": "Items after filtering, on all pages together.",
        "required": True,
        "schema": {"type": "integer", "minimum": 0},
    },
    "Link": {
        "description": 'RFC 8288 links to the next and previous page, such as '
                       '</rockets?limit=10&offset=10>; rel="next". Present only when '
                       "a limit is given and such a page exists.",
        "schema": {"type": "string"},
    },
    "ETag": {
        "description": "Strong entity tag of the body; send it in If-None-Match to get 304 "
                       "while the body is unchanged.",
        "required": True,
        "schema": {"type": "string"},
    },
    "Allow": {
        "description": "The methods the path supports.",
        "required": True,
        "schema": {"type": "string"},
    },
}


def _error(description: str, **headers: Dict[str, Any]) -> Dict[str, Any]:
    response: Dict[str, Any] = {
        "description": description,
        "content": _json_content(_ref("schemas", "Error")),
    }
    if headers:
        response["headers"] = headers
    return response


_RESPONSES: Dict[str, Any] = {
    "NotModified": {
        "description": "The body is unchanged since the ETag given in If-None-Match; no body.",
        "headers": {"ETag": _ref("headers", "ETag")},
    },
    "BadRequest": _error("Invalid request: an unknown, repeated or invalid query parameter, "
                         "or an invalid message. The error names the parameter or field."),
    "NotFound": _error("No such rocket or mission, or no resource at the path."),
    "MethodNotAllowed": _error("The path does not support the method.", Allow=_ref("headers", "Allow")),
    "LengthRequired": _error("The request has neither Content-Length nor chunked coding."),
    "PayloadTooLarge": _error("The body is larger than 1 MiB (16 MiB for NDJSON batches), "
                              "or a batch holds more than 10,000 messages."),
    "ServiceUnavailable": _error("The database could not store the message or batch; "
                                 "retry later."),
    "OtherError": _error("Any other error, such as 405 for an unsupported method, 414 for a "
                         "request line longer than 64 KiB, 501 for an unsupported transfer "
                         "coding or 500 for an unexpected failure."),
}


def _query_parameter(name: str, description: str, schema: Dict[str, Any], example: Any) -> Dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema, "example": example}


_PARAMETERS: Dict[str, Any] = {
    "Channel": {"name": "channel", "in": "path", "required": True,
                "description": "The rocket's channel, percent-encoded.",
                "schema": {"type": "string"}, "example": EXAMPLE_CHANNEL},
    "Mission": {"name": "mission", "in": "path", "required": True,
                "description": "A mission name, matched case-insensitively and percent-encoded: "
                               "Mars%20Return%2F2 names 'Mars Return/2'.",
                "schema": {"type": "string"}, "example": "ARTEMIS"},
    "Sort": _query_parameter(
        "sort",
        "Field to sort by. Times compare as instants, text case-insensitively. Rockets "
        "without a value come last in both orders, and ties are ordered by channel, ascending.",
        {"type": "string", "enum": list(SORT_FIELDS), "default": DEFAULT_SORT}, "speed"),
    "Order": _query_parameter(
        "order", "Sort direction.", {"type": "string", "enum": list(ORDERS), "default": "asc"}, "desc"),
    "Status": {
        **_query_parameter(
            "status", "Only rockets with one of these statuses, comma-separated.",
            {"type": "array", "items": {"type": "string", "enum": list(STATUSES)}},
            ["launched", "exploded"]),
        "style": "form",
        "explode": False,
    },
    "Type": _query_parameter(
        "type", "Only rockets of this type, compared case-insensitively.",
        {"type": "string", "minLength": 1}, "falcon-9"),
    "MissionFilter": _query_parameter(
        "mission", "Only rockets on this mission, compared case-insensitively.",
        {"type": "string", "minLength": 1}, "artemis"),
    "MinSpeed": _query_parameter(
        "minSpeed", "Only rockets at least this fast; excludes rockets not yet launched.",
        {"type": "number"}, 1000),
    "MaxSpeed": _query_parameter(
        "maxSpeed", "Only rockets at most this fast; excludes rockets not yet launched. "
        "Must not be less than minSpeed.",
        {"type": "number"}, 100000),
    "Limit": _query_parameter(
        "limit", "Page size. Without it, every rocket from the offset on is returned.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE}, 10),
    "MessageLimit": _query_parameter(
        "limit", "Page size.",
        {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE,
         "default": DEFAULT_MESSAGE_PAGE_SIZE}, 10),
    "Offset": _query_parameter(
        "offset", "Items to skip.",
        {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}, 1),
    "Details": _query_parameter(
        "details", "true returns each mission with its rocket counts instead of its name only.",
        {"type": "string", "enum": ["true", "false"], "default": "false"}, "true"),
}

_ROCKET_QUERY = ["Sort", "Order", "Status", "Type", "MissionFilter", "MinSpeed", "MaxSpeed",
                 "Limit", "Offset"]


def _list_response(description: str, schema_name: str) -> Dict[str, Any]:
    return {
        "description": description,
        "headers": {name: _ref("headers", name) for name in ("X-Total-Count", "Link", "ETag")},
        "content": _json_content(_ref("schemas", schema_name)),
    }


def _get(summary: str, parameters: List[str], ok: Dict[str, Any], *errors: str) -> Dict[str, Any]:
    responses = {"200": ok, "304": _ref("responses", "NotModified"),
                 "400": _ref("responses", "BadRequest")}
    if "404" in errors:
        responses["404"] = _ref("responses", "NotFound")
    responses["default"] = _ref("responses", "OtherError")
    return {
        "summary": summary,
        "parameters": [_ref("parameters", name) for name in parameters],
        "responses": responses,
    }


def _ok(description: str, schema_name: str) -> Dict[str, Any]:
    return {
        "description": description,
        "headers": {"ETag": _ref("headers", "ETag")},
        "content": _json_content(_ref("schemas", schema_name)),
    }


_PATHS: Dict[str, Any] = {
    "/messages": {
        "post": {
            "summary": "Accept one telemetry message, or a batch of them.",
            "description": "An applied message, or one buffered behind a gap, is stored "
                           "before the 202 is sent. A duplicate also gets a 202 and is "
                           "ignored. The query string is ignored. A body whose first "
                           "non-blank character is [ is a batch, and so is an "
                           "application/x-ndjson body of more than one line (one message "
                           "per line, up to 16 MiB). A batch is stored in one transaction "
                           "and answered with 200 and one outcome per message.",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"oneOf": [
                    _ref("schemas", "TelemetryMessage"), _ref("schemas", "TelemetryBatch")]}},
                "application/x-ndjson": {"schema": {
                    "type": "string",
                    "description": "One TelemetryMessage per line, up to 10,000 lines."}},
            }},
            "responses": {
                "200": {"description": "A batch was stored: the outcome of each message, in "
                                       "input order.",
                        "content": _json_content(_ref("schemas", "BatchOutcomeList"))},
                "202": {"description": "Stored. The body is empty, so the client can reuse "
                                       "the connection."},
                "400": _ref("responses", "BadRequest"),
                "411": _ref("responses", "LengthRequired"),
                "413": _ref("responses", "PayloadTooLarge"),
                "503": _ref("responses", "ServiceUnavailable"),
                "default": _ref("responses", "OtherError"),
            },
        },
    },
    "/rockets": {
        "get": _get("List rockets, by launch time unless sorted otherwise, filtered and paged.",
                    _ROCKET_QUERY, _list_response("Rockets of the page.", "RocketList")),
    },
    "/rockets/{channel}": {
        "parameters": [_ref("parameters", "Channel")],
        "get": _get("Return one rocket. It takes no query parameters.",
                    [], _ok("The rocket.", "Rocket"), "404"),
    },
    "/rockets/{channel}/messages": {
        "parameters": [_ref("parameters", "Channel")],
        "get": _get(
            "List the rocket's stored messages in message-number order.",
            ["MessageLimit", "Offset"],
            _list_response("Stored messages of the page. Compaction removes old applied "
                           "messages, so the first number may be above 1.", "StoredMessageList"),
            "404"),
    },
    "/missions": {
        "get": _get(
            "List current missions, sorted case-insensitively.",
            ["Details"],
            {
                "description": "Mission names, or with details=true one summary per mission "
                               "in the same order.",
                "headers": {"ETag": _ref("headers", "ETag")},
                "content": _json_content({"oneOf": [_ref("schemas", "MissionNames"),
                                                    _ref("schemas", "MissionSummaryList")]}),
            }),
    },
    "/missions/{mission}": {
        "parameters": [_ref("parameters", "Mission")],
        "get": _get(
            "List the rockets on one mission, sorted, filtered and paged like /rockets. "
            "404 if no rocket is on the mission, whatever the filters.",
            [name for name in _ROCKET_QUERY if name != "MissionFilter"],
            _list_response("Rockets of the page.", "RocketList"), "404"),
    },
    "/openapi.json": {
        "get": _get("Return this document. It takes no query parameters.",
                    [], _ok("The OpenAPI document.", "OpenApiDocument")),
    },
}


def _head(get: Dict[str, Any]) -> Dict[str, Any]:
    """Describe HEAD like GET, with the same statuses and headers but no body."""
    responses = {}
    for status, response in get["responses"].items():
        if "$ref" in response:
            responses[status] = response
        else:
            responses[status] = {key: value for key, value in response.items() if key != "content"}
    return {"summary": "Like GET without the body.", "parameters": get["parameters"],
            "responses": responses}


def _options() -> Dict[str, Any]:
    return {
        "summary": "List the allowed methods, or respond to a CORS preflight request.",
        "description": "A preflight request from an origin allowed with --cors-origin also gets "
                       "Access-Control-Allow-Origin, -Methods, -Headers and -Max-Age.",
        "responses": {
            "204": {"description": "No body.", "headers": {"Allow": _ref("headers", "Allow")}},
            "default": _ref("responses", "OtherError"),
        },
    }


def build_document() -> Dict[str, Any]:
    """Return the OpenAPI document, with HEAD and OPTIONS added to every path."""
    paths: Dict[str, Any] = {}
    for path, item in _PATHS.items():
        item = dict(item)
        if "get" in item:
            item["head"] = _head(item["get"])
        item["options"] = _options()
        paths[path] = item
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "lunar fleet API",
            "version": __version__,
            "description": (
                "Rocket telemetry in, fleet state out. Every JSON response to GET or HEAD "
                "carries an ETag and honours If-None-Match. Every error is a JSON object with "
                "one error field. An unknown query parameter, or one given twice, is a 400, "
                "except on POST /messages. When the server runs with --cors-origin, responses "
                "to allowed origins carry Access-Control-Allow-Origin and expose X-Total-Count, "
                "Link and ETag."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": _SCHEMAS,
            "parameters": _PARAMETERS,
            "headers": _HEADERS,
            "responses": _RESPONSES,
        },
    }


DOCUMENT = build_document()

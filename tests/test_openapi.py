"""Tests that GET /openapi.json describes the API that the server really serves.

Every documented operation is requested on a real server with real channel
and mission values, and each response is checked against the documented
status, headers and body schema by a small JSON Schema checker written here.
The checker supports type (including lists such as ["string", "null"]),
properties, required, items, enum, additionalProperties false, oneOf,
minimum, maximum and minLength. A test fails if the document uses any other
validation keyword, so nothing documented goes unchecked.
"""

import http.client
import json
import unittest

from lunar import openapi
from lunar.api import FleetApi
from lunar.fleet import ControlCenter, Journal, JournalError
from tests.fleetserver import REQUEST_TIMEOUT_SECONDS, Reply, message_body, start_server

METHODS = ("get", "head", "post", "options")
PATH_VALUES = {"channel": "a", "mission": "ARTEMIS"}
MISSING_PATH_VALUES = {"channel": "no-such-rocket", "mission": "NO-SUCH-MISSION"}
CHECKED_KEYWORDS = {"type", "properties", "required", "items", "enum", "additionalProperties",
                    "oneOf", "minimum", "maximum", "minLength", "$ref"}
ANNOTATION_KEYWORDS = {"description", "format", "default", "example"}
BODY_LIMIT_BYTES = 1024 * 1024


def resolve(document, node):
    """Follow ``$ref`` pointers such as #/components/schemas/Rocket until a real node."""
    for _ in range(10):
        if "$ref" not in node:
            return node
        target = document
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    raise AssertionError(f"reference loop at {node}")


def _has_type(value, type_name):
    if type_name == "null":
        return value is None
    if type_name == "boolean":
        return isinstance(value, bool)
    if type_name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if type_name == "string":
        return isinstance(value, str)
    if type_name == "array":
        return isinstance(value, list)
    if type_name == "object":
        return isinstance(value, dict)
    raise AssertionError(f"unknown JSON Schema type {type_name!r}")


def schema_errors(document, instance, schema, where="$"):
    """Return where ``instance`` breaks ``schema``, as a list of messages; empty if it fits."""
    schema = resolve(document, schema)
    errors = []
    if "oneOf" in schema:
        fitting = [option for option in schema["oneOf"]
                   if not schema_errors(document, instance, option, where)]
        if len(fitting) != 1:
            errors.append(f"{where}: fits {len(fitting)} of the oneOf schemas, not exactly 1")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_has_type(instance, type_name) for type_name in types):
            return errors + [f"{where}: {instance!r:.80} is not of type {types}"]
    if "enum" in schema and instance not in schema["enum"]:
        errors.append(f"{where}: {instance!r} is not one of {schema['enum']}")
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        if "minimum" in schema and instance < schema["minimum"]:
            errors.append(f"{where}: {instance} is below the minimum {schema['minimum']}")
        if "maximum" in schema and instance > schema["maximum"]:
            errors.append(f"{where}: {instance} is above the maximum {schema['maximum']}")
    if isinstance(instance, str) and len(instance) < schema.get("minLength", 0):
        errors.append(f"{where}: {instance!r} is shorter than {schema['minLength']}")
    if isinstance(instance, list) and "items" in schema:
        for index, item in enumerate(instance):
            errors += schema_errors(document, item, schema["items"], f"{where}[{index}]")
    if isinstance(instance, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in instance:
                errors.append(f"{where}: required property {name!r} is missing")
        for name, value in instance.items():
            if name in properties:
                errors += schema_errors(document, value, properties[name], f"{where}.{name}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: property {name!r} is not documented")
    return errors


def schema_nodes(node):
    """Yield every JSON Schema object inside the document's schemas, parameters and headers."""
    if isinstance(node, dict):
        yield node
        for child in node.get("properties", {}).values():
            yield from schema_nodes(child)
        if "items" in node:
            yield from schema_nodes(node["items"])
        for child in node.get("oneOf", []):
            yield from schema_nodes(child)


def all_schemas(document):
    components = document["components"]
    roots = list(components["schemas"].values())
    roots += [parameter["schema"] for parameter in components["parameters"].values()]
    roots += [header["schema"] for header in components["headers"].values()]
    for item in document["paths"].values():
        for method in METHODS:
            for response in item.get(method, {}).get("responses", {}).values():
                for media in response.get("content", {}).values():
                    roots.append(media["schema"])
    for root in roots:
        yield from schema_nodes(root)


def query_value(schema, example):
    """Write a parameter example as it goes into a query string."""
    if schema.get("type") == "array":
        return ",".join(example)
    return str(example).lower() if isinstance(example, bool) else str(example)


def invalid_query_value(schema):
    """Return a value that the parameter's schema does not allow."""
    if "enum" in schema or schema.get("type") == "array":
        return "not-a-value"
    if schema.get("type") in ("integer", "number"):
        return "fast"
    return ""


class FailingJournal(Journal):
    """A journal that cannot record anything, as when the disk is full."""

    def record(self, message, state):
        raise JournalError("disk I/O error (simulated by the test)")


class OpenApiTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.document = openapi.DOCUMENT

    def setUp(self):
        self.server = start_server(self)
        for number, message_type in ((1, "RocketLaunched"), (2, "RocketSpeedIncreased"),
                                     (4, "RocketExploded")):
            self.server.post_message("a", number, message_type)
        self.server.post_message("b", 1, "RocketLaunched", type="Falcon-9", mission="artemis")
        self.server.post_message("c", 2, "RocketSpeedIncreased")

    def operations(self):
        """Yield (path template, method, operation) for every documented operation."""
        for template, item in self.document["paths"].items():
            for method in METHODS:
                if method in item:
                    yield template, method, item[method]

    def parameters(self, template, operation):
        item = self.document["paths"][template]
        return [resolve(self.document, parameter)
                for parameter in item.get("parameters", []) + operation.get("parameters", [])]

    def concrete_path(self, template, values):
        path = template
        for name, value in values.items():
            path = path.replace("{" + name + "}", value)
        return path

    def check_reply(self, template, method, operation, reply):
        """Fail unless the reply's status, headers and body are documented for the operation.

        The status must have its own entry: the ``default`` response does not count.
        """
        where = f"{method.upper()} {template} -> {reply.status}"
        documented = operation["responses"].get(str(reply.status))
        self.assertIsNotNone(documented, f"{where}: status not documented")
        response = resolve(self.document, documented)

        content = response.get("content")
        if content is not None and method != "head":
            self.assertEqual(reply.headers["Content-Type"], "application/json; charset=utf-8", where)
            errors = schema_errors(self.document, json.loads(reply.body),
                                   content["application/json"]["schema"])
            self.assertEqual(errors, [], where)
        else:
            self.assertEqual(reply.body, b"", where)

        for name, header in response.get("headers", {}).items():
            header = resolve(self.document, header)
            value = reply.headers.get(name)
            if header.get("required"):
                self.assertIsNotNone(value, f"{where}: header {name} is missing")
            if value is not None and header["schema"].get("type") == "integer":
                self.assertRegex(value, r"^[0-9]+$", f"{where}: header {name}")

    def request(self, method, path, body=None, headers=None):
        if method == "post" and body is None:
            body = message_body("d", 1, "RocketLaunched")
        return self.server.request(method.upper(), path, body, headers)


class DocumentShapeTest(OpenApiTestCase):
    def test_document_is_openapi_3_1(self):
        self.assertEqual(self.document["openapi"], "3.1.0")
        self.assertLessEqual({"title", "version"}, set(self.document["info"]))
        self.assertEqual(self.server.get("/openapi.json").json(), self.document)

    def test_routes_and_document_list_same_operations(self):
        routes = FleetApi(ControlCenter()).routes()
        route_operations = {
            route.template: set(route.endpoints) | {"OPTIONS"} for route in routes
        }
        documented_operations = {
            template: {method.upper() for method in item if method in METHODS}
            for template, item in self.document["paths"].items()
        }

        self.assertEqual(documented_operations, route_operations)

    def test_every_reference_resolves(self):
        def references(node):
            if isinstance(node, dict):
                if "$ref" in node:
                    yield node
                for value in node.values():
                    yield from references(value)
            elif isinstance(node, list):
                for value in node:
                    yield from references(value)

        for reference in references(self.document):
            with self.subTest(reference=reference["$ref"]):
                self.assertNotIn("$ref", resolve(self.document, reference))

    def test_schemas_use_only_checked_keywords(self):
        for schema in all_schemas(self.document):
            unknown = set(schema) - CHECKED_KEYWORDS - ANNOTATION_KEYWORDS
            with self.subTest(schema=str(schema)[:80]):
                self.assertEqual(unknown, set())

    def test_path_parameters_are_declared(self):
        for template, method, operation in self.operations():
            names = {parameter["name"] for parameter in self.parameters(template, operation)
                     if parameter["in"] == "path"}
            with self.subTest(method=method, path=template):
                self.assertEqual(names, {name for name in PATH_VALUES if "{" + name + "}" in template})


class SchemaCheckerTest(unittest.TestCase):
    DOCUMENT = {"components": {"schemas": {"Name": {"type": "string", "minLength": 1}}}}

    def test_mismatches_are_reported(self):
        cases = (
            (1, {"type": "string"}),
            (True, {"type": "integer"}),
            (1.5, {"type": "integer"}),
            (None, {"type": "string"}),
            ("x", {"type": ["number", "null"]}),
            ("c", {"enum": ["a", "b"]}),
            (-1, {"type": "integer", "minimum": 0}),
            (11, {"type": "integer", "maximum": 10}),
            ("", {"$ref": "#/components/schemas/Name"}),
            ({}, {"type": "object", "required": ["a"]}),
            ({"a": 1, "b": 2}, {"type": "object", "properties": {"a": {}}, "additionalProperties": False}),
            ({"a": "x"}, {"type": "object", "properties": {"a": {"type": "integer"}}}),
            ([1, "x"], {"type": "array", "items": {"type": "integer"}}),
            (1, {"oneOf": [{"type": "integer"}, {"type": "number"}]}),
            ("x", {"oneOf": [{"type": "integer"}, {"type": "array"}]}),
        )
        for instance, schema in cases:
            with self.subTest(instance=instance, schema=schema):
                self.assertNotEqual(schema_errors(self.DOCUMENT, instance, schema), [])

    def test_matches_pass(self):
        cases = (
            (None, {"type": ["string", "null"]}),
            (3, {"type": "number"}),
            ({"a": 1}, {"type": "object", "properties": {"a": {"type": "integer"}},
                        "required": ["a"], "additionalProperties": False}),
            ({"a": 1, "b": 2}, {"type": "object", "properties": {"a": {}}}),
            (["x"], {"oneOf": [{"type": "array", "items": {"type": "string"}},
                               {"type": "array", "items": {"type": "object"}}]}),
            ("x", {"$ref": "#/components/schemas/Name"}),
        )
        for instance, schema in cases:
            with self.subTest(instance=instance, schema=schema):
                self.assertEqual(schema_errors(self.DOCUMENT, instance, schema), [])


class DocumentedResponsesTest(OpenApiTestCase):
    def test_every_operation_answers_as_documented(self):
        for template, method, operation in self.operations():
            with self.subTest(method=method, path=template):
                path = self.concrete_path(template, PATH_VALUES)
                reply = self.request(method, path)
                self.assertLess(reply.status, 300, reply.body)
                self.check_reply(template, method, operation, reply)

    def test_parameter_examples_are_accepted(self):
        for template, method, operation in self.operations():
            for parameter in self.parameters(template, operation):
                if parameter["in"] != "query":
                    continue
                with self.subTest(method=method, path=template, parameter=parameter["name"]):
                    value = query_value(parameter["schema"], parameter["example"])
                    path = f"{self.concrete_path(template, PATH_VALUES)}?{parameter['name']}={value}"
                    reply = self.request(method, path)
                    self.assertEqual(reply.status, 200, reply.body)
                    self.check_reply(template, method, operation, reply)

    def test_invalid_parameters_return_documented_400(self):
        for template, method, operation in self.operations():
            if method not in ("get", "head"):
                continue
            query_parameters = [parameter for parameter in self.parameters(template, operation)
                                if parameter["in"] == "query"]
            invalid = [(parameter["name"], invalid_query_value(parameter["schema"]))
                       for parameter in query_parameters] + [("undocumented", "1")]
            for name, value in invalid:
                with self.subTest(method=method, path=template, parameter=name):
                    path = f"{self.concrete_path(template, PATH_VALUES)}?{name}={value}"
                    reply = self.request(method, path)
                    self.assertEqual(reply.status, 400, reply.body)
                    self.check_reply(template, method, operation, reply)

    def test_unknown_path_values_return_documented_404(self):
        for template, method, operation in self.operations():
            if "{" not in template or method not in ("get", "head"):
                continue
            with self.subTest(method=method, path=template):
                reply = self.request(method, self.concrete_path(template, MISSING_PATH_VALUES))
                self.assertEqual(reply.status, 404)
                self.check_reply(template, method, operation, reply)

    def test_not_modified_is_documented(self):
        for template, method, operation in self.operations():
            if method not in ("get", "head"):
                continue
            with self.subTest(method=method, path=template):
                path = self.concrete_path(template, PATH_VALUES)
                tag = self.request(method, path).headers["ETag"]
                reply = self.request(method, path, headers={"If-None-Match": tag})
                self.assertEqual(reply.status, 304)
                self.check_reply(template, method, operation, reply)

    def test_unsupported_method_matches_documented_405(self):
        response = resolve(self.document, self.document["components"]["responses"]["MethodNotAllowed"])
        for template in self.document["paths"]:
            with self.subTest(path=template):
                reply = self.server.request("DELETE", self.concrete_path(template, PATH_VALUES))
                self.assertEqual(reply.status, 405)
                self.assertIn("Allow", reply.headers)
                self.assertEqual(schema_errors(self.document, json.loads(reply.body),
                                               response["content"]["application/json"]["schema"]), [])

    def test_post_errors_are_documented(self):
        operation = self.document["paths"]["/messages"]["post"]
        cases = {
            "invalid JSON": (400, self.request("post", "/messages", b"{not json")),
            "invalid message": (400, self.request("post", "/messages", b'{"metadata": {}}')),
            "no length": (411, self.raw_post([])),
            "too large": (413, self.raw_post([("Content-Length", str(BODY_LIMIT_BYTES + 1))])),
        }
        for case, (status, reply) in cases.items():
            with self.subTest(case=case):
                self.assertEqual(reply.status, status, reply.body)
                self.check_reply("/messages", "post", operation, reply)

    def test_store_failure_is_documented_503(self):
        server = start_server(self, journal=FailingJournal())
        operation = self.document["paths"]["/messages"]["post"]

        with self.assertLogs("lunar.api", "ERROR"):
            reply = server.request("POST", "/messages", message_body("a", 1, "RocketLaunched"))

        self.assertEqual(reply.status, 503)
        self.check_reply("/messages", "post", operation, reply)

    def raw_post(self, headers):
        """POST /messages with exactly the given headers and no body."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port,
                                                timeout=REQUEST_TIMEOUT_SECONDS)
        try:
            connection.putrequest("POST", "/messages")
            for name, value in headers:
                connection.putheader(name, value)
            connection.endheaders()
            response = connection.getresponse()
            return Reply(response.status, response.headers, response.read())
        finally:
            connection.close()


if __name__ == "__main__":
    unittest.main()

"""Tests of cross-origin requests: preflight responses, response headers and --cors-origin."""

import contextlib
import io
import unittest

from lunar.config import load_config
from lunar.cors import parse_origin
from tests.fleetserver import message_body, start_server

ALLOWED = "http://localhost:3000"
OTHER = "http://evil.example"
EXPOSED = "X-Total-Count, Link, ETag"


def cors_headers(reply):
    """Return the reply's Access-Control-* headers."""
    return {name: value for name, value in reply.headers.items()
            if name.lower().startswith("access-control-")}


class CorsTest(unittest.TestCase):
    def setUp(self):
        self.server = start_server(self, cors_origins=[ALLOWED, "https://Dash.Example.com"])
        self.server.post_message("a", 1, "RocketLaunched")

    def preflight(self, path, origin, method="GET"):
        return self.server.request("OPTIONS", path, headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "if-none-match",
        })

    def test_preflight_from_allowed_origin(self):
        reply = self.preflight("/rockets", ALLOWED)

        self.assertEqual(reply.status, 204)
        self.assertEqual(reply.body, b"")
        self.assertEqual(cors_headers(reply), {
            "Access-Control-Allow-Origin": ALLOWED,
            "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type, If-None-Match",
            "Access-Control-Max-Age": "600",
        })
        self.assertEqual(reply.headers["Vary"], "Origin")
        self.assertEqual(reply.headers["Allow"], "GET, HEAD, OPTIONS")

    def test_preflight_lists_route_methods(self):
        for path, methods in (("/messages", "OPTIONS, POST"),
                              ("/rockets/a/messages", "GET, HEAD, OPTIONS")):
            with self.subTest(path=path):
                reply = self.preflight(path, ALLOWED, "POST")
                self.assertEqual(reply.status, 204)
                self.assertEqual(reply.headers["Access-Control-Allow-Methods"], methods)

    def test_preflight_from_other_origin_has_no_cors_headers(self):
        reply = self.preflight("/rockets", OTHER)

        self.assertEqual(reply.status, 204)
        self.assertEqual(cors_headers(reply), {})
        self.assertEqual(reply.headers["Allow"], "GET, HEAD, OPTIONS")

    def test_options_without_request_method_is_no_preflight(self):
        reply = self.server.request("OPTIONS", "/rockets", headers={"Origin": ALLOWED})

        self.assertEqual(reply.status, 204)
        self.assertIsNone(reply.headers.get("Access-Control-Allow-Methods"))
        self.assertIsNone(reply.headers.get("Access-Control-Max-Age"))

    def test_responses_to_allowed_origin_carry_cors_headers(self):
        tag = self.server.get("/rockets").headers["ETag"]
        replies = {
            "GET 200": self.server.get("/rockets", {"Origin": ALLOWED}),
            "HEAD 200": self.server.request("HEAD", "/rockets/a", headers={"Origin": ALLOWED}),
            "GET 304": self.server.get("/rockets", {"Origin": ALLOWED, "If-None-Match": tag}),
            "GET 404": self.server.get("/rockets/nobody", {"Origin": ALLOWED}),
            "GET 400": self.server.get("/rockets?sort=name", {"Origin": ALLOWED}),
            "POST 202": self.server.request("POST", "/messages", message_body("b", 1, "RocketLaunched"),
                                            {"Origin": ALLOWED}),
        }
        for case, reply in replies.items():
            with self.subTest(case=case):
                self.assertEqual(reply.status, int(case.split()[1]))
                self.assertEqual(cors_headers(reply), {
                    "Access-Control-Allow-Origin": ALLOWED,
                    "Access-Control-Expose-Headers": EXPOSED,
                })
                self.assertEqual(reply.headers["Vary"], "Origin")

    def test_origin_matches_regardless_of_case(self):
        reply = self.server.get("/rockets", {"Origin": "https://dash.example.COM"})

        self.assertEqual(reply.headers["Access-Control-Allow-Origin"], "https://dash.example.COM")

    def test_other_origins_get_no_cors_headers(self):
        for origin in (OTHER, "http://localhost:3001", "https://localhost:3000", "null",
                       ALLOWED + "/", ALLOWED + ".evil.example"):
            with self.subTest(origin=origin):
                reply = self.server.get("/rockets", {"Origin": origin})
                self.assertEqual(reply.status, 200)
                self.assertEqual(cors_headers(reply), {})
                self.assertEqual(reply.headers["Vary"], "Origin")

    def test_request_without_origin_gets_vary_only(self):
        reply = self.server.get("/rockets")

        self.assertEqual(cors_headers(reply), {})
        self.assertEqual(reply.headers["Vary"], "Origin")


class AnyOriginTest(unittest.TestCase):
    def test_star_allows_every_origin(self):
        server = start_server(self, cors_origins=["*"])

        reply = server.get("/rockets", {"Origin": OTHER})
        preflight = server.request("OPTIONS", "/rockets", headers={
            "Origin": OTHER, "Access-Control-Request-Method": "GET"})

        self.assertEqual(reply.headers["Access-Control-Allow-Origin"], "*")
        self.assertEqual(reply.headers["Access-Control-Expose-Headers"], EXPOSED)
        self.assertEqual(preflight.headers["Access-Control-Allow-Origin"], "*")
        self.assertEqual(preflight.headers["Access-Control-Allow-Methods"], "GET, HEAD, OPTIONS")


class CorsOffTest(unittest.TestCase):
    def test_default_server_sends_no_cors_headers(self):
        server = start_server(self)

        reply = server.get("/rockets", {"Origin": ALLOWED})
        preflight = server.request("OPTIONS", "/rockets", headers={
            "Origin": ALLOWED, "Access-Control-Request-Method": "GET"})

        self.assertEqual(cors_headers(reply), {})
        self.assertIsNone(reply.headers.get("Vary"))
        self.assertEqual(preflight.status, 204)
        self.assertEqual(cors_headers(preflight), {})


class OriginSettingTest(unittest.TestCase):
    def test_valid_origins_are_lowered(self):
        cases = (
            ("*", "*"),
            ("http://localhost:3000", "http://localhost:3000"),
            ("HTTPS://Dash.Example.com", "https://dash.example.com"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://[::1]:8080", "http://[::1]:8080"),
        )
        for text, expected in cases:
            with self.subTest(text=text):
                self.assertEqual(parse_origin(text), expected)

    def test_invalid_origins_are_rejected(self):
        for text in ("", "localhost:3000", "http://localhost:3000/", "http://host/path",
                     "http://user@host", "http://host:port", "http://", "**", "null"):
            with self.subTest(text=text):
                with self.assertRaisesRegex(ValueError, "scheme://host"):
                    parse_origin(text)

    def test_flag_repeats_and_defaults_to_none(self):
        arguments = load_config(
            ["--cors-origin", "http://a.example", "--cors-origin", "HTTP://B.example:81"], {})

        self.assertEqual(arguments.cors_origin, ["http://a.example", "http://b.example:81"])
        self.assertEqual(load_config([], {}).cors_origin, [])
        from_environment = load_config([], {"LUNAR_CORS_ORIGIN": "http://a.example,*"})
        self.assertEqual(from_environment.cors_origin, ["http://a.example", "*"])

    def test_flag_rejects_invalid_origin(self):
        errors = io.StringIO()
        with contextlib.redirect_stderr(errors), self.assertRaises(SystemExit):
            load_config(["--cors-origin", "http://a.example/"], {})

        self.assertIn("invalid origin 'http://a.example/'", errors.getvalue())


if __name__ == "__main__":
    unittest.main()

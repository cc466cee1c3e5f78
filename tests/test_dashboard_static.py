"""Tests of GET / and GET /static/<file> against a real server on 127.0.0.1."""

import http.client
import json
import threading
import unittest
from typing import Dict, Tuple

from lunar.dashboard import STATIC_DIRECTORY, dashboard_routes
from lunar.web import LunarHTTPServer

TIMEOUT_SECONDS = 5.0


class DashboardFilesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = LunarHTTPServer(("127.0.0.1", 0), dashboard_routes())
        cls.thread = threading.Thread(target=cls.server.serve_forever,
                                      kwargs={"poll_interval": 0.05}, daemon=True)
        cls.thread.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.shutdown()
        cls.server.server_close()
        cls.thread.join(TIMEOUT_SECONDS)

    def get(self, path: str, method: str = "GET") -> Tuple[int, Dict[str, str], bytes]:
        host, port = self.server.server_address[:2]
        connection = http.client.HTTPConnection(host, port, timeout=TIMEOUT_SECONDS)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            headers = {name.lower(): value for name, value in response.getheaders()}
            return response.status, headers, response.read()
        finally:
            connection.close()

    def test_root_serves_index_page(self) -> None:
        status, headers, body = self.get("/")

        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "text/html; charset=utf-8")
        self.assertIn("default-src 'self'", headers["content-security-policy"])
        self.assertEqual(body, (STATIC_DIRECTORY / "index.html").read_bytes())

    def test_static_files_have_content_types(self) -> None:
        cases = [
            ("/static/dashboard.css", "text/css; charset=utf-8"),
            ("/static/main.js", "text/javascript; charset=utf-8"),
            ("/static/fleet-table.js", "text/javascript; charset=utf-8"),
            ("/static/sparkline.js", "text/javascript; charset=utf-8"),
            ("/static/format.js", "text/javascript; charset=utf-8"),
            ("/static/index.html", "text/html; charset=utf-8"),
        ]
        for path, content_type in cases:
            with self.subTest(path=path):
                status, headers, body = self.get(path)
                self.assertEqual(status, 200)
                self.assertEqual(headers["content-type"], content_type)
                self.assertEqual(headers["x-content-type-options"], "nosniff")
                self.assertEqual(body, (STATIC_DIRECTORY / path.rsplit("/", 1)[1]).read_bytes())

    def test_head_sends_headers_only(self) -> None:
        status, headers, body = self.get("/static/main.js", method="HEAD")

        self.assertEqual(status, 200)
        self.assertEqual(int(headers["content-length"]), (STATIC_DIRECTORY / "main.js").stat().st_size)
        self.assertEqual(body, b"")

    def test_page_modules_are_all_served(self) -> None:
        # Every module that a module imports must exist, or the page stays blank.
        for script in sorted(STATIC_DIRECTORY.glob("*.js")):
            for line in script.read_text(encoding="utf-8").splitlines():
                if line.startswith("} from './") or (line.startswith("import ") and " from './" in line):
                    name = line.split("'./", 1)[1].split("'", 1)[0]
                    with self.subTest(script=script.name, module=name):
                        status, _, _ = self.get(f"/static/{name}")
                        self.assertEqual(status, 200)

    def test_unknown_file_gets_404(self) -> None:
        for path in ["/static/missing.js", "/static/README", "/static/", "/static/a/b.js", "/favicon.ico"]:
            with self.subTest(path=path):
                status, headers, body = self.get(path)
                self.assertEqual(status, 404)
                self.assertEqual(headers["content-type"], "application/json; charset=utf-8")
                self.assertIn("error", json.loads(body))

    def test_traversal_outside_static_gets_404(self) -> None:
        for path in [
            "/static/..%2Fdashboard.py",
            "/static/%2E%2E%2F%2E%2E%2Flunar_server.py",
            "/static/..",
            "/static/.hidden.js",
            "/static/%2Fetc%2Fpasswd",
            "/static/..%5Cdashboard.py",
            "/static/main.js%00.css",
        ]:
            with self.subTest(path=path):
                status, _, body = self.get(path)
                self.assertEqual(status, 404)
                self.assertNotIn(b"import", body)


if __name__ == "__main__":
    unittest.main()

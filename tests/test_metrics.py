"""Tests of /metrics: a strict parser of the text format 0.0.4, and values that follow traffic."""

import json
import math
import re
import time
import unittest

from lunar.metrics import CallbackGauge, Counter, Histogram, Registry
from tests.liveserver import start_service

TIME = "2025-04-02T09:21:50.458989221+02:00"

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
SAMPLE = re.compile(r"(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})? (?P<value>\S+)\Z")
LABEL_PAIR = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|\Z)')
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    """Raised when a scrape breaks the text format."""


def parse_labels(text, line):
    labels = {}
    position = 0
    while position < len(text):
        match = LABEL_PAIR.match(text, position)
        if not match:
            raise ExpositionError(f"invalid labels in {line!r}")
        name, raw_value = match.group(1), match.group(2)
        if name in labels:
            raise ExpositionError(f"label {name} repeated in {line!r}")
        labels[name] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1),
                              raw_value)
        position = match.end()
    return labels


def parse_value(text, line):
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ExpositionError(f"invalid value {text!r} in {line!r}")
    return float(text)


def family_of(sample_name, types):
    """Return the family a sample belongs to, given the declared types."""
    if sample_name in types:
        return sample_name
    for suffix in ("_bucket", "_sum", "_count"):
        base = sample_name[:-len(suffix)]
        if sample_name.endswith(suffix) and types.get(base) == "histogram":
            return base
    raise ExpositionError(f"sample {sample_name} belongs to no declared family")


def parse_exposition(text):
    """Parse and validate a scrape; return {family: {"type", "help", "samples": [(name, labels, value)]}}."""
    if not text.endswith("\n"):
        raise ExpositionError("the scrape does not end with a newline")
    families = {}
    types = {}
    finished = set()
    current = None
    for line in text[:-1].split("\n"):
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4 and line.startswith("# TYPE "):
                raise ExpositionError(f"incomplete TYPE line {line!r}")
            keyword, name = parts[1], parts[2]
            rest = parts[3] if len(parts) > 3 else ""
            if not METRIC_NAME.match(name):
                raise ExpositionError(f"invalid metric name in {line!r}")
            if name in finished:
                raise ExpositionError(f"{name} declared again after its samples ended")
            family = families.setdefault(name, {"type": None, "help": None, "samples": []})
            if family["samples"]:
                raise ExpositionError(f"{keyword} for {name} after its samples")
            if keyword == "HELP":
                if family["help"] is not None:
                    raise ExpositionError(f"second HELP for {name}")
                family["help"] = rest
            else:
                if family["type"] is not None:
                    raise ExpositionError(f"second TYPE for {name}")
                if rest not in TYPES:
                    raise ExpositionError(f"unknown type in {line!r}")
                family["type"] = rest
                types[name] = rest
            if current is not None and current != name:
                finished.add(current)
            current = name
            continue
        if line.startswith("#") or line == "":
            raise ExpositionError(f"unexpected comment or blank line {line!r}")
        match = SAMPLE.match(line)
        if not match:
            raise ExpositionError(f"invalid sample line {line!r}")
        name = family_of(match.group("name"), types)
        if name in finished or (current is not None and name != current):
            raise ExpositionError(f"samples of {name} are not contiguous: {line!r}")
        labels = parse_labels(match.group("labels") or "", line)
        value = parse_value(match.group("value"), line)
        families[name]["samples"].append((match.group("name"), labels, value))
        current = name
    for name, family in families.items():
        if family["type"] is None or family["help"] is None:
            raise ExpositionError(f"{name} lacks a HELP or TYPE line")
    return families


def sample(families, name, **labels):
    """Return the value of the one sample with this name and exactly these labels."""
    family = families[family_of(name, {key: value["type"] for key, value in families.items()})]
    matches = [value for sample_name, sample_labels, value in family["samples"]
               if sample_name == name and sample_labels == labels]
    if len(matches) != 1:
        raise AssertionError(f"{len(matches)} samples of {name} with {labels}")
    return matches[0]


def check_histograms(test, families):
    """Check that every histogram's buckets are cumulative and end with +Inf equal to _count."""
    for name, family in families.items():
        if family["type"] != "histogram":
            continue
        series = {}
        for sample_name, labels, value in family["samples"]:
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None, "sum": None})
            if sample_name.endswith("_bucket"):
                series[key]["buckets"].append((parse_value(labels["le"], name), value))
            elif sample_name.endswith("_count"):
                series[key]["count"] = value
            else:
                series[key]["sum"] = value
        for key, parts in series.items():
            bounds = [bound for bound, _ in parts["buckets"]]
            counts = [count for _, count in parts["buckets"]]
            test.assertEqual(bounds, sorted(bounds), f"{name}{key}: bucket bounds out of order")
            test.assertEqual(bounds[-1], math.inf, f"{name}{key}: no +Inf bucket")
            test.assertEqual(counts, sorted(counts), f"{name}{key}: buckets not cumulative")
            test.assertEqual(counts[-1], parts["count"], f"{name}{key}: +Inf bucket != _count")
            test.assertIsNotNone(parts["sum"], f"{name}{key}: no _sum")


def message(channel, number, message_type="RocketSpeedIncreased", **payload):
    payload = payload or ({"type": "Falcon-9", "launchSpeed": 500, "mission": "ARTEMIS"}
                          if message_type == "RocketLaunched" else {"by": 10})
    return json.dumps({
        "metadata": {"channel": channel, "messageNumber": number, "messageTime": TIME,
                     "messageType": message_type},
        "message": payload,
    }).encode("utf-8")


class ParserTest(unittest.TestCase):
    def test_parser_rejects_broken_scrapes(self):
        broken = [
            "lunar_x 1\n",
            "# HELP lunar_x x\n# TYPE lunar_x counter\nlunar_x{a=\"1} 1\n",
            "# HELP lunar_x x\n# TYPE lunar_x counter\nlunar_x one\n",
            "# HELP lunar_x x\n# TYPE lunar_x counter\n# TYPE lunar_x gauge\nlunar_x 1\n",
            "# HELP lunar_x x\n# TYPE lunar_x counter\nlunar_x 1",
            "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n",
        ]
        for text in broken:
            with self.subTest(text=text), self.assertRaises(ExpositionError):
                parse_exposition(text)


class RegistryTest(unittest.TestCase):
    def test_label_values_and_help_are_escaped(self):
        registry = Registry()
        counter = registry.register(Counter("lunar_test_total", "Back\\slash\nnewline", ("path",)))
        counter.inc(('a"b\\c\nd',))
        text = registry.render()
        self.assertIn('# HELP lunar_test_total Back\\\\slash\\nnewline\n', text)
        families = parse_exposition(text)
        self.assertEqual(sample(families, "lunar_test_total", path='a"b\\c\nd'), 1)

    def test_histogram_counts_into_cumulative_buckets(self):
        registry = Registry()
        histogram = registry.register(Histogram("lunar_test_seconds", "Test.", buckets=(0.1, 1.0)))
        for value in (0.05, 0.1, 0.5, 3.0):
            histogram.observe(value)
        families = parse_exposition(registry.render())
        self.assertEqual(sample(families, "lunar_test_seconds_bucket", le="0.1"), 2)
        self.assertEqual(sample(families, "lunar_test_seconds_bucket", le="1"), 3)
        self.assertEqual(sample(families, "lunar_test_seconds_bucket", le="+Inf"), 4)
        self.assertEqual(sample(families, "lunar_test_seconds_count"), 4)
        self.assertAlmostEqual(sample(families, "lunar_test_seconds_sum"), 3.65)

    def test_counter_cannot_decrease(self):
        counter = Counter("lunar_test_total", "Test.")
        with self.assertRaises(ValueError):
            counter.inc(amount=-1)

    def test_failing_callback_shows_metric_without_samples(self):
        registry = Registry()
        registry.register(CallbackGauge("lunar_broken", "Broken.", (), lambda: 1 / 0))
        with self.assertLogs("lunar.metrics", "ERROR"):
            families = parse_exposition(registry.render())
        self.assertEqual(families["lunar_broken"]["samples"], [])


class MetricsEndpointTest(unittest.TestCase):
    def setUp(self):
        self.service = start_service(self)

    def scrape(self):
        status, headers, body = self.service.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertEqual(headers["Content-Type"], "text/plain; version=0.0.4; charset=utf-8")
        families = parse_exposition(body.decode("utf-8"))
        check_histograms(self, families)
        return families

    def scrape_counted(self, **labels):
        """Scrape until ``lunar_http_requests_total`` has a sample with ``labels``.

        A request is counted just after its response is written, so a scrape
        on another connection can overtake the count of the request before.
        """
        deadline = time.monotonic() + 5
        while True:
            families = self.scrape()
            samples = [found for _, found, _ in families["lunar_http_requests_total"]["samples"]]
            if labels in samples:
                return families
            self.assertLess(time.monotonic(), deadline, f"no request counted with {labels}")
            time.sleep(0.01)

    def post(self, body):
        return self.service.request("POST", "/messages", body)[0]

    def test_every_family_follows_naming_conventions(self):
        families = self.scrape()
        for name, family in families.items():
            with self.subTest(metric=name):
                self.assertTrue(name.startswith("lunar_"))
                self.assertTrue(family["help"])
                if family["type"] == "counter":
                    self.assertTrue(name.endswith("_total"))
                else:
                    self.assertFalse(name.endswith("_total"))
                for _, labels, _ in family["samples"]:
                    for label in labels:
                        self.assertRegex(label, LABEL_NAME)
        for required in ("lunar_messages_total", "lunar_messages_rejected_total",
                         "lunar_pending_messages", "lunar_rockets", "lunar_http_requests_total",
                         "lunar_http_request_duration_seconds", "lunar_http_open_connections",
                         "lunar_sse_subscribers", "lunar_db_commit_duration_seconds",
                         "lunar_process_start_time_seconds"):
            self.assertIn(required, families)

    def test_message_outcomes_and_rejections_are_counted(self):
        self.assertEqual(self.post(message("a", 1, "RocketLaunched")), 202)
        self.assertEqual(self.post(message("a", 3)), 202)
        self.assertEqual(self.post(message("a", 3)), 202)
        self.assertEqual(self.post(b"{not json"), 400)
        self.assertEqual(self.post(json.dumps({"metadata": {}}).encode()), 400)
        families = self.scrape()
        self.assertEqual(sample(families, "lunar_messages_total", outcome="applied"), 1)
        self.assertEqual(sample(families, "lunar_messages_total", outcome="buffered"), 1)
        self.assertEqual(sample(families, "lunar_messages_total", outcome="duplicate"), 1)
        self.assertEqual(sample(families, "lunar_messages_rejected_total", reason="invalid_json"), 1)
        self.assertEqual(sample(families, "lunar_messages_rejected_total", reason="invalid_field"), 1)
        self.assertEqual(sample(families, "lunar_messages_rejected_total", reason="capacity"), 0)
        self.assertEqual(sample(families, "lunar_pending_messages"), 1)
        self.assertEqual(sample(families, "lunar_rockets", status="launched"), 1)
        self.assertEqual(sample(families, "lunar_rockets", status="pending"), 0)
        self.assertEqual(sample(families, "lunar_db_commit_duration_seconds_count"), 2)

    def test_requests_are_labelled_by_route_template(self):
        channel = "193270a9-c9cf-404a-8f83-838e71d9ae67"
        self.assertEqual(self.service.request("GET", f"/rockets/{channel}")[0], 404)
        self.assertEqual(self.service.request("GET", "/no/such/path")[0], 404)
        self.assertEqual(self.service.request("BREW", "/rockets")[0], 405)
        families = self.scrape_counted(route="/rockets", method="other", code="405")
        self.assertNotIn(channel, json.dumps(families))
        self.assertEqual(sample(families, "lunar_http_requests_total",
                                route="/rockets/{channel}", method="GET", code="404"), 1)
        self.assertEqual(sample(families, "lunar_http_requests_total",
                                route="unmatched", method="GET", code="404"), 1)
        self.assertEqual(sample(families, "lunar_http_requests_total",
                                route="/rockets", method="other", code="405"), 1)
        self.assertEqual(sample(families, "lunar_http_request_duration_seconds_count",
                                route="/rockets/{channel}"), 1)

    def test_scrape_counts_itself_on_the_next_scrape(self):
        first = self.scrape()
        self.assertNotIn(("lunar_http_requests_total", {"route": "/metrics", "method": "GET",
                                                        "code": "200"}),
                         [(name, labels) for name, labels, _ in
                          first["lunar_http_requests_total"]["samples"]])
        second = self.scrape_counted(route="/metrics", method="GET", code="200")
        self.assertGreaterEqual(sample(second, "lunar_http_requests_total",
                                       route="/metrics", method="GET", code="200"), 1)

    def test_connections_and_start_time_are_reported(self):
        connection = self.service.connect()
        self.addCleanup(connection.close)
        connection.request("GET", "/healthz")
        connection.getresponse().read()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the worker may still linger on it briefly
            families = self.scrape()
            if sample(families, "lunar_http_connections", state="idle") >= 1:
                break
            time.sleep(0.01)
        self.assertGreaterEqual(sample(families, "lunar_http_open_connections"), 2)
        self.assertGreaterEqual(sample(families, "lunar_http_connections", state="idle"), 1)
        start = sample(families, "lunar_process_start_time_seconds")
        self.assertLessEqual(start, time.time())
        self.assertGreater(start, time.time() - 3600)

    def test_sse_subscriber_count_comes_from_its_hook(self):
        self.assertEqual(sample(self.scrape(), "lunar_sse_subscribers"), 0)
        self.service.metrics.watch_sse_subscribers(lambda: 7)
        self.assertEqual(sample(self.scrape(), "lunar_sse_subscribers"), 7)


if __name__ == "__main__":
    unittest.main()

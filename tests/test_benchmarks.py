"""Quick checks that the benchmark runner's pieces still work, on tiny inputs.

``make bench`` is not part of ``make test``, so these tests run each kind
of measurement once, small: the baseline server and lunar as child
processes on 127.0.0.1, a launcher run, keep-alive latencies, loading
rockets, the in-process sections and the report writer.
"""

import contextlib
import io
import os
import tempfile
import unittest

from tests.benchmarks import __main__ as runner
from tests.benchmarks import measure

TINY = runner.Settings(
    launcher_messages=200, pairs=1, bulk_messages=300, bulk_batch=100, bulk_rounds=1,
    latency_requests=40, latency_connections=(1, 4),
    get_rocket_counts=(3, 10), get_requests=(3, 3),
    drain_depth=50, restore_messages=(100,),
    memory_rockets=50, memory_buffered=100,
)


class BaselineServerTest(unittest.TestCase):

    def setUp(self) -> None:
        self.server = measure.start_baseline()
        self.addCleanup(self.server.stop)

    def test_launcher_run_is_acknowledged(self):
        run = measure.run_launcher(self.server.url, 200)

        self.assertEqual(run.acknowledged, 200)
        self.assertGreater(run.rate, 0)

    def test_keep_alive_latencies(self):
        result = measure.post_latencies(self.server.port, 4, 40)

        self.assertEqual(result.requests, 40)
        self.assertLessEqual(result.p50_ms, result.p99_ms)

    def test_invalid_json_gets_400(self):
        connection = measure.SocketPostConnection("127.0.0.1", self.server.port, "/messages", 5.0)
        self.addCleanup(connection.close)

        status, _ = connection.post(b"{not json")

        self.assertEqual(status, 400)


class LunarServerTest(unittest.TestCase):

    def test_loading_and_memory_reading(self):
        server = measure.start_lunar(measure.MEMORY_DATABASE)
        self.addCleanup(server.stop)

        measure.load_rockets(server.port, 0, 5)
        measure.load_buffered(server.port, "buffered", 1)
        latencies = measure.get_latencies(server.port, "/rockets", 2)

        self.assertEqual(latencies.requests, 2)
        self.assertGreater(measure.rss_kib(server.process.pid), 0)


class SectionTest(unittest.TestCase):

    def setUp(self) -> None:
        directory = tempfile.TemporaryDirectory()
        self.addCleanup(directory.cleanup)
        self.directory = directory.name
        quiet = contextlib.redirect_stderr(io.StringIO())  # the runner's progress lines
        quiet.__enter__()
        self.addCleanup(quiet.__exit__, None, None, None)

    def test_launcher_section_compares_three_servers(self):
        lines = runner.launcher_section(TINY, self.directory)

        self.assertTrue(any(line.startswith("| median |") for line in lines), lines)

    def test_bulk_section_measures_three_clients(self):
        lines = runner.bulk_section(TINY, self.directory)

        rows = [line for line in lines if line.startswith(("| launch", "| replay"))]
        self.assertEqual(len(rows), 3, lines)

    def test_in_process_sections(self):
        for section in (runner.drain_section, runner.restore_section):
            with self.subTest(section.__name__):
                lines = section(TINY, self.directory)
                self.assertGreaterEqual(sum(line.startswith("| ") for line in lines), 3)

    def test_report_keeps_text_around_markers(self):
        path = os.path.join(self.directory, "BENCHMARKS.md")
        with open(path, "w", encoding="utf-8") as report:
            report.write(f"# Title\n\n{runner.BEGIN_MARKER}\nold\n{runner.END_MARKER}\n\n## Notes\n")

        runner.write_report("new table\n", path)

        with open(path, encoding="utf-8") as report:
            text = report.read()
        self.assertIn("new table", text)
        self.assertNotIn("old", text)
        self.assertTrue(text.startswith("# Title"))
        self.assertTrue(text.endswith("## Notes\n"))


class StatisticsTest(unittest.TestCase):

    def test_percentile_nearest_rank(self):
        values = list(range(1, 101))

        self.assertEqual(measure.percentile(values, 0.5), 50)
        self.assertEqual(measure.percentile(values, 0.99), 99)
        self.assertEqual(measure.percentile([7.0], 0.99), 7.0)

    def test_median_ratio(self):
        self.assertEqual(measure.median_ratio([(1, 2), (3, 3), (9, 3)]), 1.0)


if __name__ == "__main__":
    unittest.main()

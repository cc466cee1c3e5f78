"""Metrics in the Prometheus text exposition format 0.0.4, written by hand.

A ``Registry`` contains counters, gauges and histograms, each with a fixed
tuple of label names, and gauges whose value a callback supplies when the
metrics are scraped. ``Registry.render`` writes the HELP, TYPE and sample
lines. This module does not depend on rockets or HTTP, and it does not
support summaries, exemplars or the OpenMetrics format.
"""

import bisect
import logging
import math
import threading
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Bucket upper bounds in seconds for request and commit durations: from
# 0.5 ms, about what a small GET takes, up to 10 s, the default request timeout.
DURATION_BUCKETS_SECONDS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)

LabelValues = Tuple[str, ...]


class Metric:
    """A named metric family with fixed label names."""

    type_name = "untyped"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.label_names = tuple(label_names)
        self._lock = threading.Lock()

    def samples(self) -> Iterable[Tuple[str, LabelValues, float]]:
        """Yield (name suffix, label values, value) for every sample, in output order."""
        raise NotImplementedError

    def _check_labels(self, labels: LabelValues) -> None:
        if len(labels) != len(self.label_names):
            raise ValueError(f"metric {self.name} takes labels {self.label_names}, got {labels}")


class Counter(Metric):
    """A value that only goes up, by label values."""

    type_name = "counter"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = (),
                 initial_labels: Iterable[LabelValues] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: Dict[LabelValues, float] = {}
        for labels in initial_labels:
            self._check_labels(labels)
            self._values[labels] = 0
        if not label_names:
            self._values[()] = 0

    def inc(self, labels: LabelValues = (), amount: float = 1) -> None:
        """Add ``amount``, which must not be negative, to the sample with ``labels``."""
        if amount < 0:
            raise ValueError(f"counter {self.name} cannot decrease (amount {amount})")
        with self._lock:
            value = self._values.get(labels)
            if value is None:
                self._check_labels(labels)
                value = 0
            self._values[labels] = value + amount

    def value(self, labels: LabelValues = ()) -> float:
        """Return the current value for ``labels`` (0 if never incremented)."""
        with self._lock:
            return self._values.get(labels, 0)

    def samples(self) -> Iterable[Tuple[str, LabelValues, float]]:
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield "", labels, value


class Gauge(Metric):
    """A value that goes up and down, by label values, set directly."""

    type_name = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = ()) -> None:
        super().__init__(name, help_text, label_names)
        self._values: Dict[LabelValues, float] = {} if label_names else {(): 0}

    def set(self, value: float, labels: LabelValues = ()) -> None:
        """Set the sample with ``labels`` to ``value``."""
        self._check_labels(labels)
        with self._lock:
            self._values[labels] = value

    def samples(self) -> Iterable[Tuple[str, LabelValues, float]]:
        with self._lock:
            items = sorted(self._values.items())
        for labels, value in items:
            yield "", labels, value


class CallbackGauge(Metric):
    """A gauge whose samples a function returns at scrape time.

    The function returns a mapping from label values to numbers (use ``()``
    as the only key for a gauge without labels). ``set_function`` replaces
    it, so a component built after the registry can report its own value.
    When the function raises, ``Registry.render`` logs the error and shows
    the metric without samples.
    """

    type_name = "gauge"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = (),
                 function: Optional[Callable[[], Dict[LabelValues, float]]] = None) -> None:
        super().__init__(name, help_text, label_names)
        self._function = function or (lambda: {(): 0} if not label_names else {})

    def set_function(self, function: Callable[[], Dict[LabelValues, float]]) -> None:
        """Use ``function`` for the samples from now on."""
        self._function = function

    def samples(self) -> Iterable[Tuple[str, LabelValues, float]]:
        values = self._function()
        for labels in sorted(values):
            self._check_labels(labels)
            yield "", labels, values[labels]


class CallbackCounter(CallbackGauge):
    """A counter whose samples a function returns at scrape time, such as totals kept elsewhere."""

    type_name = "counter"


class Histogram(Metric):
    """Observations counted into cumulative buckets, with their sum and count, by label values."""

    type_name = "histogram"

    def __init__(self, name: str, help_text: str, label_names: Sequence[str] = (),
                 buckets: Sequence[float] = DURATION_BUCKETS_SECONDS) -> None:
        super().__init__(name, help_text, label_names)
        if list(buckets) != sorted(set(buckets)) or not buckets:
            raise ValueError(f"histogram {name} needs increasing bucket bounds, got {buckets}")
        self.buckets = tuple(float(bound) for bound in buckets)
        # Per label values: a count per bucket (the last one is +Inf), then the sum.
        self._series: Dict[LabelValues, Tuple[List[int], List[float]]] = {}

    def observe(self, value: float, labels: LabelValues = ()) -> None:
        """Record one observation, in the metric's unit."""
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                self._check_labels(labels)
                series = self._series[labels] = ([0] * (len(self.buckets) + 1), [0.0])
            series[0][index] += 1
            series[1][0] += value

    def samples(self) -> Iterable[Tuple[str, LabelValues, float]]:
        with self._lock:
            snapshot = sorted((labels, list(counts), sums[0])
                              for labels, (counts, sums) in self._series.items())
        for labels, counts, total in snapshot:
            cumulative = 0
            for bound, count in zip(self.buckets + (math.inf,), counts):
                cumulative += count
                yield "_bucket", labels + (_format_value(bound),), cumulative
            yield "_sum", labels, total
            yield "_count", labels, cumulative


class Registry:
    """The metrics one service exposes, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: Dict[str, Metric] = {}
        self._lock = threading.Lock()

    def register(self, metric: Metric) -> Metric:
        """Add a metric; its name must be new."""
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric
        return metric

    def get(self, name: str) -> Metric:
        """Return a registered metric by name; raise KeyError if there is none."""
        return self._metrics[name]

    def render(self) -> str:
        """Return every metric in the text exposition format 0.0.4."""
        with self._lock:
            metrics = list(self._metrics.values())
        lines = []
        for metric in metrics:
            try:
                samples = list(metric.samples())
            except Exception:
                logger.exception("reading metric %s failed; it is shown without samples",
                                 metric.name)
                samples = []
            lines.append(f"# HELP {metric.name} {_escape_help(metric.help)}")
            lines.append(f"# TYPE {metric.name} {metric.type_name}")
            for suffix, labels, value in samples:
                names = metric.label_names + (("le",) if suffix == "_bucket" else ())
                lines.append(f"{metric.name}{suffix}{_format_labels(names, labels)} "
                             f"{_format_value(value)}")
        return "\n".join(lines) + "\n"


def _format_labels(names: Sequence[str], values: LabelValues) -> str:
    if not names:
        return ""
    pairs = ",".join(f'{name}="{_escape_label(value)}"' for name, value in zip(names, values))
    return "{" + pairs + "}"


def _escape_label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _format_value(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)

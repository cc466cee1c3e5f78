/**
 * Inline SVG sparklines: a polyline of recent values scaled to a small box.
 * The vertical scale spans each line's own minimum and maximum, so the
 * shape shows the trend, not the absolute speed.
 */

const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';
const WIDTH = 96; // CSS pixels
const HEIGHT = 24; // CSS pixels
const PADDING = 3; // keeps the end dot inside the box

/** Creates an empty sparkline: an SVG with one polyline and a dot for the latest value. */
export function createSparkline() {
  const svg = document.createElementNS(SVG_NAMESPACE, 'svg');
  svg.setAttribute('class', 'sparkline');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('width', String(WIDTH));
  svg.setAttribute('height', String(HEIGHT));
  svg.setAttribute('role', 'img');
  svg.append(
    document.createElementNS(SVG_NAMESPACE, 'polyline'),
    document.createElementNS(SVG_NAMESPACE, 'circle'),
  );
  return svg;
}

/** Returns one [x, y] pair per value, oldest first, in the viewBox coordinates. */
export function sparklinePoints(values) {
  if (values.length === 0) {
    return [];
  }
  const minimum = Math.min(...values);
  const maximum = Math.max(...values);
  const step = values.length > 1 ? (WIDTH - 2 * PADDING) / (values.length - 1) : 0;
  const drawableHeight = HEIGHT - 2 * PADDING;
  return values.map((value, index) => {
    const fraction = maximum === minimum ? 0.5 : (value - minimum) / (maximum - minimum);
    return [PADDING + index * step, HEIGHT - PADDING - fraction * drawableHeight];
  });
}

/** Redraws a sparkline from values and describes them for screen readers. */
export function updateSparkline(svg, values) {
  const points = sparklinePoints(values);
  const [polyline, dot] = svg.children;
  polyline.setAttribute('points', points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '));
  if (points.length > 0) {
    const [x, y] = points[points.length - 1];
    dot.setAttribute('cx', x.toFixed(1));
    dot.setAttribute('cy', y.toFixed(1));
    dot.setAttribute('r', '2');
  }
  const first = values[0];
  const last = values[values.length - 1];
  svg.setAttribute('aria-label', values.length === 0
    ? 'no speed received yet'
    : `${values.length} speeds received, from ${first} to ${last}`);
}

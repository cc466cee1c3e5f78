/**
 * The dashboard page: connects to GET /events and wires the controls.
 *
 * Events update the fleet model at once, but the DOM is written at most once
 * per animation frame. EventSource reconnects by itself after a network error
 * and sends the last event id, so the server replays what was missed or sends
 * a snapshot after a restart. When the browser gives up, because the server
 * responded with an error status such as 503, this page opens a new
 * connection after RECONNECT_DELAY_MS.
 */

import { FleetTable } from './fleet-table.js';
import { formatCount, formatRate } from './format.js';

const EVENTS_URL = '/events';
const RECONNECT_DELAY_MS = 5000; // after the browser closed the stream for good
const OFFLINE_AFTER_MS = 10_000; // reconnecting for longer than this shows "offline"
// The server sends a stats event every second, so this much silence means a dead connection.
const SILENCE_LIMIT_MS = 20_000;
const TICK_MS = 1000; // ages, stale markers and the connection state are refreshed this often

const CONNECTION_TEXT = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  offline: 'Offline, retrying',
};

const elements = {
  connection: document.getElementById('connection'),
  connectionText: document.getElementById('connection-text'),
  search: document.getElementById('search'),
  missionFilter: document.getElementById('mission-filter'),
  statusFilter: document.getElementById('status-filter'),
  staleSeconds: document.getElementById('stale-seconds'),
  filters: document.querySelector('form.filters'),
  totals: {
    rockets: document.getElementById('total-rockets'),
    launched: document.getElementById('total-launched'),
    exploded: document.getElementById('total-exploded'),
    pendingRockets: document.getElementById('total-pending-rockets'),
    pendingMessages: document.getElementById('total-pending-messages'),
    messagesPerSecond: document.getElementById('total-rate'),
  },
};

// -- rendering, batched per animation frame ------------------------------------

let frameRequested = false;
let pendingStats = null;

function requestRender() {
  if (!frameRequested) {
    frameRequested = true;
    requestAnimationFrame(render);
  }
}

function render() {
  frameRequested = false;
  table.render(Date.now());
  if (pendingStats !== null) {
    renderTotals(pendingStats);
    pendingStats = null;
  }
}

function renderTotals(stats) {
  for (const [name, element] of Object.entries(elements.totals)) {
    const value = stats[name];
    const text = name === 'messagesPerSecond' ? formatRate(value) : formatCount(value);
    if (element.textContent !== text) {
      element.textContent = text;
    }
  }
}

const table = new FleetTable({
  table: document.getElementById('fleet'),
  caption: document.getElementById('fleet-caption'),
  missionSelect: elements.missionFilter,
  requestRender,
});

// -- the event stream ----------------------------------------------------------

let source = null;
let connectionState = 'connecting';
let lostSince = null; // when the connection was last lost, or null while connected
let lastEventAt = 0;
let reconnectTimer = null;

function showConnection(state) {
  if (state === connectionState) {
    return;
  }
  connectionState = state;
  elements.connection.dataset.state = state;
  elements.connectionText.textContent = CONNECTION_TEXT[state];
}

function connectionLost() {
  if (lostSince === null) {
    lostSince = Date.now();
  }
  const offline = !navigator.onLine || Date.now() - lostSince > OFFLINE_AFTER_MS;
  showConnection(offline ? 'offline' : 'reconnecting');
}

function connect() {
  reconnectTimer = null;
  const stream = new EventSource(EVENTS_URL);
  source = stream;
  stream.addEventListener('open', () => {
    lostSince = null;
    lastEventAt = Date.now();
    showConnection('connected');
  });
  stream.addEventListener('error', () => {
    if (stream !== source) {
      return;
    }
    connectionLost();
    if (stream.readyState === EventSource.CLOSED) {
      reconnectLater();
    }
  });
  stream.addEventListener('snapshot', (event) => {
    lastEventAt = Date.now();
    table.replaceAll(JSON.parse(event.data));
  });
  stream.addEventListener('rocket', (event) => {
    lastEventAt = Date.now();
    table.upsert(JSON.parse(event.data));
  });
  stream.addEventListener('stats', (event) => {
    lastEventAt = Date.now();
    pendingStats = JSON.parse(event.data);
    requestRender();
  });
}

function reconnectLater() {
  source.close();
  if (reconnectTimer === null) {
    reconnectTimer = setTimeout(connect, RECONNECT_DELAY_MS);
  }
}

function tick() {
  table.tick();
  if (connectionState === 'connected' && Date.now() - lastEventAt > SILENCE_LIMIT_MS) {
    // A half-open connection never reports an error, so start over.
    connectionLost();
    reconnectLater();
  } else if (lostSince !== null) {
    connectionLost();
  }
}

// -- controls ------------------------------------------------------------------

function readStaleSeconds() {
  const seconds = Number(elements.staleSeconds.value);
  return Number.isFinite(seconds) && seconds >= 1 ? seconds : null;
}

elements.filters.addEventListener('submit', (event) => event.preventDefault());
elements.search.addEventListener('input', () => table.setFilters({ search: elements.search.value.trim() }));
elements.missionFilter.addEventListener('change', () => table.setFilters({ mission: elements.missionFilter.value }));
elements.statusFilter.addEventListener('change', () => table.setFilters({ status: elements.statusFilter.value }));
elements.staleSeconds.addEventListener('input', () => {
  const seconds = readStaleSeconds();
  elements.staleSeconds.setAttribute('aria-invalid', String(seconds === null));
  if (seconds !== null) {
    table.setStaleSeconds(seconds);
  }
});
for (const header of document.querySelectorAll('#fleet th[data-sort]')) {
  header.querySelector('button').addEventListener('click', () => table.sortBy(header.dataset.sort));
}
window.addEventListener('offline', connectionLost);
window.addEventListener('online', () => {
  if (lostSince !== null && source.readyState === EventSource.CLOSED) {
    clearTimeout(reconnectTimer);
    connect();
  }
});

table.setStaleSeconds(readStaleSeconds() ?? 30);
connect();
setInterval(tick, TICK_MS);

/**
 * The fleet table: one row per channel, kept and updated in place.
 *
 * Events only change the model and mark rows dirty. render(), which the page
 * calls at most once per animation frame, then writes only the cells whose
 * text changed. Rows are reordered by moving only the rows that are out of
 * place, and at most every RESORT_INTERVAL_MS while sort values change.
 */

import {
  formatAge, formatClock, formatCount, formatSpeed, parseTimestamp, shortChannel,
} from './format.js';
import { createSparkline, updateSparkline } from './sparkline.js';

const HISTORY_LENGTH = 60; // speeds kept per rocket for its sparkline
const RESORT_INTERVAL_MS = 500; // rows move at most this often while values change
const STATUS_LABELS = { launched: 'Launched', pending: 'Not launched', exploded: 'Exploded' };
const STATUS_ORDER = { launched: 0, pending: 1, exploded: 2 };

// Not numeric: channels are usually hex UUIDs, whose digit runs are not numbers.
const collator = new Intl.Collator(undefined, { sensitivity: 'base' });

/** Sort keys by column: each returns a string or a number, and missing values sort last. */
const SORT_KEYS = {
  channel: (entry) => entry.rocket.channel,
  type: (entry) => entry.rocket.type,
  mission: (entry) => entry.rocket.mission,
  speed: (entry) => entry.rocket.speed,
  status: (entry) => STATUS_ORDER[entry.rocket.status] ?? 3,
  lastUpdate: (entry) => entry.messageTime,
  pending: (entry) => entry.rocket.pendingMessages,
};

const SORT_LABELS = {
  channel: 'channel', type: 'type', mission: 'mission', speed: 'speed',
  status: 'status', lastUpdate: 'last update', pending: 'pending messages',
};

function compareValues(left, right) {
  const leftMissing = left === null || left === undefined;
  const rightMissing = right === null || right === undefined;
  if (leftMissing || rightMissing) {
    return Number(leftMissing) - Number(rightMissing);
  }
  if (typeof left === 'number' && typeof right === 'number') {
    return left - right;
  }
  return collator.compare(String(left), String(right));
}

/** Returns a cell, of the given tag, with a class name. */
function cell(tag, className) {
  const element = document.createElement(tag);
  element.className = className;
  return element;
}

export class FleetTable {
  /**
   * table: the <table> with a <tbody>; caption: its <caption>;
   * missionSelect: the <select> whose options list the missions seen;
   * requestRender: called whenever a render is needed.
   */
  constructor({ table, caption, missionSelect, requestRender }) {
    this.tbody = table.tBodies[0];
    this.headers = [...table.tHead.rows[0].cells];
    this.caption = caption;
    this.missionSelect = missionSelect;
    this.requestRender = requestRender;

    this.entries = new Map(); // channel -> entry
    this.dirty = new Set(); // entries whose rocket changed since the last render
    this.missions = new Map(); // lower-case mission -> spelling shown
    this.missionsChanged = false;

    this.sortKey = 'channel';
    this.sortDirection = 1; // 1 ascending, -1 descending
    this.sortDue = true;
    this.sortForced = true;
    this.lastSortAt = 0;
    this.resortTimer = null;

    this.filters = { search: '', mission: '', status: '' };
    this.staleMilliseconds = 30_000;
    this.allRowsDue = false; // ages, stale markers and visibility of every row
    this.captionDue = true;
    this.updateSortIndicators();
  }

  // -- the model --------------------------------------------------------------

  /** Stores a rocket's latest state and adds its speed to the history. */
  upsert(rocket) {
    let entry = this.entries.get(rocket.channel);
    if (entry === undefined) {
      entry = this.createEntry(rocket.channel);
      this.entries.set(rocket.channel, entry);
      // A new row is not in the table until the next sort places it.
      this.sortDue = true;
      this.sortForced = true;
      this.captionDue = true;
    }
    const keyOf = SORT_KEYS[this.sortKey];
    const previous = entry.rocket;
    const keyBefore = previous === null ? undefined : keyOf(entry);
    entry.rocket = rocket;
    entry.messageTime = parseTimestamp(rocket.lastMessageTime);
    if (keyOf(entry) !== keyBefore) {
      this.sortDue = true;
    }

    const isNewMessage = previous === null || previous.lastMessageNumber !== rocket.lastMessageNumber;
    if (rocket.speed !== null && rocket.speed !== undefined && (isNewMessage || entry.history.length === 0)) {
      entry.history.push(rocket.speed);
      if (entry.history.length > HISTORY_LENGTH) {
        entry.history.shift();
      }
    }
    this.noteMission(rocket.mission);
    this.dirty.add(entry);
    this.requestRender();
  }

  /** Replaces the whole fleet with a snapshot, keeping the history of rockets still present. */
  replaceAll(rockets) {
    const present = new Set(rockets.map((rocket) => rocket.channel));
    for (const [channel, entry] of this.entries) {
      if (!present.has(channel)) {
        entry.row.remove();
        this.entries.delete(channel);
        this.dirty.delete(entry);
      }
    }
    this.missions.clear();
    this.missionsChanged = true;
    for (const rocket of rockets) {
      this.upsert(rocket);
    }
    this.sortDue = true;
    this.captionDue = true;
    this.requestRender();
  }

  noteMission(mission) {
    if (!mission) {
      return;
    }
    const key = mission.toLowerCase();
    const known = this.missions.get(key);
    if (known === undefined || mission < known) {
      this.missions.set(key, mission);
      this.missionsChanged = true;
    }
  }

  // -- controls ---------------------------------------------------------------

  /** Sorts by a column; choosing the current column again reverses the order. */
  sortBy(key) {
    if (!(key in SORT_KEYS)) {
      return;
    }
    if (key === this.sortKey) {
      this.sortDirection = -this.sortDirection;
    } else {
      this.sortKey = key;
      this.sortDirection = 1;
    }
    this.sortDue = true;
    this.sortForced = true;
    this.captionDue = true;
    this.updateSortIndicators();
    this.requestRender();
  }

  setFilters(filters) {
    this.filters = { ...this.filters, ...filters };
    this.allRowsDue = true;
    this.requestRender();
  }

  setStaleSeconds(seconds) {
    this.staleMilliseconds = seconds * 1000;
    this.allRowsDue = true;
    this.requestRender();
  }

  /** Marks every row's age and stale marker for an update, once a second. */
  tick() {
    this.allRowsDue = true;
    this.requestRender();
  }

  // -- rendering --------------------------------------------------------------

  /** Writes every pending change to the DOM; now is the time in milliseconds. */
  render(now) {
    if (this.missionsChanged) {
      this.renderMissionOptions();
    }
    const entries = this.allRowsDue ? this.entries.values() : this.dirty;
    let visibilityChanged = false;
    for (const entry of entries) {
      if (this.dirty.has(entry)) {
        this.renderRocket(entry);
      }
      this.renderAge(entry, now);
      visibilityChanged = this.renderVisibility(entry, now) || visibilityChanged;
    }
    this.dirty.clear();
    this.allRowsDue = false;

    if (this.sortDue) {
      if (this.sortForced || now - this.lastSortAt >= RESORT_INTERVAL_MS) {
        this.reorderRows();
        this.lastSortAt = now;
        this.sortDue = false;
        this.sortForced = false;
      } else if (this.resortTimer === null) {
        this.resortTimer = setTimeout(() => {
          this.resortTimer = null;
          this.requestRender();
        }, RESORT_INTERVAL_MS - (now - this.lastSortAt));
      }
    }
    if (visibilityChanged || this.captionDue) {
      this.renderCaption();
    }
  }

  createEntry(channel) {
    const row = document.createElement('tr');
    row.dataset.channel = channel;

    const channelCell = cell('th', 'channel');
    channelCell.scope = 'row';
    channelCell.title = channel;
    channelCell.textContent = shortChannel(channel);

    const statusCell = cell('td', 'status');
    const badge = cell('span', 'badge');
    const staleBadge = cell('span', 'badge badge-stale');
    staleBadge.textContent = 'Stale';
    staleBadge.hidden = true;
    const reason = cell('span', 'reason');
    statusCell.append(badge, staleBadge, reason);

    const updatedCell = cell('td', 'updated');
    const clock = cell('time', 'clock');
    const age = cell('span', 'age');
    updatedCell.append(clock, age);

    const historyCell = cell('td', 'history');
    const sparkline = createSparkline();
    historyCell.append(sparkline);

    const typeCell = cell('td', 'type');
    const missionCell = cell('td', 'mission');
    const speedCell = cell('td', 'speed numeric');
    const pendingCell = cell('td', 'pending numeric');
    row.append(channelCell, typeCell, missionCell, speedCell, historyCell, statusCell, updatedCell, pendingCell);

    return {
      channel,
      rocket: null,
      messageTime: null,
      history: [],
      row,
      elements: {
        type: typeCell, mission: missionCell, speed: speedCell, sparkline,
        badge, staleBadge, reason, clock, age, pending: pendingCell,
      },
      shown: {}, // the last text written to each element, to skip unchanged cells
      historyLength: -1,
      historyLast: null,
      stale: false,
      visible: true,
    };
  }

  setText(entry, name, text) {
    if (entry.shown[name] !== text) {
      entry.shown[name] = text;
      entry.elements[name].textContent = text;
    }
  }

  renderRocket(entry) {
    const rocket = entry.rocket;
    this.setText(entry, 'type', rocket.type ?? '—');
    this.setText(entry, 'mission', rocket.mission ?? '—');
    this.setText(entry, 'speed', formatSpeed(rocket.speed));
    this.setText(entry, 'pending', formatCount(rocket.pendingMessages));
    this.setText(entry, 'badge', (rocket.status === 'exploded' ? '✕ ' : '') + (STATUS_LABELS[rocket.status] ?? rocket.status));
    this.setText(entry, 'reason', rocket.status === 'exploded' && rocket.explosionReason ? rocket.explosionReason : '');
    this.setText(entry, 'clock', formatClock(entry.messageTime));

    if (entry.shown.status !== rocket.status) {
      entry.shown.status = rocket.status;
      entry.row.dataset.status = rocket.status;
      entry.elements.badge.className = `badge badge-${rocket.status}`;
    }
    const hasGap = rocket.pendingMessages > 0;
    if (entry.shown.hasGap !== hasGap) {
      entry.shown.hasGap = hasGap;
      entry.elements.pending.classList.toggle('has-gap', hasGap);
    }
    if (entry.shown.lastMessageTime !== rocket.lastMessageTime) {
      entry.shown.lastMessageTime = rocket.lastMessageTime;
      entry.elements.clock.dateTime = rocket.lastMessageTime ?? '';
    }
    const history = entry.history;
    const last = history[history.length - 1];
    if (entry.historyLength !== history.length || entry.historyLast !== last) {
      entry.historyLength = history.length;
      entry.historyLast = last;
      updateSparkline(entry.elements.sparkline, history);
    }
  }

  renderAge(entry, now) {
    const ageMilliseconds = entry.messageTime === null ? null : now - entry.messageTime;
    this.setText(entry, 'age', ageMilliseconds === null ? '' : formatAge(ageMilliseconds / 1000));
    const stale = entry.rocket.status !== 'exploded'
      && ageMilliseconds !== null && ageMilliseconds > this.staleMilliseconds;
    if (entry.stale !== stale) {
      entry.stale = stale;
      entry.row.classList.toggle('is-stale', stale);
      entry.elements.staleBadge.hidden = !stale;
    }
  }

  /** Shows or hides a row by the filters; returns whether that changed. */
  renderVisibility(entry) {
    const visible = this.matchesFilters(entry);
    if (entry.visible === visible) {
      return false;
    }
    entry.visible = visible;
    entry.row.hidden = !visible;
    return true;
  }

  matchesFilters(entry) {
    const { search, mission, status } = this.filters;
    const rocket = entry.rocket;
    if (search) {
      const needle = search.toLowerCase();
      const inChannel = rocket.channel.toLowerCase().includes(needle);
      const inType = (rocket.type ?? '').toLowerCase().includes(needle);
      if (!inChannel && !inType) {
        return false;
      }
    }
    if (mission && (rocket.mission ?? '').toLowerCase() !== mission) {
      return false;
    }
    if (status === 'stale') {
      return entry.stale;
    }
    return !status || rocket.status === status;
  }

  reorderRows() {
    const keyOf = SORT_KEYS[this.sortKey];
    const direction = this.sortDirection;
    const ordered = [...this.entries.values()].sort((left, right) => {
      const leftKey = keyOf(left);
      const rightKey = keyOf(right);
      const leftMissing = leftKey === null || leftKey === undefined;
      const rightMissing = rightKey === null || rightKey === undefined;
      // Missing values stay last in both directions.
      const order = leftMissing || rightMissing
        ? compareValues(leftKey, rightKey)
        : direction * compareValues(leftKey, rightKey);
      return order || collator.compare(left.channel, right.channel);
    });
    let expected = this.tbody.firstElementChild;
    for (const entry of ordered) {
      if (entry.row === expected) {
        expected = expected.nextElementSibling;
      } else {
        this.tbody.insertBefore(entry.row, expected);
      }
    }
  }

  renderMissionOptions() {
    this.missionsChanged = false;
    const select = this.missionSelect;
    const selected = select.value;
    const keys = [...this.missions.keys()].sort(collator.compare);
    const options = [select.options[0]];
    for (const key of keys) {
      const option = document.createElement('option');
      option.value = key;
      option.textContent = this.missions.get(key);
      options.push(option);
    }
    if (selected && !this.missions.has(selected)) {
      // Keep a chosen mission selectable after its rockets left it.
      const option = document.createElement('option');
      option.value = selected;
      option.textContent = selected;
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = selected;
  }

  renderCaption() {
    this.captionDue = false;
    let shown = 0;
    for (const entry of this.entries.values()) {
      shown += entry.visible ? 1 : 0;
    }
    const total = this.entries.size;
    const order = this.sortDirection === 1 ? 'ascending' : 'descending';
    const count = shown === total ? `${total} rockets` : `${shown} of ${total} rockets shown`;
    this.caption.textContent = `Fleet: ${count}, sorted by ${SORT_LABELS[this.sortKey]}, ${order}`;
  }

  updateSortIndicators() {
    for (const header of this.headers) {
      if (header.dataset.sort === this.sortKey) {
        header.setAttribute('aria-sort', this.sortDirection === 1 ? 'ascending' : 'descending');
      } else {
        header.removeAttribute('aria-sort');
      }
    }
  }
}

/**
 * Text formatting for the fleet table: channels, speeds, times and ages.
 * Pure functions with no DOM access, so they are cheap to call on every update.
 */

const SHORT_CHANNEL_LENGTH = 8; // characters of the channel shown in the table

const speedFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const countFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const rateFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const clockFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});

/** Returns the first characters of a channel, which are enough to tell rockets apart. */
export function shortChannel(channel) {
  return channel.length > SHORT_CHANNEL_LENGTH ? channel.slice(0, SHORT_CHANNEL_LENGTH) + '…' : channel;
}

export function formatSpeed(speed) {
  return speed === null || speed === undefined ? '—' : speedFormat.format(speed);
}

export function formatCount(count) {
  return count === null || count === undefined ? '–' : countFormat.format(count);
}

export function formatRate(rate) {
  return rate === null || rate === undefined ? '–' : rateFormat.format(rate);
}

/**
 * Parses an RFC 3339 time into milliseconds since the epoch, or null.
 * The fraction is cut to milliseconds first, because Date.parse is only
 * specified for the ECMAScript date format, which has three fraction digits.
 */
export function parseTimestamp(text) {
  if (!text) {
    return null;
  }
  const milliseconds = Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(milliseconds) ? null : milliseconds;
}

export function formatClock(milliseconds) {
  return milliseconds === null ? '—' : clockFormat.format(milliseconds);
}

/** Formats an age in whole seconds; a negative age from clock skew reads as 0 s. */
export function formatAge(seconds) {
  if (seconds === null) {
    return '';
  }
  const whole = Math.max(0, Math.floor(seconds));
  if (whole < 60) {
    return `${whole} s ago`;
  }
  if (whole < 3600) {
    return `${Math.floor(whole / 60)} min ago`;
  }
  if (whole < 86400) {
    return `${Math.floor(whole / 3600)} h ago`;
  }
  return `${Math.floor(whole / 86400)} d ago`;
}

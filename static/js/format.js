// Small pure formatters for sizes, times and request lines.

const UNITS = ["KiB", "MiB", "GiB"];

/** "0 B", "812 B", "1.4 KiB", "2.0 MiB". */
export function formatBytes(n) {
  if (!Number.isFinite(n) || n < 1024) return `${n} B`;
  let value = n;
  let unit = -1;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${UNITS[unit]}`;
}

/** "1,234 bytes" for exact counts next to rounded ones. */
export function formatCount(n, word = "bytes") {
  return `${Number(n).toLocaleString("en-US")} ${n === 1 ? word.replace(/s$/, "") : word}`;
}

/**
 * Parse the API's ISO 8601 UTC time ("2026-11-23T12:00:00.123456Z") into a Date. Fractions beyond
 * milliseconds are cut, since not every engine parses them.
 */
export function parseTime(iso) {
  if (typeof iso !== "string") return null;
  const trimmed = iso.replace(/(\.\d{3})\d+/, "$1");
  const date = new Date(trimmed);
  return Number.isNaN(date.getTime()) ? null : date;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Local "HH:MM:SS.mmm". */
export function clockTime(date) {
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

/** Local "YYYY-MM-DD HH:MM:SS.mmm". */
export function fullLocalTime(date) {
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${clockTime(date)}`;
}

/** Local time for a list row: the clock alone today, with a short date before otherwise. */
export function rowTime(date, now = new Date()) {
  if (date.toDateString() === now.toDateString()) return clockTime(date);
  const day = date.toLocaleDateString(undefined, { month: "short", day: "numeric" });
  return `${day} ${clockTime(date)}`;
}

/** "3 s ago", "5 min ago", "2 h ago", "4 days ago". */
export function relativeTime(date, now = new Date()) {
  const seconds = Math.round((now.getTime() - date.getTime()) / 1000);
  if (seconds < 5) return "just now";
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ago`;
  const days = Math.floor(seconds / 86400);
  return `${days} day${days === 1 ? "" : "s"} ago`;
}

/**
 * What a request hit below the bin, as sent: "/" for the bin root, then "?query" if any. A list
 * summary carries at most 1,024 characters of each (the detail has them whole): what was cut
 * ends with "…".
 */
export function requestTarget(summary) {
  const path = summary.path ? String(summary.path) : "/";
  if (summary.path_truncated === true) return `${path}…`;
  const query = summary.query_string ? `?${summary.query_string}` : "";
  return path + query + (summary.query_string_truncated === true ? "…" : "");
}

const KNOWN_METHODS = new Set(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]);

/** A CSS class for a method badge; unknown methods share one neutral class. */
export function methodClass(method) {
  const upper = String(method).toUpperCase();
  return `method method-${KNOWN_METHODS.has(upper) ? upper.toLowerCase() : "other"}`;
}

/** The media type without parameters, lower-cased ("" when none). */
export function mediaType(contentType) {
  return contentType ? String(contentType).split(";")[0].trim().toLowerCase() : "";
}

// Making outside text safe to show: URL credentials masked (logs, /readyz, metrics, Kubernetes status)
// and control/bidi characters escaped (a requester-chosen string must not move the terminal's cursor
// or reorder a log line).

/** `scheme://user:pass@host` → `scheme://***@host` (also without a scheme), anywhere in a text. */
const URL_USERINFO = /((?:\b[a-z][a-z0-9+.-]*:)?\/\/)[^\s/?#@]+@/gi;

export function maskUrlCredentials(text: string): string {
  return text.replace(URL_USERINFO, '$1***@');
}

/**
 * C0/C1 controls, DEL, and the invisible or direction-changing characters (soft hyphen, ALM, ZW*,
 * LRM/RLM, LS/PS, LRE…RLO, word joiner…isolates, BOM).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function hasUnsafeChars(text: string): boolean {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text);
}

/** Replaces every unsafe character with its `\uXXXX` escape (so the line stays one visible line). */
export function escapeUnsafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

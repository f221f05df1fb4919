// Pure parsing of a configured recipient (as upstream's FetchRecipient accepts them): an email, or
// `team/channel` where either part may be a handle or, as ours adds, a display name.

export type ParsedRecipient =
  | { kind: 'email'; email: string }
  | { kind: 'channel'; team: string; channel: string }
  | { kind: 'invalid'; reason: string };

/** Channel handles as Mattermost validates them (IsValidChannelIdentifier): lowercase only. */
const CHANNEL_HANDLE = /^[a-z0-9]+([a-z\-_0-9]+|(__)?)[a-z0-9]*$/;
/** Team names as Mattermost validates them. */
const TEAM_HANDLE = /^[a-z0-9]+([a-z\-0-9]+|(__)?)[a-z0-9]+$/;

export function isChannelHandle(s: string): boolean {
  return s.length <= 64 && CHANNEL_HANDLE.test(s);
}

export function isTeamHandle(s: string): boolean {
  return s.length >= 2 && s.length <= 64 && TEAM_HANDLE.test(s);
}

/**
 * Upstream keeps a suggested reviewer only when net/mail.ParseAddress(s).Address == s, i.e. a bare
 * address. This is the practical subset: local@domain, no spaces, angle brackets, quotes or slashes.
 */
export function isEmail(s: string): boolean {
  return /^[^\s@<>()"',;:/\\[\]]+@[^\s@<>()"',;:/\\[\]]+$/.test(s) && !s.startsWith('.') && !s.includes('..');
}

export function parseRecipient(raw: string): ParsedRecipient {
  const s = raw.trim();
  if (isEmail(s)) return { kind: 'email', email: s };
  const parts = s.split('/');
  if (parts.length === 2 && !s.includes('@')) {
    const team = parts[0]!.trim();
    const channel = parts[1]!.trim();
    if (team && channel) return { kind: 'channel', team, channel };
  }
  return {
    kind: 'invalid',
    reason: `Recipient must be either a user email or a channel in the format "team/channel" but got ${JSON.stringify(raw)}`,
  };
}

/** A display name compared loosely: case, surrounding and repeated spaces do not matter. */
export function sameDisplayName(a: string, b: string): boolean {
  const norm = (s: string) => s.normalize('NFKC').trim().replace(/\s+/g, ' ').toLowerCase();
  return norm(a) === norm(b);
}

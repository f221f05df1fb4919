// Loads the upstream-compatible TOML configuration of `teleport-mattermost start`.
// Every problem is collected and reported at once, each naming the key path and what to do;
// unknown keys are warnings that suggest the closest known key.
import fs from 'node:fs';
import path from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import {
  DEFAULT_HTTP_LISTEN_ADDR,
  DEFAULT_LOG_FORMAT,
  DEFAULT_LOG_OUTPUT,
  DEFAULT_LOG_SEVERITY,
  DEFAULT_REFRESH_IDENTITY_INTERVAL,
  DEFAULT_TELEPORT_ADDR,
  TOKEN_FILE_MAX_BYTES,
} from './defaults.js';
import { parseDuration } from './duration.js';
import { maskUrlCredentials } from '../observability/safe-text.js';
import { dict } from './dict.js';
import { closestKey } from './suggest.js';
import { REVIEW_SHAPE, validateReview, type RawReview } from './review.js';
import {
  ANY_KEY,
  checkSection,
  knownKeys,
  show,
  type SectionShape,
  type ShapeIssue,
  type StringCheck,
} from './shape.js';
import type { LogFormat, PluginConfig, Severity } from './types.js';

/** A configuration file is a few KB. */
const CONFIG_FILE_MAX_BYTES = 1024 * 1024;

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
    /** Warnings found before the problems (unknown keys, deprecations), so they are shown too. */
    readonly warnings: string[] = [],
  ) {
    const head =
      problems.length === 1
        ? `configuration ${source} is invalid`
        : `configuration ${source} has ${problems.length} problems`;
    super(`${head}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export interface ParseOptions {
  /** Read `mattermost.token` from the file when it starts with '/' (default true). */
  readTokenFile?: boolean;
  /** Directory that relative paths are shown against (for messages only). */
  cwd?: string;
}

export interface LoadedConfig {
  config: PluginConfig;
  warnings: string[];
}

const SEVERITY_ALIASES: Record<string, Severity> = {
  debug: 'debug',
  trace: 'debug',
  info: 'info',
  warn: 'warn',
  warning: 'warn',
  err: 'error',
  error: 'error',
};
const OUTPUT_ALIASES: Record<string, string> = {
  error: 'stderr',
  '2': 'stderr',
  out: 'stdout',
  '1': 'stdout',
};

const EMAIL = /^[^\s@"<>(),;:\\[\]]+@[^\s@"<>(),;:\\[\]]+\.[^\s@"<>(),;:\\[\]]+$/;
/** `team/channel`: exactly one slash, both parts non-empty (a channel display name may contain spaces). */
const TEAM_CHANNEL = /^[^/\s][^/]*\/[^/]*[^/\s]$/;

export function isEmail(s: string): boolean {
  return EMAIL.test(s);
}
export function isRecipient(s: string): boolean {
  return isEmail(s) || TEAM_CHANNEL.test(s);
}

const positiveDuration: StringCheck = (s) =>
  (parseDuration(s) ?? 0) > 0
    ? undefined
    : `must be a positive duration such as "1m" or "30s", got ${show(s)}`;
const httpUrl: StringCheck = (s) =>
  /^https?:\/\/[^/\s]+/i.test(s.trim())
    ? undefined
    : `must be an http(s) URL, got ${show(maskUrlCredentials(s))}`;
const urlWithoutSpaces: StringCheck = (s) =>
  isHttpUrl(s.trim())
    ? undefined
    : `must be a valid URL without spaces (write a space as %20), got ${show(maskUrlCredentials(s))}`;
const severityName: StringCheck = (s) =>
  s.toLowerCase() in SEVERITY_ALIASES ? undefined : `must be one of DEBUG, INFO, WARN, ERROR, got ${show(s)}`;
const formatName: StringCheck = (s) =>
  ['text', 'json'].includes(s.toLowerCase()) ? undefined : `must be "text" or "json", got ${show(s)}`;
const listenAddr: StringCheck = (s) =>
  /^(\[[^\]]+\]|[^:\s]*)?:?\d{1,5}$/.test(s.trim())
    ? undefined
    : `must look like ":8081" or "127.0.0.1:8081", got ${show(s)}`;
const portInRange: StringCheck = (s) =>
  Number(/(\d+)$/.exec(s.trim())?.[1] ?? 0) <= 65535 ? undefined : `port must be 0 to 65535, got ${show(s)}`;

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;

/** What each key of each table holds (shape.ts); cross-key rules live in validate() below. */
const SHAPE = {
  teleport: {
    addr: str,
    auth_server: str,
    identity: str,
    refresh_identity: bool,
    refresh_identity_interval: { type: 'string', checks: [positiveDuration] },
    client_key: str,
    client_crt: str,
    root_cas: str,
  },
  mattermost: {
    url: { type: 'string', checks: [httpUrl, urlWithoutSpaces] },
    token: str,
    recipients: { type: 'string list' },
    ca_file: str,
    notify_requester: bool,
  },
  role_to_recipients: { [ANY_KEY]: { type: 'string or string list' } },
  log: {
    output: str,
    severity: { type: 'string', checks: [severityName] },
    format: { type: 'string', checks: [formatName] },
  },
  http: { listen_addr: { type: 'string', checks: [listenAddr, portInRange] } },
  review: REVIEW_SHAPE,
} satisfies Record<string, SectionShape>;

/** Each section's known keys, for the unknown-key warnings. */
const KNOWN_KEYS: Record<string, readonly string[] | 'any'> = Object.fromEntries(
  Object.entries(SHAPE).map(([name, shape]) => [name, knownKeys(shape)]),
);

interface RawConfig {
  teleport?: Partial<{
    addr: string;
    auth_server: string;
    identity: string;
    refresh_identity: boolean;
    refresh_identity_interval: string;
    client_key: string;
    client_crt: string;
    root_cas: string;
  }>;
  mattermost?: Partial<{
    url: string;
    token: string;
    recipients: string[];
    ca_file: string;
    notify_requester: boolean;
  }>;
  /** Prototype-free: role names are outside text. */
  role_to_recipients?: Record<string, string | string[]>;
  log?: Partial<{ output: string; severity: string; format: string }>;
  http?: Partial<{ listen_addr: string }>;
  review?: RawReview;
}

/**
 * Checks every section's types and formats. Returns the document with the offending keys (or whole
 * sections) left out, and one issue per problem, in the order of the shape.
 */
function checkShape(doc: Record<string, unknown>): { raw: RawConfig; issues: ShapeIssue[] } {
  const raw: Record<string, unknown> = {};
  const issues: ShapeIssue[] = [];
  for (const [name, shape] of Object.entries(SHAPE)) {
    if (!Object.hasOwn(doc, name) || doc[name] === undefined) continue;
    const checked = checkSection(name, shape, doc[name]);
    issues.push(...checked.issues);
    if (checked.value) raw[name] = checked.value;
  }
  return { raw: raw as RawConfig, issues };
}

function unknownKeyWarnings(doc: Record<string, unknown>): string[] {
  const warnings: string[] = [];
  const sections = Object.keys(KNOWN_KEYS);
  for (const [section, value] of Object.entries(doc)) {
    const known = KNOWN_KEYS[section];
    if (known === undefined) {
      const hint = closestKey(section, sections);
      warnings.push(`unknown section [${section}] is ignored${hint ? `; did you mean [${hint}]?` : ''}`);
      continue;
    }
    if (known === 'any' || value === null || typeof value !== 'object' || Array.isArray(value)) continue;
    for (const key of Object.keys(value)) {
      if (known.includes(key)) continue;
      const hint = closestKey(key, known);
      warnings.push(
        `unknown key ${section}.${key} is ignored${hint ? `; did you mean ${section}.${hint}?` : ''}`,
      );
    }
  }
  return warnings;
}

function isHttpUrl(s: string): boolean {
  if (!/^https?:\/\/[^/\s]+/i.test(s) || /\s/.test(s)) return false;
  try {
    new URL(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why the token cannot be sent as `Authorization: Bearer <token>` (undefined when it can). Names the
 * kind of character only: the message must never show the token.
 */
export function tokenHeaderProblem(token: string): string | undefined {
  const m = /[^\x21-\x7e]/.exec(token);
  if (!m) return undefined;
  const c = m[0];
  const what =
    c === '\n' || c === '\r'
      ? 'a line break (more than one line)'
      : c === '\0'
        ? 'a NUL byte (is it a device such as /dev/zero?)'
        : c === ' ' || c === '\t'
          ? 'a space'
          : c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f
            ? 'a control character'
            : `a non-ASCII character (U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}, e.g. a zero-width space pasted with it)`;
  return `contains ${what}, which cannot be sent in an HTTP header; it must be the bot's access token alone, on one line`;
}

export function readToken(file: string, problems: string[]): string {
  try {
    if (!fs.statSync(file).isFile()) {
      problems.push(
        `mattermost.token: ${file} is not a regular file; put the bot's access token in a file and point the token at it`,
      );
      return '';
    }
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(TOKEN_FILE_MAX_BYTES);
      const n = fs.readSync(fd, buf, 0, TOKEN_FILE_MAX_BYTES, 0);
      const token = buf.subarray(0, n).toString('utf8').trim();
      if (!token)
        problems.push(`mattermost.token: the token file ${file} is empty; put the bot's access token in it`);
      return token;
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    problems.push(
      `mattermost.token: cannot read the token file ${file} (${code}); a token starting with '/' is read from that file — check the path and its permissions`,
    );
    return '';
  }
}

function validate(
  raw: RawConfig,
  opts: ParseOptions,
  problems: string[],
  warnings: string[],
  reported: ReadonlySet<string>,
): PluginConfig {
  const t = raw.teleport ?? {};
  const mm = raw.mattermost ?? {};

  // [teleport]: address and exactly one credential style.
  if (t.auth_server !== undefined) {
    warnings.push('teleport.auth_server is deprecated; rename it to teleport.addr (same meaning)');
  }
  if (t.addr !== undefined && t.auth_server !== undefined && t.addr !== t.auth_server) {
    problems.push(
      `teleport.addr and teleport.auth_server are both set and differ ('${t.addr}' vs '${t.auth_server}'); keep only teleport.addr`,
    );
  }
  const addr = (t.addr ?? t.auth_server ?? DEFAULT_TELEPORT_ADDR).trim();
  if (!/^(\[[^\]]+\]|[^:/\s]+):\d{1,5}$/.test(addr)) {
    problems.push(
      `teleport.addr: must be host:port such as "teleport.example.com:443" or "auth:3025", got '${addr}'`,
    );
  }
  const trio = { client_key: t.client_key, client_crt: t.client_crt, root_cas: t.root_cas };
  const trioSet = Object.entries(trio).filter(([, v]) => v !== undefined && v !== '');
  if (t.identity && trioSet.length > 0) {
    problems.push(
      'teleport.identity is mutually exclusive with teleport.client_key, teleport.client_crt and teleport.root_cas; use one credential style',
    );
  } else if (!t.identity && trioSet.length > 0 && trioSet.length < 3) {
    const missing = Object.keys(trio).filter((k) => !trioSet.some(([s]) => s === k));
    problems.push(
      `teleport.${trioSet.map(([k]) => k).join(', teleport.')} set but teleport.${missing.join(', teleport.')} missing; the TLS key pair style needs all three`,
    );
  } else if (
    !t.identity &&
    trioSet.length === 0 &&
    !reported.has('teleport.identity') &&
    !reported.has('teleport')
  ) {
    problems.push(
      'teleport: no credentials configured; set teleport.identity to an identity file (tctl auth sign --format=file, or tbot) or set client_key, client_crt and root_cas',
    );
  }
  if (t.refresh_identity && !t.identity) {
    problems.push('teleport.refresh_identity requires teleport.identity to be set');
  }

  // [mattermost]
  if (
    (mm.url === undefined || mm.url.trim() === '') &&
    !reported.has('mattermost.url') &&
    !reported.has('mattermost')
  ) {
    problems.push(
      'mattermost.url: missing; set it to your Mattermost server, e.g. "https://mattermost.example.com"',
    );
  }
  let token = '';
  let tokenSource = 'inline';
  if (mm.token === undefined || mm.token.trim() === '') {
    if (!reported.has('mattermost.token') && !reported.has('mattermost'))
      problems.push(
        "mattermost.token: missing; set the bot's access token, or a path starting with '/' to read it from",
      );
  } else if (mm.token.startsWith('/')) {
    tokenSource = mm.token;
    token = opts.readTokenFile === false ? '' : readToken(mm.token, problems);
  } else {
    token = mm.token.trim();
  }
  const tokenProblem = token ? tokenHeaderProblem(token) : undefined;
  if (tokenProblem) {
    problems.push(
      `mattermost.token${tokenSource === 'inline' ? '' : ` (read from the file ${tokenSource})`}: ${tokenProblem}`,
    );
  }
  const recipients = mm.recipients ?? [];
  recipients.forEach((r, i) => {
    if (!isRecipient(r.trim())) {
      problems.push(`mattermost.recipients[${i}]: must be "team/channel" or an email address, got '${r}'`);
    }
  });

  // [role_to_recipients], with upstream's replacement rule. Role names are outside text: the map has no
  // prototype (`__proto__` is a role name like any other; shape.ts keeps it).
  const roleMap = dict<string[]>();
  for (const [role, value] of Object.entries(raw.role_to_recipients ?? {})) {
    const list = typeof value === 'string' ? [value] : value;
    list.forEach((r, i) => {
      if (!isRecipient(r.trim())) {
        problems.push(
          `role_to_recipients.${role}${typeof value === 'string' ? '' : `[${i}]`}: must be "team/channel" or an email address, got '${r}'`,
        );
      }
    });
    roleMap[role] = list.map((r) => r.trim());
  }
  let roleToRecipients = roleMap;
  if (recipients.length > 0) {
    if (Object.keys(roleMap).length > 0) {
      warnings.push(
        'mattermost.recipients is set, so [role_to_recipients] is ignored and every request goes to mattermost.recipients (upstream behaviour); remove one of them',
      );
    }
    roleToRecipients = dict([['*', recipients.map((r) => r.trim())]]);
  } else if (Object.keys(roleMap).length === 0 && !reported.has('role_to_recipients')) {
    warnings.push(
      'no recipients: neither mattermost.recipients nor [role_to_recipients] is set, so requests reach only their suggested reviewers and Access Monitoring Rules; set one of them to have a default',
    );
  }

  // [log] and [http]
  const lg = raw.log ?? {};
  const outputRaw = (lg.output ?? DEFAULT_LOG_OUTPUT).trim();
  const output = OUTPUT_ALIASES[outputRaw.toLowerCase()] ?? outputRaw;
  if (output !== 'stderr' && output !== 'stdout' && !path.isAbsolute(output)) {
    problems.push(`log.output: must be "stderr", "stdout" or an absolute file path, got '${outputRaw}'`);
  }
  const severity = SEVERITY_ALIASES[(lg.severity ?? DEFAULT_LOG_SEVERITY).toLowerCase()] ?? 'info';
  const format = (lg.format ?? DEFAULT_LOG_FORMAT).toLowerCase() as LogFormat;
  const httpListenAddr = (raw.http?.listen_addr ?? DEFAULT_HTTP_LISTEN_ADDR).trim();
  const review = validateReview(
    raw.review,
    { mattermostUrl: mm.url ?? '', httpListenAddr, readFiles: opts.readTokenFile !== false, reported },
    problems,
    warnings,
  );

  return {
    source: '',
    teleport: {
      addr,
      ...(t.identity ? { identity: t.identity } : {}),
      refreshIdentity: t.refresh_identity ?? false,
      refreshIdentityIntervalMs:
        parseDuration(t.refresh_identity_interval ?? DEFAULT_REFRESH_IDENTITY_INTERVAL) ?? 60_000,
      ...(t.client_key ? { clientKey: t.client_key } : {}),
      ...(t.client_crt ? { clientCrt: t.client_crt } : {}),
      ...(t.root_cas ? { rootCas: t.root_cas } : {}),
    },
    mattermost: {
      url: (mm.url ?? '').trim().replace(/\/+$/, ''),
      token,
      tokenSource,
      recipients: recipients.map((r) => r.trim()),
      ...(mm.ca_file ? { caFile: mm.ca_file } : {}),
      notifyRequester: mm.notify_requester ?? false,
    },
    roleToRecipients,
    log: { output, severity, format },
    http: { listenAddr: httpListenAddr },
    review,
  };
}

/** Parses TOML text. Throws ConfigError listing every problem; returns warnings for the caller to log. */
export function parseConfigText(text: string, source: string, opts: ParseOptions = {}): LoadedConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof TomlError) {
      throw new ConfigError(source, [
        `line ${err.line}, column ${err.column}: not valid TOML: ${err.message.split('\n')[0]}`,
      ]);
    }
    throw err;
  }
  const warnings = unknownKeyWarnings(doc);
  const problems: string[] = [];
  // Report type errors, leave the offending keys out, and still run the cross-key checks on the rest,
  // so one run shows every problem. `reported` keeps a dropped key from also being called "missing".
  const reported = new Set<string>();
  const { raw, issues } = checkShape(doc);
  for (const issue of issues) {
    const key = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join('');
    problems.push(`${key}: ${issue.message}`);
    const [section, name] = issue.path.map(String);
    reported.add(name === undefined ? String(section) : `${section}.${name}`);
  }
  const config = validate(raw, opts, problems, warnings, reported);
  if (problems.length > 0) throw new ConfigError(source, problems, warnings);
  config.source = source;
  return { config, warnings };
}

/** Reads and parses a configuration file. */
export function loadConfigFile(file: string, opts: ParseOptions = {}): LoadedConfig {
  const abs = path.resolve(opts.cwd ?? process.cwd(), file);
  let text: string;
  try {
    // A FIFO would block for ever and /dev/zero never end: only a regular file of a sane size.
    const info = fs.statSync(abs);
    if (!info.isFile()) throw new ConfigError(abs, ['not a regular file; point -c at the TOML file itself']);
    if (info.size > CONFIG_FILE_MAX_BYTES) {
      throw new ConfigError(abs, [
        `larger than ${CONFIG_FILE_MAX_BYTES / 1024} KB (${info.size} bytes); is it the right file?`,
      ]);
    }
    text = fs.readFileSync(abs, 'utf8');
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'the file does not exist; create it (`teleport-mattermost configure > file`) or pass -c PATH'
        : code === 'EACCES'
          ? 'permission denied; make it readable by this user'
          : String(err);
    throw new ConfigError(abs, [why]);
  }
  return parseConfigText(text, abs, opts);
}

// Structured logging with secrets redacted before any output sees a line.
//
// Our own logger, not winston: issue 16 asks the watcher and the operator to idle at ≤ 64 MiB RSS.
// winston and the 29 packages it pulls in (logform, readable-stream, async, fecha, colorspace…) were
// 146 KB of the bundle and a stream pipeline per line; dropping them saved 2 MiB of anonymous memory
// idle in both roles (bundle A/B of 29 Nov 2026: watcher 90.7 → 88.7 MiB RSS, 38.3 → 36.3 anon;
// operator 26.5 → 24.5 MiB anon). winston also lost the lines a file output had not flushed when the
// CLI called process.exit (see fileSink). All we need is four levels, child fields, two line formats
// and three outputs: this file.
//
// Redaction is built into the logger (not left to call sites) so that no level, format or output can
// leak the Mattermost token, a private key or identity contents. The lines are those winston wrote:
// text `<ISO time> <LEVEL> <message> key=value …`, JSON with sorted keys (what its json() emitted).
import fs from 'node:fs';
import path from 'node:path';
import type { LogFormat, Severity } from '../config/types.js';
import { escapeUnsafe, hasUnsafeChars, maskUrlCredentials } from './safe-text.js';

/** Fields of a line: a context given to child(), or the meta of one call. */
export type LogFields = Record<string, unknown>;

export interface Logger {
  error(message: string, meta?: LogFields): void;
  warn(message: string, meta?: LogFields): void;
  info(message: string, meta?: LogFields): void;
  debug(message: string, meta?: LogFields): void;
  /** A logger that adds `fields` to every line (the call's own meta wins on a clash). */
  child(fields: LogFields): Logger;
  /** The threshold; setting it (SIGHUP) changes it for this logger and all its children. */
  level: Severity;
}

/** Where lines go: process.stderr, process.stdout, a file, or a test's capture. */
export interface LogSink {
  write(line: string): unknown;
}

const REDACTED = '[REDACTED]';
const secretValues = new Set<string>();
/** Keys whose values are always secret, whatever they contain. */
const SECRET_KEY =
  /(token|password|passwd|secret|private_?key|authorization|identity_?(content|data|pem)|^key$|cookie)/i;
const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;
const BEARER = /\b(Bearer|Token)\s+[A-Za-z0-9._~+/=-]{8,}/g;
const SSH_CERT =
  /\b(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp\d+|sk-[a-z0-9-]+)(-cert-v01@openssh\.com)?\s+AAAA[A-Za-z0-9+/=]{16,}/g;

/** Registers a secret (e.g. the Mattermost token) so every log line has it replaced. Short values are ignored. */
export function registerSecret(value: string | undefined): void {
  if (value && value.length >= 4) secretValues.add(value);
}

export function redactString(text: string): string {
  let out = maskUrlCredentials(text)
    .replace(PEM_BLOCK, '[REDACTED PEM]')
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(SSH_CERT, '[REDACTED SSH]');
  for (const secret of secretValues) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

export function redactValue(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object' || depth > 6) return value;
  if (value instanceof Date) return value;
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  if (value instanceof Error) return { name: value.name, message: redactString(value.message) };
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  return redactFields(value as LogFields, depth);
}

/** The values of `fields` redacted at depth + 1 (a line's own fields: depth -1, so its values are at 0). */
function redactFields(fields: LogFields, depth: number): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== '' ? REDACTED : redactValue(v, depth + 1);
  }
  return out;
}

/** One event, redacted. `fields` never holds level, message or timestamp (those are the line's own). */
interface LogRecord {
  level: Severity;
  message: string;
  timestamp: string;
  fields: LogFields;
}

const LINE_KEYS = ['level', 'message', 'timestamp'];

/**
 * The event as winston built it: context fields, then the call's meta (which wins); a `message` in the
 * meta is appended to the message; `level` and `timestamp` fields are the line's own, not overridden.
 * Every field is redacted, secret-named keys entirely.
 */
function toRecord(level: Severity, message: string, context: LogFields, meta?: LogFields): LogRecord {
  const fields: LogFields = { ...context, ...meta };
  for (const key of LINE_KEYS) delete fields[key];
  const text = meta?.message ? `${message} ${String(meta.message)}` : message;
  return {
    level,
    message: redactString(String(text)),
    timestamp: new Date().toISOString(),
    fields: redactFields(fields, -1),
  };
}

function formatField(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return String(value);
  const s = typeof value === 'string' ? value : jsonOrStable(value);
  if (s === undefined) return 'undefined';
  // JSON.stringify escapes C0 controls; escapeUnsafe the rest (C1, bidi, invisible).
  return s === '' || /[\s"=]/.test(s) || hasUnsafeChars(s) ? escapeUnsafe(JSON.stringify(s)) : s;
}

/** JSON.stringify, as the text format always used; a value it throws on (a cycle, a BigInt) still logs. */
function jsonOrStable(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch {
    return stableJson(value);
  }
}

/** One human-readable line per event: `<time> <LEVEL> <message> key=value …`. */
function textLine(r: LogRecord): string {
  const fields = Object.entries(r.fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${formatField(v)}`);
  return [r.timestamp, r.level.toUpperCase().padEnd(5), escapeUnsafe(r.message), ...fields].join(' ');
}

/** One JSON object per event, keys sorted at every depth (as winston's json() wrote them). */
function jsonLine(r: LogRecord): string {
  const { level, message, timestamp } = r;
  return stableJson({ ...r.fields, level, message, timestamp }) as string;
}

/**
 * JSON with sorted keys: a BigInt becomes a string, a repeated ancestor "[Circular]", undefined and
 * functions are left out of objects and null in arrays (JSON.stringify's rules), toJSON() is honoured.
 */
function stableJson(value: unknown, ancestors: object[] = []): string | undefined {
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return stableJson(toJSON.call(value), ancestors);
  if (ancestors.includes(value)) return '"[Circular]"';
  ancestors.push(value);
  let out: string;
  if (Array.isArray(value)) {
    out = `[${value.map((v) => stableJson(v, ancestors) ?? 'null').join(',')}]`;
  } else {
    const entries = Object.keys(value)
      .sort()
      .map((k) => [k, stableJson((value as LogFields)[k], ancestors)] as const)
      .filter(([, v]) => v !== undefined);
    out = `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(',')}}`;
  }
  ancestors.pop();
  return out;
}

export interface LoggerOptions {
  severity: Severity;
  format: LogFormat;
  /** 'stderr', 'stdout', a file path (appended to), or a sink (tests capture lines this way). */
  output: string | LogSink;
}

/**
 * Checks that a file `log.output` can be written (creating its directory), so a bad path fails at
 * start with a message instead of a process that logs nowhere. Returns the problem, or undefined.
 */
export function logOutputProblem(output: string): string | undefined {
  if (output === 'stdout' || output === 'stderr') return undefined;
  try {
    fs.mkdirSync(path.dirname(output), { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return `log.output: cannot create the directory ${path.dirname(output)} (${code}); create it, make it writable by this user, or log to "stderr"`;
  }
  try {
    if (fs.statSync(output, { throwIfNoEntry: false })?.isDirectory()) {
      return `log.output: ${output} is a directory; give a file path inside it, or "stderr"`;
    }
    fs.closeSync(fs.openSync(output, 'a'));
    return undefined;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    return `log.output: cannot write to ${output} (${code}); make it writable by this user, or log to "stderr"`;
  }
}

/**
 * A log file, written with fs.writeSync: each line is in the file when the call returns, so the lines
 * before a process.exit() (the CLI's every exit, a crash) are never lost in a stream's buffer, and no
 * buffer grows while a disk is slow. Lines are few and short; the blocking write costs nothing we can
 * measure. If a write fails (disk full, file system gone), the line goes to stderr instead, with a word.
 */
function fileSink(file: string): LogSink {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const fd = fs.openSync(file, 'a');
  let failed = false;
  return {
    write(line: string) {
      try {
        if (!failed) return fs.writeSync(fd, line);
      } catch (err) {
        failed = true;
        const code = (err as NodeJS.ErrnoException).code ?? String(err);
        process.stderr.write(`teleport-mattermost: cannot write to ${file} (${code}); logging to stderr\n`);
      }
      return process.stderr.write(line);
    },
  };
}

/** process.stderr and process.stdout write synchronously to files, pipes and terminals on Linux. */
function sinkFor(output: string | LogSink): LogSink {
  if (typeof output !== 'string') return output;
  if (output === 'stderr') return process.stderr;
  if (output === 'stdout') return process.stdout;
  return fileSink(output);
}

const RANK: Record<Severity, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/** What a logger and all its children share: the threshold, the format and the output. */
interface Destination {
  level: Severity;
  format: LogFormat;
  sink: LogSink | undefined;
}

class FieldLogger implements Logger {
  constructor(
    private readonly to: Destination,
    private readonly context: LogFields,
  ) {}

  get level(): Severity {
    return this.to.level;
  }

  set level(level: Severity) {
    this.to.level = level;
  }

  child(fields: LogFields): Logger {
    return new FieldLogger(this.to, { ...this.context, ...fields });
  }

  error(message: string, meta?: LogFields): void {
    this.log('error', message, meta);
  }

  warn(message: string, meta?: LogFields): void {
    this.log('warn', message, meta);
  }

  info(message: string, meta?: LogFields): void {
    this.log('info', message, meta);
  }

  debug(message: string, meta?: LogFields): void {
    this.log('debug', message, meta);
  }

  private log(level: Severity, message: string, meta?: LogFields): void {
    const { sink, format } = this.to;
    if (!sink || RANK[level] > RANK[this.to.level]) return;
    const record = toRecord(level, message, this.context, meta);
    sink.write(`${format === 'json' ? jsonLine(record) : textLine(record)}\n`);
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  return new FieldLogger({ level: opts.severity, format: opts.format, sink: sinkFor(opts.output) }, {});
}

/** A logger for code paths before the configuration is known (and for tests): text to stderr. */
export function bootstrapLogger(severity: Severity = 'info'): Logger {
  return createLogger({ severity, format: 'text', output: 'stderr' });
}

/** A logger that writes nowhere, for unit tests that do not assert on logs. */
export function silentLogger(): Logger {
  return new FieldLogger({ level: 'info', format: 'text', sink: undefined }, {});
}

/** One captured JSON line, parsed. */
export interface LogLine {
  level: string;
  message: string;
  timestamp: string;
  [field: string]: unknown;
}

/** For tests: a logger (DEBUG by default) whose JSON lines, redacted as in production, land in `lines`. */
export function captureLogger(severity: Severity = 'debug'): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const sink = { write: (line: string) => lines.push(JSON.parse(line) as LogLine) };
  return { logger: createLogger({ severity, format: 'json', output: sink }), lines };
}

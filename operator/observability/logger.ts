// Structured logging on winston, with secrets redacted before any transport sees a line.
// Redaction is built into the format chain (not left to call sites) so that no level, format or
// output can leak the Mattermost token, a private key or identity contents.
import fs from 'node:fs';
import path from 'node:path';
import winston from 'winston';
import type { LogFormat, Severity } from '../config/types.js';
import { escapeUnsafe, hasUnsafeChars, maskUrlCredentials } from './safe-text.js';

export type Logger = winston.Logger;

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
  if (value instanceof Error) {
    return { name: value.name, message: redactString(value.message), ...(value.stack ? {} : {}) };
  }
  if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] = SECRET_KEY.test(k) && v !== undefined && v !== '' ? REDACTED : redactValue(v, depth + 1);
  }
  return out;
}

const LEVEL_KEYS = new Set(['level', 'message', 'timestamp']);

const redact = winston.format((info) => {
  info.message = typeof info.message === 'string' ? redactString(info.message) : redactValue(info.message);
  for (const key of Object.keys(info)) {
    if (LEVEL_KEYS.has(key)) continue;
    const v = info[key];
    info[key] = SECRET_KEY.test(key) && v !== undefined && v !== '' ? REDACTED : redactValue(v);
  }
  return info;
});

function formatField(value: unknown): string {
  if (value instanceof Date) return value.toISOString();
  const s = typeof value === 'string' ? value : JSON.stringify(value);
  if (s === undefined) return 'undefined';
  // JSON.stringify escapes C0 controls; escapeUnsafe the rest (C1, bidi, invisible).
  return s === '' || /[\s"=]/.test(s) || hasUnsafeChars(s) ? escapeUnsafe(JSON.stringify(s)) : s;
}

/** One human-readable line per event: `<time> <LEVEL> <message> key=value …`. */
const textLine = winston.format.printf((info) => {
  const fields = Object.entries(info)
    .filter(([k, v]) => !LEVEL_KEYS.has(k) && v !== undefined && typeof k === 'string')
    .map(([k, v]) => `${k}=${formatField(v)}`);
  const level = info.level.toUpperCase().padEnd(5);
  return [String(info.timestamp), level, escapeUnsafe(String(info.message)), ...fields].join(' ');
});

export interface LoggerOptions {
  severity: Severity;
  format: LogFormat;
  /** 'stderr', 'stdout' or a file path. */
  output: string;
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

function transportFor(output: string): winston.transport {
  if (output === 'stdout') return new winston.transports.Console({ forceConsoleLevels: false } as never);
  if (output === 'stderr') {
    return new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] });
  }
  return new winston.transports.File({ filename: output });
}

export function createLogger(opts: LoggerOptions): Logger {
  return winston.createLogger({
    level: opts.severity,
    levels: { error: 0, warn: 1, info: 2, debug: 3 },
    format: winston.format.combine(
      winston.format.errors({ stack: false }),
      redact(),
      winston.format.timestamp(),
      opts.format === 'json' ? winston.format.json() : textLine,
    ),
    transports: [transportFor(opts.output)],
  });
}

/** A logger for code paths before the configuration is known (and for tests): text to stderr. */
export function bootstrapLogger(severity: Severity = 'info'): Logger {
  return createLogger({ severity, format: 'text', output: 'stderr' });
}

/** A logger that writes nowhere, for unit tests that do not assert on logs. */
export function silentLogger(): Logger {
  return winston.createLogger({
    silent: true,
    transports: [new winston.transports.Console({ silent: true })],
  });
}

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  captureLogger,
  createLogger,
  redactString,
  registerSecret,
  silentLogger,
  type Logger,
} from '../../../operator/observability/logger.js';

const TOKEN = 'xk7f9s3kq8bq3mhd1w9p6y3zrw';
const KEY_PEM = `-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4fakefakefakefakefake\nabcdefghijkl\n-----END RSA PRIVATE KEY-----`;
const SSH_LINE = 'ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgabcdefgh user';

function tempLog(): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'log-')), 'out.log');
}

/** Logs to a file and returns what it holds right after: file writes are synchronous. */
function logTo(format: 'text' | 'json', write: (l: Logger) => void): string {
  const file = tempLog();
  write(createLogger({ severity: 'debug', format, output: file }));
  return fs.readFileSync(file, 'utf8');
}

beforeAll(() => registerSecret(TOKEN));

describe('secret redaction', () => {
  it.each(['text', 'json'] as const)(
    'keeps the token, keys and identity out of %s logs at DEBUG',
    (format) => {
      const out = logTo(format, (logger) => {
        logger.debug(`using token ${TOKEN}`);
        logger.debug('request', {
          headers: { Authorization: `Bearer ${TOKEN}` },
          url: 'https://mm/api/v4/posts',
        });
        logger.info('config', { token: TOKEN, mattermost: { token: TOKEN, url: 'https://mm' } });
        logger.warn('identity contents', { identity_pem: KEY_PEM, body: `${KEY_PEM}\n${SSH_LINE}` });
        logger.error('failed', { error: new Error(`401 for token ${TOKEN}`) });
        logger.debug(`key material: ${KEY_PEM}`);
        logger.debug('bearer', { detail: `Authorization: Bearer ${'z'.repeat(30)}` });
      });
      expect(out).not.toContain(TOKEN);
      expect(out).not.toContain('MIIEowIBAAKCAQEA');
      expect(out).not.toContain('AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20');
      expect(out).not.toContain('z'.repeat(30));
      expect(out).toContain('[REDACTED]');
      expect(out).toContain('https://mm/api/v4/posts');
      expect(out.trim().split('\n')).toHaveLength(7);
    },
  );

  it('leaves ordinary text alone', () => {
    expect(redactString('request 1234 by alice')).toBe('request 1234 by alice');
  });
});

describe('formats', () => {
  it('text is one line per event with key=value fields', () => {
    const out = logTo('text', (l) => l.info('Posted message', { request_id: 'r-1', channel: 'team/a b' }));
    expect(out).toMatch(/^\S+ INFO {2}Posted message request_id=r-1 channel="team\/a b"\n$/);
  });

  it('json is one object per line', () => {
    const out = logTo('json', (l) => l.warn('Slow', { request_id: 'r-2' }));
    const obj = JSON.parse(out.trim());
    expect(obj).toMatchObject({ level: 'warn', message: 'Slow', request_id: 'r-2' });
    expect(typeof obj.timestamp).toBe('string');
  });

  it('respects the severity', () => {
    const file = tempLog();
    const logger = createLogger({ severity: 'warn', format: 'text', output: file });
    logger.info('hidden');
    logger.warn('shown');
    const out = fs.readFileSync(file, 'utf8');
    expect(out).toContain('shown');
    expect(out).not.toContain('hidden');
  });
});

describe('hostile text (issue 15)', () => {
  it('escapes every control and bidi character in text logs, in fields and the message', () => {
    const forged = '\u001b[1A\u001b[2K2026-01-01T00:00:00Z ERROR FORGED-LINE\u0007\b\u0085\u202e\u2066x';
    const out = logTo('text', (l) => l.info(`Posted ${forged}`, { suggested_reviewer: forged }));
    expect(out.trim().split('\n')).toHaveLength(1);
    // Nothing a terminal would act on, nothing that reorders text.
    // eslint-disable-next-line no-control-regex -- asserting no control characters is the point
    expect(out.trimEnd()).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(out).toContain('\\u001b[1A');
    expect(out).toContain('\\u0085');
    expect(out).toContain('\\u202e');
  });

  it.each(['text', 'json'] as const)('masks the password in a URL in %s logs', (format) => {
    const out = logTo(format, (l) => {
      l.warn('Mattermost API health check failed', { url: 'http://admin:S3cretPassw0rd@mm.example:8065' });
      l.warn('failed at https://bot:An0ther@mm.example/api/v4/posts');
    });
    expect(out).not.toContain('S3cretPassw0rd');
    expect(out).not.toContain('An0ther');
    expect(out).toContain('http://***@mm.example:8065');
  });
});

/** The line with its timestamp replaced by T, to compare with what winston 3.19 wrote. */
function untimed(out: string): string[] {
  return out
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/^\S+Z /, 'T ').replace(/"timestamp":"[^"]+"/, '"timestamp":"T"'));
}

describe('the lines winston wrote (users parse them)', () => {
  const events = (l: Logger) => {
    l.info('fields', { b: 'x y', a: 1, c: undefined, d: null, e: '', f: { z: 1, a: [1, 't', undefined] } });
    l.child({ request_id: 'r1', user: 'u' })
      .child({ z: 2 })
      .child({ request_id: 'r2' })
      .warn('nested', { c: 3 });
    l.error('failed', { error: new TypeError(`boom ${TOKEN}`), g: new Date(0) });
    l.warn('meta message', { message: 'extra', level: 'bogus', k: 1 });
  };

  it('text: fields in the order given, context first, Error values as name and message', () => {
    expect(untimed(logTo('text', events))).toEqual([
      'T INFO  fields b="x y" a=1 d=null e="" f="{\\"z\\":1,\\"a\\":[1,\\"t\\",null]}"',
      'T WARN  nested request_id=r2 user=u z=2 c=3',
      'T ERROR failed error="{\\"name\\":\\"TypeError\\",\\"message\\":\\"boom [REDACTED]\\"}" g=1970-01-01T00:00:00.000Z',
      'T WARN  meta message extra k=1',
    ]);
  });

  it('json: keys sorted at every depth, level, message and timestamp among them', () => {
    expect(untimed(logTo('json', events))).toEqual([
      '{"a":1,"b":"x y","d":null,"e":"","f":{"a":[1,"t",null],"z":1},"level":"info","message":"fields","timestamp":"T"}',
      '{"c":3,"level":"warn","message":"nested","request_id":"r2","timestamp":"T","user":"u","z":2}',
      '{"error":{"message":"boom [REDACTED]","name":"TypeError"},"g":"1970-01-01T00:00:00.000Z","level":"error","message":"failed","timestamp":"T"}',
      '{"k":1,"level":"warn","message":"meta message extra","timestamp":"T"}',
    ]);
  });

  it('a cycle or a BigInt is written, not thrown', () => {
    const cyclic: Record<string, unknown> = { name: 'a' };
    cyclic.self = cyclic;
    const json = JSON.parse(logTo('json', (l) => l.info('odd', { cyclic, n: 10n })));
    expect(json).toMatchObject({ message: 'odd', n: '10', cyclic: { name: 'a', self: { name: 'a' } } });
    expect(JSON.stringify(json)).toContain('"[Circular]"');
    expect(logTo('text', (l) => l.info('odd', { n: 10n }))).toMatch(/ odd n=10\n$/);
  });

  it('keeps the fields of a message that looks like a format string (winston dropped them)', () => {
    expect(untimed(logTo('text', (l) => l.info('100%s done', { k: 1 })))).toEqual(['T INFO  100%s done k=1']);
  });

  it('appends to an existing file', () => {
    const file = tempLog();
    fs.writeFileSync(file, 'earlier\n');
    createLogger({ severity: 'info', format: 'text', output: file }).info('later');
    expect(fs.readFileSync(file, 'utf8')).toMatch(/^earlier\n\S+ INFO {2}later\n$/);
  });
});

describe('levels and children', () => {
  it('a new level (SIGHUP) applies to the logger and every child made before', () => {
    const { logger, lines } = captureLogger('info');
    const child = logger.child({ request_id: 'r-1' });
    child.debug('hidden');
    logger.level = 'debug';
    expect(child.level).toBe('debug');
    child.debug('shown');
    logger.level = 'error';
    child.warn('hidden too');
    child.error('failed');
    expect(lines.map((l) => [l.level, l.message, l.request_id])).toEqual([
      ['debug', 'shown', 'r-1'],
      ['error', 'failed', 'r-1'],
    ]);
  });

  it('capture redacts like the real outputs; the silent logger writes nothing', () => {
    const { logger, lines } = captureLogger();
    logger.child({ token: TOKEN }).info(`with ${TOKEN}`, { headers: { cookie: 'c' } });
    expect(lines).toEqual([
      {
        level: 'info',
        message: 'with [REDACTED]',
        token: '[REDACTED]',
        headers: { cookie: '[REDACTED]' },
        timestamp: expect.any(String),
      },
    ]);
    const silent = silentLogger();
    expect(silent.level).toBe('info');
    expect(() => silent.child({ a: 1 }).error('nothing')).not.toThrow();
  });
});

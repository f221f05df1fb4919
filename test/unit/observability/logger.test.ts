import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLogger, redactString, registerSecret } from '../../../operator/observability/logger.js';

const TOKEN = 'xk7f9s3kq8bq3mhd1w9p6y3zrw';
const KEY_PEM = `-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx4fakefakefakefakefake\nabcdefghijkl\n-----END RSA PRIVATE KEY-----`;
const SSH_LINE = 'ssh-rsa-cert-v01@openssh.com AAAAHHNzaC1yc2EtY2VydC12MDFAb3BlbnNzaC5jb20AAAAgabcdefgh user';

async function logTo(
  format: 'text' | 'json',
  write: (l: ReturnType<typeof createLogger>) => void,
): Promise<string> {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'log-')), 'out.log');
  const logger = createLogger({ severity: 'debug', format, output: file });
  write(logger);
  await new Promise<void>((resolve) => {
    logger.on('finish', () => resolve());
    logger.end();
  });
  await new Promise((r) => setTimeout(r, 50));
  return fs.readFileSync(file, 'utf8');
}

describe('secret redaction', () => {
  beforeAll(() => registerSecret(TOKEN));

  it.each(['text', 'json'] as const)(
    'keeps the token, keys and identity out of %s logs at DEBUG',
    async (format) => {
      const out = await logTo(format, (logger) => {
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
  it('text is one line per event with key=value fields', async () => {
    const out = await logTo('text', (l) =>
      l.info('Posted message', { request_id: 'r-1', channel: 'team/a b' }),
    );
    expect(out).toMatch(/^\S+ INFO {2}Posted message request_id=r-1 channel="team\/a b"\n$/);
  });

  it('json is one object per line', async () => {
    const out = await logTo('json', (l) => l.warn('Slow', { request_id: 'r-2' }));
    const obj = JSON.parse(out.trim());
    expect(obj).toMatchObject({ level: 'warn', message: 'Slow', request_id: 'r-2' });
    expect(typeof obj.timestamp).toBe('string');
  });

  it('respects the severity', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'log-')), 'out.log');
    const logger = createLogger({ severity: 'warn', format: 'text', output: file });
    logger.info('hidden');
    logger.warn('shown');
    await new Promise<void>((resolve) => {
      logger.on('finish', () => resolve());
      logger.end();
    });
    await new Promise((r) => setTimeout(r, 50));
    const out = fs.readFileSync(file, 'utf8');
    expect(out).toContain('shown');
    expect(out).not.toContain('hidden');
  });
});

describe('hostile text (issue 15)', () => {
  it('escapes every control and bidi character in text logs, in fields and the message', async () => {
    const forged = '\u001b[1A\u001b[2K2026-01-01T00:00:00Z ERROR FORGED-LINE\u0007\b\u0085\u202e\u2066x';
    const out = await logTo('text', (l) => l.info(`Posted ${forged}`, { suggested_reviewer: forged }));
    expect(out.trim().split('\n')).toHaveLength(1);
    // Nothing a terminal would act on, nothing that reorders text.
    // eslint-disable-next-line no-control-regex -- asserting no control characters is the point
    expect(out.trimEnd()).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(out).toContain('\\u001b[1A');
    expect(out).toContain('\\u0085');
    expect(out).toContain('\\u202e');
  });

  it.each(['text', 'json'] as const)('masks the password in a URL in %s logs', async (format) => {
    const out = await logTo(format, (l) => {
      l.warn('Mattermost API health check failed', { url: 'http://admin:S3cretPassw0rd@mm.example:8065' });
      l.warn('failed at https://bot:An0ther@mm.example/api/v4/posts');
    });
    expect(out).not.toContain('S3cretPassw0rd');
    expect(out).not.toContain('An0ther');
    expect(out).toContain('http://***@mm.example:8065');
  });
});

import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  checkValidity,
  IdentityError,
  loadCredentials,
  parseIdentity,
  parseKeyPair,
} from '../../../operator/teleport/identity.js';
import type { TeleportConfig } from '../../../operator/config/types.js';
import { identityFileText, TestCA } from '../../teleport-server/ca.js';
import type { TestKeyType } from '../../teleport-server/ca.js';

const ca = TestCA.create('example.com');
const SOURCE = '/var/lib/teleport/plugin/auth.pem';

function expectIdentityError(fn: () => unknown, problem: string, ...fragments: RegExp[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(IdentityError);
  const err = caught as IdentityError;
  expect(err.problem).toBe(problem);
  expect(err.message).toContain(SOURCE);
  for (const f of fragments) expect(err.message).toMatch(f);
}

describe('parseIdentity', () => {
  it.each<[TestKeyType, string, string]>([
    ['rsa', 'rsa', 'pkcs1'],
    ['ecdsa', 'ecdsa', 'pkcs8'],
    ['ecdsa-sec1', 'ecdsa', 'sec1'],
    ['ed25519', 'ed25519', 'pkcs8'],
  ])('parses a %s identity file', (keyType, expectedType, expectedFormat) => {
    const notBefore = new Date(Date.now() - 60_000);
    const text = identityFileText({ ca, keyType, ttlMs: 7200_000, notBefore, user: 'access-plugin' });
    const id = parseIdentity(text, SOURCE);
    expect(id.source).toBe(SOURCE);
    expect(id.clusterName).toBe('example.com');
    expect(id.username).toBe('access-plugin');
    expect(id.keyType).toBe(expectedType);
    expect(id.keyFormat).toBe(expectedFormat);
    // X.509 times have second precision.
    expect(Math.abs(id.notBefore.getTime() - notBefore.getTime())).toBeLessThan(1000);
    expect(Math.abs(id.notAfter.getTime() - (notBefore.getTime() + 7200_000))).toBeLessThan(1000);
    expect(id.tlsCaPems).toHaveLength(1);
    expect(id.tlsCaPems[0]).toContain('BEGIN CERTIFICATE');
    expect(id.sshCert).toMatch(/^[a-z0-9-]+-cert-v01@openssh\.com AAAA/);
    expect(id.sshCaLines).toEqual([
      expect.stringMatching(/^@cert-authority example\.com,\*\.example\.com \S+ \S+ type=host$/),
    ]);
    expect(id.privateKeyPem).toMatch(/^-----BEGIN (RSA |EC )?PRIVATE KEY-----/);
    expect(id.tlsCertPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(id.fingerprint).toMatch(/^[0-9A-F:]+$/);
  });

  it('follows the upstream layout exactly: key, SSH cert, TLS cert, SSH CAs, TLS CAs', () => {
    const text = identityFileText({ ca, keyType: 'rsa' });
    const order = text
      .split('\n')
      .filter(
        (l) =>
          l.startsWith('-----BEGIN') || l.startsWith('@cert-authority') || /-cert-v01@openssh\.com /.test(l),
      )
      .map((l) => (l.startsWith('-----BEGIN') ? l : l.startsWith('@') ? '@ca' : 'ssh-cert'));
    expect(order).toEqual([
      '-----BEGIN RSA PRIVATE KEY-----',
      'ssh-cert',
      '-----BEGIN CERTIFICATE-----',
      '@ca',
      '-----BEGIN CERTIFICATE-----',
    ]);
  });

  it('accepts several CAs (trusted clusters, rotation) and CRLF line endings', () => {
    const other = TestCA.create('leaf.example.com');
    const text = identityFileText({ ca, trusted: [ca, other] }).replace(/\n/g, '\r\n');
    const id = parseIdentity(text, SOURCE);
    expect(id.tlsCaPems).toHaveLength(2);
    expect(id.sshCaLines).toHaveLength(2);
    expect(id.clusterName).toBe('example.com');
  });

  it('falls back to the CA common name when the cert has no cluster attribute', () => {
    const text = identityFileText({ ca: TestCA.create('fallback.example'), omitClusterAttribute: true });
    expect(parseIdentity(text, SOURCE).clusterName).toBe('fallback.example');
  });

  it('does not need the SSH cert (TLS only)', () => {
    const text = identityFileText({ ca })
      .split('\n')
      .filter((l) => !/-cert-v01@openssh\.com /.test(l))
      .join('\n');
    expect(parseIdentity(text, SOURCE).sshCert).toBeUndefined();
  });

  it('rejects a truncated PEM block, naming the block and line', () => {
    const text = identityFileText({ ca });
    const cut = text.slice(0, text.lastIndexOf('-----END CERTIFICATE-----'));
    expectIdentityError(
      () => parseIdentity(cut, SOURCE),
      'truncated-pem',
      /CERTIFICATE/,
      /line \d+/,
      /truncated/,
      /tctl auth sign/,
    );
  });

  it('rejects a file cut inside the private key', () => {
    const text = identityFileText({ ca });
    expectIdentityError(() => parseIdentity(text.slice(0, 100), SOURCE), 'truncated-pem', /PRIVATE KEY/);
  });

  it('rejects a file without a TLS certificate', () => {
    const text = identityFileText({ ca });
    const keyOnly = text.slice(0, text.indexOf('-----BEGIN CERTIFICATE-----'));
    expectIdentityError(() => parseIdentity(keyOnly, SOURCE), 'no-tls-cert', /no TLS certificate/);
  });

  it('rejects an empty or non-identity file', () => {
    expectIdentityError(() => parseIdentity('', SOURCE), 'no-private-key', /not an identity file/);
    expectIdentityError(() => parseIdentity('hello\nworld\n', SOURCE), 'no-private-key');
  });

  it('rejects an unknown key PEM type such as a tbot identity-api key reference', () => {
    const text = identityFileText({ ca });
    const keyEnd = text.indexOf('-----END PRIVATE KEY-----') + '-----END PRIVATE KEY-----'.length;
    const reference =
      '-----BEGIN TELEPORT IDENTITY API PRIVATE KEY REFERENCE-----\nAAAA\n-----END TELEPORT IDENTITY API PRIVATE KEY REFERENCE-----';
    expectIdentityError(
      () => parseIdentity(reference + text.slice(keyEnd), SOURCE),
      'unknown-key-type',
      /TELEPORT IDENTITY API PRIVATE KEY REFERENCE/,
      /key reference/,
      /RSA PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY/,
    );
  });

  it('rejects a file that starts with a certificate', () => {
    const text = identityFileText({ ca });
    const fromCert = text.slice(text.indexOf('-----BEGIN CERTIFICATE-----'));
    expectIdentityError(
      () => parseIdentity(fromCert, SOURCE),
      'unknown-key-type',
      /starts with a certificate/,
    );
  });

  it('rejects a garbled private key', () => {
    const text = identityFileText({ ca }).replace(
      /(-----BEGIN PRIVATE KEY-----\n)[A-Za-z0-9+/]{10}/,
      '$1AAAAAAAAAA',
    );
    expectIdentityError(() => parseIdentity(text, SOURCE), 'bad-private-key', /cannot be decoded/);
  });

  it('rejects a garbled certificate', () => {
    const text = identityFileText({ ca });
    const i = text.indexOf('-----BEGIN CERTIFICATE-----\n') + 28;
    const broken = text.slice(0, i) + 'AAAA' + text.slice(i + 4);
    expectIdentityError(() => parseIdentity(broken, SOURCE), 'bad-certificate', /TLS user certificate/);
  });

  it('rejects a key that does not match the certificate', () => {
    const a = identityFileText({ ca, keyType: 'ecdsa' });
    const b = identityFileText({ ca, keyType: 'rsa' });
    const keyOfB = b.slice(0, b.indexOf('-----END RSA PRIVATE KEY-----') + 30);
    const restOfA = a.slice(a.indexOf('-----END PRIVATE KEY-----') + 26);
    expectIdentityError(() => parseIdentity(keyOfB + restOfA, SOURCE), 'key-mismatch', /does not belong/);
  });

  it('rejects a file without CA certificates', () => {
    const text = identityFileText({ ca });
    const noCa = text.slice(0, text.lastIndexOf('-----BEGIN CERTIFICATE-----'));
    expectIdentityError(() => parseIdentity(noCa, SOURCE), 'no-ca', /no TLS CA/);
  });
});

describe('checkValidity', () => {
  it('fails for an expired identity with the expiry time', () => {
    const notBefore = new Date(Date.now() - 7200_000);
    const id = parseIdentity(identityFileText({ ca, notBefore, ttlMs: 3600_000 }), SOURCE);
    expectIdentityError(
      () => checkValidity(id),
      'expired',
      new RegExp(id.notAfter.toISOString().slice(0, 16)),
      /expired/,
    );
  });

  it('fails for a not-yet-valid identity with the start time', () => {
    const notBefore = new Date(Date.now() + 3600_000);
    const id = parseIdentity(identityFileText({ ca, notBefore }), SOURCE);
    expectIdentityError(() => checkValidity(id), 'not-yet-valid', /not valid before/, /clock/);
  });

  it('accepts a valid identity', () => {
    expect(() => checkValidity(parseIdentity(identityFileText({ ca }), SOURCE))).not.toThrow();
  });
});

describe('loadCredentials', () => {
  const base: TeleportConfig = {
    addr: 'localhost:3025',
    refreshIdentity: false,
    refreshIdentityIntervalMs: 60_000,
  };

  it('loads an identity file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-id-'));
    const path = join(dir, 'auth.pem');
    await writeFile(path, identityFileText({ ca, keyType: 'rsa' }), { mode: 0o600 });
    const id = await loadCredentials({ ...base, identity: path });
    expect(id.source).toBe(path);
    expect(id.clusterName).toBe('example.com');
  });

  it('loads the client_key / client_crt / root_cas trio', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-id-'));
    const user = ca.issueUserCert({ user: 'access-plugin', keyType: 'ecdsa-sec1' });
    await writeFile(join(dir, 'auth.key'), user.keyPem);
    await writeFile(join(dir, 'auth.crt'), user.certPem);
    await writeFile(join(dir, 'auth.cas'), ca.certPem);
    const id = await loadCredentials({
      ...base,
      clientKey: join(dir, 'auth.key'),
      clientCrt: join(dir, 'auth.crt'),
      rootCas: join(dir, 'auth.cas'),
    });
    expect(id.source).toBe(join(dir, 'auth.crt'));
    expect(id.keyFormat).toBe('sec1');
    expect(id.clusterName).toBe('example.com');
    expect(id.sshCaLines).toEqual([]);
  });

  it('says which file is missing', async () => {
    await expect(loadCredentials({ ...base, identity: '/nonexistent/auth.pem' })).rejects.toThrow(
      /\/nonexistent\/auth\.pem: the identity file does not exist/,
    );
  });

  it('fails at start for an expired identity, naming the file and the time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tp-id-'));
    const path = join(dir, 'identity');
    await writeFile(
      path,
      identityFileText({ ca, notBefore: new Date(Date.now() - 7200_000), ttlMs: 3600_000 }),
    );
    await expect(loadCredentials({ ...base, identity: path })).rejects.toThrow(
      new RegExp(`${path}: the Teleport certificate expired at \\d{4}-`),
    );
  });

  it('needs some credentials', async () => {
    await expect(loadCredentials(base)).rejects.toThrow(/no credentials configured/);
  });

  it('parseKeyPair names the cert file when the key does not match', () => {
    const a = ca.issueUserCert({ user: 'a' });
    const b = ca.issueUserCert({ user: 'b', keyType: 'rsa' });
    expect(() =>
      parseKeyPair({
        keyPem: b.keyPem,
        keySource: '/k',
        certPem: a.certPem,
        certSource: '/c.crt',
        rootCasPem: ca.certPem,
        rootCasSource: '/cas',
      }),
    ).toThrow(/\/c\.crt: the private key does not belong/);
  });
});

describe('hostile identity files (issue 15)', () => {
  const cfgFor = (identity: string): TeleportConfig => ({
    addr: 'localhost:3025',
    identity,
    refreshIdentity: false,
    refreshIdentityIntervalMs: 60_000,
  });

  it('refuses a valid identity followed by megabytes of junk, without reading it all', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'id-big-'));
    const file = join(dir, 'identity');
    await writeFile(file, identityFileText({ ca }) + 'x'.repeat(5 * 1024 * 1024));
    await expect(loadCredentials(cfgFor(file))).rejects.toThrow(/identity file is larger than 1024 KB/);
  });

  it.each([
    ['/dev/zero', /not a regular file \(a device\)/],
    ['/tmp', /not a regular file \(a directory\)/],
  ])('refuses %s as an identity file', async (file, message) => {
    const err = await loadCredentials(cfgFor(file)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as Error).message).toMatch(message);
  });

  it('refuses a FIFO at once instead of blocking for ever', async () => {
    const { execFileSync } = await import('node:child_process');
    const dir = await mkdtemp(join(tmpdir(), 'id-fifo-'));
    const file = join(dir, 'identity');
    execFileSync('mkfifo', [file]);
    const started = Date.now();
    await expect(loadCredentials(cfgFor(file))).rejects.toThrow(/not a regular file \(a named pipe\)/);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

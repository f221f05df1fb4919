// A test certificate authority shaped like Teleport's: Host CA with Subject{CN: cluster, O: cluster},
// an Auth host cert with SANs teleport.cluster.local and *.teleport.cluster.local, and user certs that carry
// the cluster name in subject attribute 1.3.9999.1.7. Identity files are written in the exact layout of
// api/identityfile encodeIdentityFile(): key, SSH cert line, TLS cert, @cert-authority lines, TLS CAs.
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bitString,
  bool,
  explicit,
  ia5Implicit,
  integer,
  nullValue,
  octets,
  oid,
  seq,
  set,
  smallInteger,
  time,
  tlv,
  utf8,
} from './asn1.js';

/** Key flavours of identity files: RSA is PKCS#1, ECDSA/Ed25519 are PKCS#8, `ecdsa-sec1` is SEC1. */
export type TestKeyType = 'rsa' | 'ecdsa' | 'ecdsa-sec1' | 'ed25519';

export const OID = {
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  teleportCluster: '1.3.9999.1.7',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ed25519: '1.3.101.112',
} as const;

export const API_DOMAIN = 'teleport.cluster.local';

// RSA key generation is slow; tests issue many certs, so reuse a small pool of keys per type.
const keyCache = new Map<string, KeyObject[]>();
export function generateKey(type: TestKeyType, fresh = false): KeyObject {
  const family = type === 'ecdsa-sec1' ? 'ecdsa' : type;
  const pool = keyCache.get(family) ?? [];
  keyCache.set(family, pool);
  if (!fresh && pool.length >= 3) return pool[Math.floor(Math.random() * pool.length)]!;
  const { privateKey } =
    family === 'rsa'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : family === 'ecdsa'
        ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
        : generateKeyPairSync('ed25519');
  if (!fresh) pool.push(privateKey);
  return privateKey;
}

export function privateKeyPem(key: KeyObject, type: TestKeyType): string {
  if (type === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }) as string;
  if (type === 'ecdsa-sec1') return key.export({ type: 'sec1', format: 'pem' }) as string;
  return key.export({ type: 'pkcs8', format: 'pem' }) as string;
}

type NameAttrs = Array<[string, string]>;
const name = (attrs: NameAttrs): Buffer => seq(...attrs.map(([o, v]) => set(seq(oid(o), utf8(v)))));

function signatureAlgorithm(key: KeyObject): Buffer {
  if (key.asymmetricKeyType === 'rsa') return seq(oid(OID.sha256WithRsa), nullValue());
  if (key.asymmetricKeyType === 'ec') return seq(oid(OID.ecdsaWithSha256));
  if (key.asymmetricKeyType === 'ed25519') return seq(oid(OID.ed25519));
  throw new Error(`test CA: unsupported signing key ${key.asymmetricKeyType}`);
}

export function keyId(publicKey: KeyObject): Buffer {
  return createHash('sha1')
    .update(publicKey.export({ type: 'spki', format: 'der' }))
    .digest();
}

export interface CertificateSpec {
  subject: NameAttrs;
  issuer: NameAttrs;
  publicKey: KeyObject;
  signingKey: KeyObject;
  notBefore: Date;
  notAfter: Date;
  isCA?: boolean;
  dnsNames?: string[];
  ipAddresses?: string[];
  extKeyUsage?: string[];
}

export function buildCertificate(spec: CertificateSpec): { der: Buffer; pem: string } {
  const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
    seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));
  const publicKey = spec.publicKey.type === 'private' ? createPublicKey(spec.publicKey) : spec.publicKey;
  const signerPublic = createPublicKey(spec.signingKey);
  const exts: Buffer[] = [
    extension(OID.basicConstraints, true, spec.isCA ? seq(bool(true)) : seq()),
    // keyUsage: CA → keyCertSign|cRLSign (bits 5,6); leaf → digitalSignature|keyEncipherment (bits 0,2).
    extension(
      OID.keyUsage,
      true,
      spec.isCA ? bitString(Buffer.from([0x06]), 1) : bitString(Buffer.from([0xa0]), 5),
    ),
    extension(OID.subjectKeyId, false, octets(keyId(publicKey))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, keyId(signerPublic)))),
  ];
  if (spec.extKeyUsage?.length)
    exts.push(extension(OID.extKeyUsage, false, seq(...spec.extKeyUsage.map(oid))));
  const sans = [
    ...(spec.dnsNames ?? []).map((d) => ia5Implicit(2, d)),
    ...(spec.ipAddresses ?? []).map((ip) => tlv(0x87, Buffer.from(ip.split('.').map(Number)))),
  ];
  if (sans.length) exts.push(extension(OID.subjectAltName, false, seq(...sans)));

  const serial = randomBytes(16);
  serial[0]! &= 0x7f;
  const tbs = seq(
    explicit(0, smallInteger(2)),
    integer(serial),
    signatureAlgorithm(spec.signingKey),
    name(spec.issuer),
    seq(time(spec.notBefore), time(spec.notAfter)),
    name(spec.subject),
    publicKey.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...exts)),
  );
  const digest = spec.signingKey.asymmetricKeyType === 'ed25519' ? null : 'sha256';
  const signature = sign(digest, tbs, spec.signingKey);
  const der = seq(tbs, signatureAlgorithm(spec.signingKey), bitString(signature));
  return { der, pem: toPem('CERTIFICATE', der) };
}

export function toPem(type: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${type}-----\n${b64.replace(/\n$/, '')}\n-----END ${type}-----\n`;
}

// ---- SSH wire helpers (only to make identity files look exactly like real ones) ----

const sshString = (b: Buffer | string): Buffer => {
  const data = typeof b === 'string' ? Buffer.from(b) : b;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
};
const sshMpint = (b: Buffer): Buffer => sshString(b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);

/** The authorized_keys form (`<type> <base64>`) of a public key. */
export function sshPublicKey(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = pub.export({ format: 'jwk' });
  const b = (s: string | undefined): Buffer => Buffer.from(s ?? '', 'base64url');
  if (pub.asymmetricKeyType === 'rsa') {
    return `ssh-rsa ${Buffer.concat([sshString('ssh-rsa'), sshMpint(b(jwk.e)), sshMpint(b(jwk.n))]).toString('base64')}`;
  }
  if (pub.asymmetricKeyType === 'ec') {
    const point = Buffer.concat([Buffer.from([4]), b(jwk.x), b(jwk.y)]);
    const t = 'ecdsa-sha2-nistp256';
    return `${t} ${Buffer.concat([sshString(t), sshString('nistp256'), sshString(point)]).toString('base64')}`;
  }
  return `ssh-ed25519 ${Buffer.concat([sshString('ssh-ed25519'), sshString(b(jwk.x))]).toString('base64')}`;
}

const SSH_CERT_TYPE: Record<string, string> = {
  rsa: 'ssh-rsa-cert-v01@openssh.com',
  ec: 'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  ed25519: 'ssh-ed25519-cert-v01@openssh.com',
};

/**
 * An SSH user certificate line. The blob starts like a real OpenSSH cert (type + nonce + key) but is not
 * signed: nothing in this project uses SSH, the line only has to be present and well-formed.
 */
export function sshCertLine(key: KeyObject): string {
  const type = SSH_CERT_TYPE[key.asymmetricKeyType ?? ''] ?? SSH_CERT_TYPE.ec!;
  const pubBlob = Buffer.from(sshPublicKey(key).split(' ')[1]!, 'base64');
  return `${type} ${Buffer.concat([sshString(type), sshString(randomBytes(32)), pubBlob]).toString('base64')}`;
}

// ---- The CA ----

export interface IssuedKeyPair {
  certPem: string;
  keyPem: string;
  key: KeyObject;
}

export class TestCA {
  readonly certPem: string;
  readonly cert: X509Certificate;

  private constructor(
    readonly clusterName: string,
    readonly key: KeyObject,
    notBefore: Date,
    notAfter: Date,
  ) {
    const subject: NameAttrs = [
      [OID.organization, clusterName],
      [OID.commonName, clusterName],
    ];
    this.certPem = buildCertificate({
      subject,
      issuer: subject,
      publicKey: key,
      signingKey: key,
      notBefore,
      notAfter,
      isCA: true,
    }).pem;
    this.cert = new X509Certificate(this.certPem);
  }

  static create(clusterName: string, keyType: TestKeyType = 'ecdsa'): TestCA {
    const now = Date.now();
    return new TestCA(
      clusterName,
      generateKey(keyType, true),
      new Date(now - 3600_000),
      new Date(now + 10 * 365 * 86400_000),
    );
  }

  private issuer(): NameAttrs {
    return [
      [OID.organization, this.clusterName],
      [OID.commonName, this.clusterName],
    ];
  }

  /** Auth's host cert: SANs teleport.cluster.local and *.teleport.cluster.local (+ extra names/IPs). */
  issueHostCert(
    opts: { keyType?: TestKeyType; dnsNames?: string[]; ipAddresses?: string[] } = {},
  ): IssuedKeyPair {
    const keyType = opts.keyType ?? 'ecdsa';
    const key = generateKey(keyType);
    const now = Date.now();
    const { pem } = buildCertificate({
      subject: [
        [OID.organization, 'Auth'],
        [OID.commonName, `auth.${this.clusterName}`],
      ],
      issuer: this.issuer(),
      publicKey: key,
      signingKey: this.key,
      notBefore: new Date(now - 3600_000),
      notAfter: new Date(now + 365 * 86400_000),
      dnsNames: [API_DOMAIN, `*.${API_DOMAIN}`, ...(opts.dnsNames ?? [])],
      ipAddresses: opts.ipAddresses ?? [],
      extKeyUsage: [OID.serverAuth, OID.clientAuth],
    });
    return { certPem: pem, keyPem: privateKeyPem(key, keyType), key };
  }

  /** A user cert as `tctl auth sign` issues it: CN=user, O=roles, 1.3.9999.1.7=cluster. */
  issueUserCert(opts: {
    user: string;
    roles?: string[];
    keyType?: TestKeyType;
    notBefore?: Date;
    notAfter?: Date;
    /** Omit the cluster attribute (older/other issuers) to exercise the CA CN fallback. */
    omitClusterAttribute?: boolean;
  }): IssuedKeyPair {
    const keyType = opts.keyType ?? 'ecdsa';
    const key = generateKey(keyType);
    const now = Date.now();
    const subject: NameAttrs = [
      ...(opts.roles ?? ['access-plugin']).map((r): [string, string] => [OID.organization, r]),
      [OID.commonName, opts.user],
      ...(opts.omitClusterAttribute ? [] : [[OID.teleportCluster, this.clusterName] as [string, string]]),
    ];
    const { pem } = buildCertificate({
      subject,
      issuer: this.issuer(),
      publicKey: key,
      signingKey: this.key,
      notBefore: opts.notBefore ?? new Date(now - 60_000),
      notAfter: opts.notAfter ?? new Date(now + 3600_000),
      extKeyUsage: [OID.serverAuth, OID.clientAuth],
    });
    return { certPem: pem, keyPem: privateKeyPem(key, keyType), key };
  }

  /** known_hosts form, as sshutils.MarshalKnownHost writes it. */
  sshCaLine(): string {
    return `@cert-authority ${this.clusterName},*.${this.clusterName} ${sshPublicKey(this.key)} type=host`;
  }
}

export interface IdentityFileOptions {
  /** The CA that signs the user cert. */
  ca: TestCA;
  /** CAs written as trust roots (default: [ca]); during a rotation both old and new. */
  trusted?: TestCA[];
  user?: string;
  keyType?: TestKeyType;
  /** Lifetime of the user cert from notBefore (default 1 h). */
  ttlMs?: number;
  notBefore?: Date;
  omitClusterAttribute?: boolean;
}

/** The text of an identity file in the exact upstream layout. */
export function identityFileText(opts: IdentityFileOptions): string {
  const notBefore = opts.notBefore ?? new Date(Date.now() - 60_000);
  const notAfter = new Date(notBefore.getTime() + (opts.ttlMs ?? 3600_000));
  const user = opts.ca.issueUserCert({
    user: opts.user ?? 'access-plugin',
    keyType: opts.keyType ?? 'ecdsa',
    notBefore,
    notAfter,
    ...(opts.omitClusterAttribute ? { omitClusterAttribute: true } : {}),
  });
  const trusted = opts.trusted ?? [opts.ca];
  const withNewline = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);
  return [
    user.keyPem,
    sshCertLine(user.key),
    user.certPem,
    ...trusted.map((c) => c.sshCaLine()),
    ...trusted.map((c) => c.certPem),
  ]
    .map(withNewline)
    .join('');
}

/**
 * Writes an identity file (mode 0600) and returns its path. With `symlinkSwap`, it mimics a Kubernetes
 * Secret volume: `<dir>/..data` → `<dir>/..<timestamp>/`, and `<dir>/<fileName>` → `..data/<fileName>`;
 * each call writes a new timestamped directory and atomically swaps `..data`.
 */
export async function writeIdentityFile(
  opts: IdentityFileOptions & { dir: string; fileName?: string; symlinkSwap?: boolean },
): Promise<string> {
  const fileName = opts.fileName ?? 'identity';
  const text = identityFileText(opts);
  const target = join(opts.dir, fileName);
  await mkdir(opts.dir, { recursive: true });
  if (!opts.symlinkSwap) {
    const tmp = `${target}.tmp-${process.pid}-${Date.now()}`;
    await writeFile(tmp, text, { mode: 0o600 });
    await chmod(tmp, 0o600);
    await rename(tmp, target);
    return target;
  }
  const { symlink, readlink } = await import('node:fs/promises');
  const stamp = `..${new Date().toISOString().replace(/[:.]/g, '_')}_${randomBytes(3).toString('hex')}`;
  await mkdir(join(opts.dir, stamp));
  await writeFile(join(opts.dir, stamp, fileName), text, { mode: 0o600 });
  const tmpLink = join(opts.dir, `..data_tmp_${randomBytes(3).toString('hex')}`);
  await symlink(stamp, tmpLink);
  await rename(tmpLink, join(opts.dir, '..data'));
  try {
    await readlink(target);
  } catch {
    await symlink(join('..data', fileName), target);
  }
  return target;
}

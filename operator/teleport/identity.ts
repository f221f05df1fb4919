// Teleport credentials: identity files (tctl auth sign --format=file, tsh login --out, tbot `identity`)
// and the client_key/client_crt/root_cas trio. Parsing mirrors api/identityfile decodeIdentityFile():
// line by line, first PEM block = private key, second = TLS cert, later blocks = TLS CAs; SSH cert lines
// and `@cert-authority` lines are kept; other lines are ignored.
import type { KeyObject, X509Certificate } from 'node:crypto';
import { crypto } from '../node-builtins.js';
import { readBoundedText } from './bounded-read.js';
import type { TeleportConfig } from '../config/types.js';
import { certificateNames, OID_COMMON_NAME, OID_TELEPORT_CLUSTER } from './der.js';

export type KeyType = 'rsa' | 'ecdsa' | 'ed25519';
/** PEM encoding of the private key: RSA PRIVATE KEY (PKCS#1), PRIVATE KEY (PKCS#8), EC PRIVATE KEY (SEC1). */
export type KeyFormat = 'pkcs1' | 'pkcs8' | 'sec1';

export interface Identity {
  /** Where it was read from (file path, or the trio's client_crt path); used in every message. */
  source: string;
  clusterName: string;
  /** The Teleport user the certificate was issued to (subject CN). */
  username: string;
  notBefore: Date;
  notAfter: Date;
  tlsCertPem: string;
  privateKeyPem: string;
  tlsCaPems: string[];
  sshCert?: string;
  sshCaLines: string[];
  keyType: KeyType;
  keyFormat: KeyFormat;
  /** SHA-256 fingerprint of the TLS cert: tells a renewed identity from the same one re-read. */
  fingerprint: string;
}

export type IdentityProblem =
  | 'read'
  | 'truncated-pem'
  | 'no-private-key'
  | 'unknown-key-type'
  | 'bad-private-key'
  | 'no-tls-cert'
  | 'bad-certificate'
  | 'no-ca'
  | 'key-mismatch'
  | 'no-cluster-name'
  | 'expired'
  | 'not-yet-valid';

export class IdentityError extends Error {
  constructor(
    readonly problem: IdentityProblem,
    readonly source: string,
    message: string,
  ) {
    super(message);
    this.name = 'IdentityError';
  }
}

const REEXPORT_HINT =
  "export a fresh identity with `tctl auth sign --user=<plugin user> --format=file --out=<file>` (or point it at tbot's `identity` output)";

interface PemBlock {
  type: string;
  text: string;
  line: number;
}

const KEY_FORMATS: Record<string, KeyFormat> = {
  'RSA PRIVATE KEY': 'pkcs1',
  'PRIVATE KEY': 'pkcs8',
  'EC PRIVATE KEY': 'sec1',
};

function splitIdentityText(
  text: string,
  source: string,
): { blocks: PemBlock[]; sshCert?: string; sshCaLines: string[] } {
  const lines = text.split(/\r?\n/);
  const blocks: PemBlock[] = [];
  const sshCaLines: string[] = [];
  let sshCert: string | undefined;
  let open: { type: string; lines: string[]; line: number } | undefined;
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (open) {
      open.lines.push(line);
      if (line.startsWith('-----END')) {
        blocks.push({ type: open.type, text: `${open.lines.join('\n')}\n`, line: open.line });
        open = undefined;
      }
      return;
    }
    if (line.startsWith('-----BEGIN')) {
      const type = /^-----BEGIN ([^-]*)-----/.exec(line)?.[1]?.trim() ?? '';
      open = { type, lines: [line], line: index + 1 };
    } else if (line.startsWith('@cert-authority')) {
      sshCaLines.push(line);
    } else if (isSshCertType(line.split(/\s+/)[0] ?? '')) {
      sshCert = line; // the last one wins, as upstream
    }
  });
  if (open) {
    throw new IdentityError(
      'truncated-pem',
      source,
      `${source}: the PEM block "${open.type}" that starts on line ${open.line} has no END line, so the file is truncated or was cut while copying; ${REEXPORT_HINT}`,
    );
  }
  return { blocks, ...(sshCert ? { sshCert } : {}), sshCaLines };
}

function isSshCertType(token: string): boolean {
  return /^[a-z0-9.@-]+-cert-v0[01]@openssh\.com$/.test(token);
}

function parsePrivateKey(block: PemBlock | undefined, source: string): { key: KeyObject; format: KeyFormat } {
  if (!block) {
    throw new IdentityError(
      'no-private-key',
      source,
      `${source}: no PEM blocks found; this is not an identity file. ${REEXPORT_HINT}`,
    );
  }
  const format = KEY_FORMATS[block.type];
  if (!format) {
    const hint =
      block.type === 'CERTIFICATE'
        ? 'the file starts with a certificate, but an identity file starts with the private key'
        : `"${block.type}" is not a private key this plugin can use (it may be a key reference, such as tbot's identity-api output, which does not contain the key); use tbot's \`identity\` output or \`tctl auth sign --format=file\``;
    throw new IdentityError(
      'unknown-key-type',
      source,
      `${source}: unsupported private key PEM block on line ${block.line}: ${hint}. Supported: RSA PRIVATE KEY, PRIVATE KEY, EC PRIVATE KEY`,
    );
  }
  try {
    return { key: crypto.createPrivateKey(block.text), format };
  } catch (err) {
    throw new IdentityError(
      'bad-private-key',
      source,
      `${source}: the private key (${block.type}, line ${block.line}) cannot be decoded (${(err as Error).message}); the file is corrupted. ${REEXPORT_HINT}`,
    );
  }
}

function parseCertificate(block: PemBlock, source: string, what: string): X509Certificate {
  if (block.type !== 'CERTIFICATE') {
    throw new IdentityError(
      'bad-certificate',
      source,
      `${source}: expected the ${what} (a CERTIFICATE PEM block) on line ${block.line}, found "${block.type}"`,
    );
  }
  try {
    return new crypto.X509Certificate(block.text);
  } catch (err) {
    throw new IdentityError(
      'bad-certificate',
      source,
      `${source}: the ${what} on line ${block.line} cannot be decoded (${(err as Error).message}); the file is corrupted. ${REEXPORT_HINT}`,
    );
  }
}

function keyTypeOf(key: KeyObject, source: string): KeyType {
  switch (key.asymmetricKeyType) {
    case 'rsa':
      return 'rsa';
    case 'ec':
      return 'ecdsa';
    case 'ed25519':
      return 'ed25519';
    default:
      throw new IdentityError(
        'unknown-key-type',
        source,
        `${source}: unsupported private key algorithm ${key.asymmetricKeyType}`,
      );
  }
}

function attribute(attrs: Array<{ oid: string; value: string }>, oid: string): string | undefined {
  return attrs.find((a) => a.oid === oid)?.value;
}

interface Parts {
  source: string;
  key: { key: KeyObject; format: KeyFormat; pem: string };
  cert: { cert: X509Certificate; pem: string };
  cas: Array<{ cert: X509Certificate; pem: string }>;
  sshCert?: string;
  sshCaLines: string[];
}

function assemble(p: Parts): Identity {
  const { source, cert } = p;
  if (!cert.cert.checkPrivateKey(p.key.key)) {
    throw new IdentityError(
      'key-mismatch',
      source,
      `${source}: the private key does not belong to the TLS certificate (subject "${cert.cert.subject.replace(/\n/g, ', ')}"); the file mixes parts of different identities. ${REEXPORT_HINT}`,
    );
  }
  if (p.cas.length === 0) {
    throw new IdentityError(
      'no-ca',
      source,
      `${source}: no TLS CA certificate found, so the Teleport Auth server cannot be verified; ${REEXPORT_HINT}`,
    );
  }
  let clusterName: string | undefined;
  let username = '';
  try {
    const names = certificateNames(cert.cert.raw);
    clusterName = attribute(names.subject, OID_TELEPORT_CLUSTER) ?? attribute(names.issuer, OID_COMMON_NAME);
    username = attribute(names.subject, OID_COMMON_NAME) ?? '';
  } catch {
    // fall through to the CA CN
  }
  if (!clusterName) {
    for (const ca of p.cas) {
      clusterName = attribute(certificateNames(ca.cert.raw).subject, OID_COMMON_NAME);
      if (clusterName) break;
    }
  }
  if (!clusterName) {
    throw new IdentityError(
      'no-cluster-name',
      source,
      `${source}: cannot tell the Teleport cluster name: the TLS certificate has no cluster attribute (OID ${OID_TELEPORT_CLUSTER}) and the CA has no common name; ${REEXPORT_HINT}`,
    );
  }
  return {
    source,
    clusterName,
    username,
    notBefore: cert.cert.validFromDate,
    notAfter: cert.cert.validToDate,
    tlsCertPem: cert.pem,
    privateKeyPem: p.key.pem,
    tlsCaPems: p.cas.map((c) => c.pem),
    ...(p.sshCert ? { sshCert: p.sshCert } : {}),
    sshCaLines: p.sshCaLines,
    keyType: keyTypeOf(p.key.key, source),
    keyFormat: p.key.format,
    fingerprint: cert.cert.fingerprint256,
  };
}

/**
 * Parses an identity file's text. Pure: it does not look at the clock (see checkValidity).
 * `source` names the file in error messages.
 */
export function parseIdentity(text: string, source: string): Identity {
  const { blocks, sshCert, sshCaLines } = splitIdentityText(text, source);
  const keyBlock = blocks[0];
  const key = parsePrivateKey(keyBlock, source);
  const certBlock = blocks[1];
  if (!certBlock) {
    throw new IdentityError(
      'no-tls-cert',
      source,
      `${source}: no TLS certificate after the private key; the file is incomplete (an SSH-only export?). ${REEXPORT_HINT}`,
    );
  }
  const cert = parseCertificate(certBlock, source, 'TLS user certificate');
  const cas = blocks
    .slice(2)
    .map((b, i) => ({ cert: parseCertificate(b, source, `TLS CA certificate #${i + 1}`), pem: b.text }));
  return assemble({
    source,
    key: { ...key, pem: keyBlock!.text },
    cert: { cert, pem: certBlock.text },
    cas,
    ...(sshCert ? { sshCert } : {}),
    sshCaLines,
  });
}

/** Builds an Identity from the client_key / client_crt / root_cas trio (texts of the three files). */
export function parseKeyPair(files: {
  keyPem: string;
  keySource: string;
  certPem: string;
  certSource: string;
  rootCasPem: string;
  rootCasSource: string;
}): Identity {
  const keyBlocks = splitIdentityText(files.keyPem, files.keySource).blocks;
  const key = parsePrivateKey(keyBlocks[0], files.keySource);
  const certBlocks = splitIdentityText(files.certPem, files.certSource).blocks;
  if (!certBlocks[0]) {
    throw new IdentityError(
      'no-tls-cert',
      files.certSource,
      `${files.certSource}: no CERTIFICATE PEM block found in client_crt`,
    );
  }
  const cert = parseCertificate(certBlocks[0], files.certSource, 'client certificate');
  const caBlocks = splitIdentityText(files.rootCasPem, files.rootCasSource).blocks;
  const cas = caBlocks.map((b, i) => ({
    cert: parseCertificate(b, files.rootCasSource, `root CA certificate #${i + 1}`),
    pem: b.text,
  }));
  return assemble({
    source: files.certSource,
    key: { ...key, pem: keyBlocks[0]!.text },
    cert: { cert, pem: certBlocks[0].text },
    cas,
    sshCaLines: [],
  });
}

/** Throws when the identity is expired or not yet valid at `now`, naming the file and the times. */
export function checkValidity(identity: Identity, now: Date = new Date()): void {
  if (now.getTime() >= identity.notAfter.getTime()) {
    throw new IdentityError(
      'expired',
      identity.source,
      `${identity.source}: the Teleport certificate expired at ${identity.notAfter.toISOString()} (now ${now.toISOString()}); sign new credentials and increase their TTL if needed, or run tbot to renew them and set refresh_identity = true`,
    );
  }
  if (now.getTime() < identity.notBefore.getTime()) {
    throw new IdentityError(
      'not-yet-valid',
      identity.source,
      `${identity.source}: the Teleport certificate is not valid before ${identity.notBefore.toISOString()} (now ${now.toISOString()}); check this machine's clock`,
    );
  }
}

export async function readText(path: string, what: string): Promise<string> {
  try {
    return await readBoundedText(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'does not exist'
        : code === 'EACCES'
          ? 'is not readable by this process'
          : (err as Error).message;
    throw new IdentityError(
      'read',
      path,
      `${path}: the ${what} ${why}; check the path in [teleport] of the configuration`,
    );
  }
}

/**
 * Reads and validates the configured credentials (identity file, or the key/cert/CA trio).
 * Fails on expired or not-yet-valid certificates, as upstream does at start-up.
 */
export async function loadCredentials(cfg: TeleportConfig, opts: { now?: Date } = {}): Promise<Identity> {
  let identity: Identity;
  if (cfg.identity) {
    identity = parseIdentity(await readText(cfg.identity, 'identity file'), cfg.identity);
  } else if (cfg.clientKey && cfg.clientCrt && cfg.rootCas) {
    identity = parseKeyPair({
      keyPem: await readText(cfg.clientKey, 'client_key file'),
      keySource: cfg.clientKey,
      certPem: await readText(cfg.clientCrt, 'client_crt file'),
      certSource: cfg.clientCrt,
      rootCasPem: await readText(cfg.rootCas, 'root_cas file'),
      rootCasSource: cfg.rootCas,
    });
  } else {
    throw new IdentityError(
      'read',
      '[teleport]',
      'no credentials configured; set teleport.identity to an identity file, or all of client_key, client_crt and root_cas',
    );
  }
  checkValidity(identity, opts.now);
  return identity;
}

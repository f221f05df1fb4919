// A minimal DER reader: just enough to read the subject and issuer names of an X.509 certificate,
// because node:crypto's X509Certificate does not expose unknown subject attributes by OID
// (Teleport puts the cluster name in subject attribute 1.3.9999.1.7).

export interface DerNode {
  tag: number;
  /** Offset of the first content byte in the buffer. */
  start: number;
  /** Offset just past the last content byte. */
  end: number;
}

export class DerError extends Error {}

/** Reads one TLV at `offset`; returns the node and the offset after it. */
export function readNode(buf: Uint8Array, offset: number): { node: DerNode; next: number } {
  if (offset + 2 > buf.length) throw new DerError('DER: truncated header');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('DER: multi-byte tags are not supported');
  let lenByte = buf[offset + 1]!;
  let pos = offset + 2;
  let length = lenByte;
  if (lenByte & 0x80) {
    lenByte &= 0x7f;
    if (lenByte === 0 || lenByte > 4) throw new DerError('DER: unsupported length encoding');
    if (pos + lenByte > buf.length) throw new DerError('DER: truncated length');
    length = 0;
    for (let i = 0; i < lenByte; i++) length = length * 256 + buf[pos + i]!;
    pos += lenByte;
  }
  const end = pos + length;
  if (end > buf.length) throw new DerError('DER: content runs past the end of the data');
  return { node: { tag, start: pos, end }, next: end };
}

/** The child nodes of a constructed node. */
export function children(buf: Uint8Array, parent: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let pos = parent.start;
  while (pos < parent.end) {
    const { node, next } = readNode(buf, pos);
    out.push(node);
    pos = next;
  }
  return out;
}

export function decodeOid(bytes: Uint8Array): string {
  if (bytes.length === 0) throw new DerError('DER: empty OID');
  const first = bytes[0]!;
  const parts: number[] = [
    Math.min(2, Math.floor(first / 40)),
    first - Math.min(2, Math.floor(first / 40)) * 40,
  ];
  let value = 0;
  for (let i = 1; i < bytes.length; i++) {
    const b = bytes[i]!;
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join('.');
}

const TAG_SEQUENCE = 0x30;
const TAG_SET = 0x31;
const TAG_OID = 0x06;
const TAG_CONTEXT_0 = 0xa0;

/** Attribute (OID, string value) pairs of an X.509 Name, in order. */
export type NameAttributes = Array<{ oid: string; value: string }>;

function readName(buf: Uint8Array, name: DerNode): NameAttributes {
  if (name.tag !== TAG_SEQUENCE) throw new DerError('DER: Name is not a SEQUENCE');
  const out: NameAttributes = [];
  for (const rdn of children(buf, name)) {
    if (rdn.tag !== TAG_SET) throw new DerError('DER: RDN is not a SET');
    for (const atv of children(buf, rdn)) {
      const [oidNode, valueNode] = children(buf, atv);
      if (!oidNode || !valueNode || oidNode.tag !== TAG_OID)
        throw new DerError('DER: bad AttributeTypeAndValue');
      const oid = decodeOid(buf.subarray(oidNode.start, oidNode.end));
      // UTF8String, PrintableString, IA5String, T61String all decode fine as UTF-8/latin1 for our purposes.
      const value = Buffer.from(buf.subarray(valueNode.start, valueNode.end)).toString('utf8');
      out.push({ oid, value });
    }
  }
  return out;
}

/** Issuer and subject name attributes of a DER-encoded X.509 certificate. */
export function certificateNames(der: Uint8Array): { issuer: NameAttributes; subject: NameAttributes } {
  const { node: cert } = readNode(der, 0);
  const [tbs] = children(der, cert);
  if (!tbs || tbs.tag !== TAG_SEQUENCE) throw new DerError('DER: certificate has no TBSCertificate');
  const fields = children(der, tbs);
  // version [0] is optional (absent for v1 certs).
  const base = fields[0]?.tag === TAG_CONTEXT_0 ? 1 : 0;
  const issuer = fields[base + 2];
  const subject = fields[base + 4];
  if (!issuer || !subject) throw new DerError('DER: TBSCertificate is too short');
  return { issuer: readName(der, issuer), subject: readName(der, subject) };
}

export const OID_COMMON_NAME = '2.5.4.3';
/** Teleport's TeleportClusterASN1ExtensionOID, carried as a subject attribute (lib/tlsca/ca.go). */
export const OID_TELEPORT_CLUSTER = '1.3.9999.1.7';

// Verifies Mattermost's signed trigger_id, the only proof of who clicked: Mattermost's callback carries no
// signature header. trigger_id = base64("<clientTriggerId>:<userId>:<unixMillis>:" + base64(sig)), where sig
// is ECDSA P-256 / SHA-256, ASN.1 DER, over the prefix INCLUDING the trailing colon, and the key is the
// server's AsymmetricSigningPublicKey (base64 DER SPKI from GET /api/v4/config/client?format=old).
import type { KeyObject } from 'node:crypto';
import { crypto } from '../node-builtins.js';

const { createPublicKey, verify } = crypto;

export type TriggerCheck =
  | { ok: true; clientTriggerId: string; issuedAtMs: number }
  | { ok: false; reason: 'malformed' | 'signature' | 'other_user' | 'expired' | 'future' };

/** Clock skew we accept between Mattermost and us for a trigger_id "from the future". */
const MAX_FUTURE_SKEW_MS = 60_000;

export function publicKeyFromMattermost(base64Spki: string): KeyObject {
  const key = createPublicKey({ key: Buffer.from(base64Spki, 'base64'), format: 'der', type: 'spki' });
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new Error('AsymmetricSigningPublicKey is not an ECDSA P-256 key');
  }
  return key;
}

export function verifyTriggerId(
  triggerId: unknown,
  userId: string,
  key: KeyObject,
  maxAgeMs: number,
  nowMs: number,
): TriggerCheck {
  if (typeof triggerId !== 'string' || triggerId.length === 0 || triggerId.length > 1024) {
    return { ok: false, reason: 'malformed' };
  }
  const decoded = Buffer.from(triggerId, 'base64').toString('utf8');
  const parts = decoded.split(':');
  if (parts.length !== 4) return { ok: false, reason: 'malformed' };
  const [clientTriggerId, signedUser, millis, signature] = parts as [string, string, string, string];
  if (!clientTriggerId || !/^\d{1,16}$/.test(millis) || !signature) return { ok: false, reason: 'malformed' };
  const signed = Buffer.from(`${clientTriggerId}:${signedUser}:${millis}:`, 'utf8');
  let valid: boolean;
  try {
    valid = verify('sha256', signed, { key, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
  } catch {
    valid = false;
  }
  if (!valid) return { ok: false, reason: 'signature' };
  if (signedUser !== userId) return { ok: false, reason: 'other_user' };
  const issuedAtMs = Number(millis);
  if (issuedAtMs - nowMs > MAX_FUTURE_SKEW_MS) return { ok: false, reason: 'future' };
  if (nowMs - issuedAtMs > maxAgeMs) return { ok: false, reason: 'expired' };
  return { ok: true, clientTriggerId, issuedAtMs };
}

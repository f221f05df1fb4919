import type { V1Deployment } from '@kubernetes/client-node';
import { REASON, setCondition } from '../../../operator/controller/conditions.js';
import {
  availability,
  computeStatus,
  isSubset,
  jsonEqual,
  type Observed,
} from '../../../operator/controller/status.js';
import { needsApply, APPLIED_HASH_ANNOTATION } from '../../../operator/controller/reconciler.js';

const t0 = new Date('2026-01-01T00:00:00.123Z');
const t1 = new Date('2026-01-01T01:00:00Z');

function deployment(available: boolean | undefined, gen = 1, observed = 1): V1Deployment {
  return {
    metadata: { name: 'mm', generation: gen },
    status: {
      observedGeneration: observed,
      availableReplicas: available ? 1 : 0,
      ...(available === undefined
        ? {}
        : { conditions: [{ type: 'Available', status: available ? 'True' : 'False', message: 'x' }] }),
    },
  };
}

const ok = { ok: true as const, reason: 'Fine', message: 'fine' };
function observed(over: Partial<Observed> = {}): Observed {
  return {
    generation: 3,
    config: ok,
    identity: ok,
    deployment: deployment(true),
    deploymentName: 'mm',
    ...over,
  };
}

describe('availability', () => {
  it('mirrors the Deployment', () => {
    expect(availability(undefined).reason).toBe(REASON.DeploymentNotCreated);
    expect(availability(deployment(true)).ok).toBe(true);
    expect(availability(deployment(false)).reason).toBe(REASON.DeploymentUnavailable);
    expect(availability(deployment(true, 2, 1)).reason).toBe(REASON.DeploymentPending);
    expect(availability(deployment(undefined)).reason).toBe(REASON.DeploymentPending);
  });
});

describe('computeStatus', () => {
  it('is Ready only when config, identity and Deployment are all good', () => {
    const s = computeStatus(undefined, observed(), t0);
    expect(s.observedGeneration).toBe(3);
    expect(s.conditions!.map((c) => [c.type, c.status])).toEqual([
      ['Ready', 'True'],
      ['ConfigValid', 'True'],
      ['IdentityValid', 'True'],
      ['Available', 'True'],
    ]);
    expect(s.conditions![0]!.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
    expect(s).not.toHaveProperty('phase');
  });

  it('names the first failing reason in Ready', () => {
    const bad = { ok: false as const, reason: 'IdentityExpired', message: 'expired' };
    const s = computeStatus(undefined, observed({ identity: bad }), t0);
    expect(s.conditions![0]).toMatchObject({
      type: 'Ready',
      status: 'False',
      reason: REASON.IdentityInvalid,
      message: 'expired',
    });
  });

  it('is stable: the same facts later produce an equal status (no write needed)', () => {
    const first = computeStatus(undefined, observed({ identityExpiresAt: t1 }), t0);
    const again = computeStatus(first, observed({ identityExpiresAt: t1 }), new Date(t0.getTime() + 60_000));
    expect(jsonEqual(first, again)).toBe(true);
    expect(first.identityExpiresAt).toBe('2026-01-01T01:00:00Z');
  });

  it('moves lastTransitionTime only when a status flips', () => {
    const first = computeStatus(undefined, observed(), t0);
    const later = new Date('2026-01-02T00:00:00Z');
    const flipped = computeStatus(first, observed({ deployment: deployment(false) }), later);
    const ready = flipped.conditions!.find((c) => c.type === 'Ready')!;
    const config = flipped.conditions!.find((c) => c.type === 'ConfigValid')!;
    expect(ready.lastTransitionTime).toBe('2026-01-02T00:00:00Z');
    expect(config.lastTransitionTime).toBe('2026-01-01T00:00:00Z');
  });
});

describe('setCondition', () => {
  it('adds and replaces by type', () => {
    const a = setCondition([], { type: 'X', status: 'True', reason: 'R', message: 'm' }, t0);
    const b = setCondition(a, { type: 'X', status: 'True', reason: 'R2', message: 'm2' }, t1);
    expect(b).toEqual([
      { type: 'X', status: 'True', reason: 'R2', message: 'm2', lastTransitionTime: '2026-01-01T00:00:00Z' },
    ]);
  });
});

describe('isSubset / needsApply', () => {
  it('accepts extra live fields (server defaults) but not differing ones', () => {
    expect(
      isSubset({ a: 1, b: { c: [1, { d: 'x' }] } }, { a: 1, z: 2, b: { c: [1, { d: 'x', e: 0 }] } }),
    ).toBe(true);
    expect(isSubset({ a: 1 }, { a: 2 })).toBe(false);
    expect(isSubset({ l: [1, 2] }, { l: [1] })).toBe(false);
  });

  it('re-applies when the applied hash differs (e.g. a removed field) or the object drifted', () => {
    const desired = { metadata: { annotations: { [APPLIED_HASH_ANNOTATION]: 'h1' } }, spec: { x: 1 } };
    expect(needsApply(desired, undefined)).toBe(true);
    expect(
      needsApply(desired, {
        metadata: { annotations: { [APPLIED_HASH_ANNOTATION]: 'h1' } },
        spec: { x: 1, y: 2 },
      }),
    ).toBe(false);
    expect(
      needsApply(desired, { metadata: { annotations: { [APPLIED_HASH_ANNOTATION]: 'h0' } }, spec: { x: 1 } }),
    ).toBe(true);
    expect(
      needsApply(desired, { metadata: { annotations: { [APPLIED_HASH_ANNOTATION]: 'h1' } }, spec: { x: 9 } }),
    ).toBe(true);
  });
});

describe('URL credentials (issue 15)', () => {
  it('never puts a URL password into a condition message', () => {
    const status = computeStatus(
      undefined,
      {
        ...observed(),
        config: { ok: false, reason: 'ConfigInvalid', message: 'bad url http://admin:S3cret@mm.example' },
      },
      new Date(0),
    );
    expect(JSON.stringify(status)).not.toContain('S3cret');
    expect(JSON.stringify(status)).toContain('http://***@mm.example');
  });
});

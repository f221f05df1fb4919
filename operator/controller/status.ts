// Pure: what the reconcile found -> the CR's status (conditions, expiry, names). Deterministic for the
// same facts (lastTransitionTime is carried over), so comparing with the stored status tells whether a
// status write is needed at all.
import type { V1Deployment } from '@kubernetes/client-node';
import { maskUrlCredentials } from '../observability/safe-text.js';
import {
  CONDITION,
  REASON,
  findCondition,
  rfc3339,
  setCondition,
  type Condition,
  type ConditionInput,
} from './conditions.js';
import type { MattermostAccessPluginStatus } from './types.js';

export type CheckResult =
  { ok: true; reason: string; message: string } | { ok: false; reason: string; message: string };

export interface Observed {
  generation: number;
  config: CheckResult;
  identity: CheckResult;
  identityExpiresAt?: Date;
  identityClusterName?: string;
  /** The live Deployment, or undefined when it does not exist (e.g. never created because the spec is invalid). */
  deployment: V1Deployment | undefined;
  deploymentName: string;
  configHash?: string;
  recipientCount?: number;
  /** Only with spec.teleport.tbot: whether tbot runs (TbotReady); absent removes that condition. */
  tbot?: CheckResult;
}

/** Mirrors the Deployment's Available condition, taking an outdated observedGeneration as pending. */
export function availability(d: V1Deployment | undefined, what = 'watcher'): CheckResult {
  if (!d) {
    return {
      ok: false,
      reason: REASON.DeploymentNotCreated,
      message: `The ${what} Deployment has not been created yet; see the ConfigValid condition`,
    };
  }
  const gen = d.metadata?.generation ?? 0;
  const observed = d.status?.observedGeneration ?? 0;
  const available = d.status?.conditions?.find((c) => c.type === 'Available');
  if (observed < gen || !available) {
    return {
      ok: false,
      reason: REASON.DeploymentPending,
      message: `Deployment ${d.metadata?.name} is rolling out (generation ${gen}, observed ${observed})`,
    };
  }
  if (available.status === 'True') {
    return {
      ok: true,
      reason: REASON.DeploymentAvailable,
      message: `Deployment ${d.metadata?.name} has ${d.status?.availableReplicas ?? 0} available replica(s)`,
    };
  }
  return {
    ok: false,
    reason: REASON.DeploymentUnavailable,
    message: `Deployment ${d.metadata?.name} is not available${available.message ? `: ${available.message}` : ''}; check its pods (kubectl describe deployment ${d.metadata?.name})`,
  };
}

function cond(type: string, r: CheckResult, generation: number): ConditionInput {
  return {
    type,
    status: r.ok ? 'True' : 'False',
    observedGeneration: generation,
    reason: r.reason,
    message: maskUrlCredentials(r.message),
  };
}

export function computeStatus(
  previous: MattermostAccessPluginStatus | undefined,
  o: Observed,
  now: Date,
): MattermostAccessPluginStatus {
  const available = availability(o.deployment);
  let ready: CheckResult;
  if (!o.config.ok) ready = { ok: false, reason: REASON.ConfigInvalid, message: o.config.message };
  else if (!o.identity.ok) ready = { ok: false, reason: REASON.IdentityInvalid, message: o.identity.message };
  else if (o.tbot && !o.tbot.ok) ready = { ok: false, reason: REASON.TbotNotReady, message: o.tbot.message };
  else if (!available.ok) ready = { ok: false, reason: REASON.NotAvailable, message: available.message };
  else ready = { ok: true, reason: REASON.Ready, message: 'The watcher is configured and running' };

  let conditions: Condition[] = (previous?.conditions ?? []).filter(
    (c) => o.tbot || c.type !== CONDITION.TbotReady,
  );
  for (const input of [
    cond(CONDITION.Ready, ready, o.generation),
    cond(CONDITION.ConfigValid, o.config, o.generation),
    cond(CONDITION.IdentityValid, o.identity, o.generation),
    cond(CONDITION.Available, available, o.generation),
    ...(o.tbot ? [cond(CONDITION.TbotReady, o.tbot, o.generation)] : []),
  ]) {
    conditions = setCondition(conditions, input, now);
  }
  const order: string[] = [
    CONDITION.Ready,
    CONDITION.ConfigValid,
    CONDITION.IdentityValid,
    CONDITION.Available,
    CONDITION.TbotReady,
  ];
  conditions = [...conditions].sort((a, b) => order.indexOf(a.type) - order.indexOf(b.type));

  const status: MattermostAccessPluginStatus = {
    observedGeneration: o.generation,
    conditions,
    deploymentName: o.deploymentName,
    configMapName: o.deploymentName,
  };
  if (o.identityExpiresAt) status.identityExpiresAt = rfc3339(o.identityExpiresAt);
  if (o.identityClusterName) status.identityClusterName = o.identityClusterName;
  if (o.configHash) status.configHash = o.configHash;
  if (o.recipientCount !== undefined) status.recipientCount = o.recipientCount;
  return status;
}

/** Deep equality of two JSON-like values (key order ignored). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => jsonEqual(v, bb[i]));
  }
  const ak = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
  const bk = Object.keys(b as object).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
  if (ak.length !== bk.length) return false;
  return ak.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

/**
 * True when every field of `desired` is present with the same value in `live` (extra live fields, e.g.
 * defaults the API server filled in, are fine). Arrays must match element by element.
 */
export function isSubset(desired: unknown, live: unknown): boolean {
  if (desired === undefined) return true;
  if (desired === null || typeof desired !== 'object') {
    return desired === live || (typeof desired === 'number' && String(desired) === String(live));
  }
  if (live === null || typeof live !== 'object') return false;
  if (Array.isArray(desired)) {
    if (!Array.isArray(live) || live.length !== desired.length) return false;
    return desired.every((v, i) => isSubset(v, live[i]));
  }
  return Object.entries(desired).every(([k, v]) => isSubset(v, (live as Record<string, unknown>)[k]));
}

export { findCondition };

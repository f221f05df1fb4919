// Status condition types and reasons of MattermostAccessPlugin (CamelCase, one place), plus the pure
// helper that merges a condition into a list the way meta.SetStatusCondition does: lastTransitionTime
// changes only when status changes, so re-applying the same facts produces an identical list.

export const CONDITION = {
  /** Summary: config valid, identity valid and the Deployment available. */
  Ready: 'Ready',
  ConfigValid: 'ConfigValid',
  IdentityValid: 'IdentityValid',
  /** Mirrored from the Deployment's Available condition. */
  Available: 'Available',
  /** Only with spec.teleport.tbot: tbot's Deployment is available (mirrored like Available). */
  TbotReady: 'TbotReady',
} as const;
export type ConditionType = (typeof CONDITION)[keyof typeof CONDITION];

export const REASON = {
  // ConfigValid
  ConfigRendered: 'ConfigRendered',
  InvalidSpec: 'InvalidSpec',
  TokenSecretNotFound: 'TokenSecretNotFound',
  TokenKeyNotFound: 'TokenKeyNotFound',
  CASecretNotFound: 'CASecretNotFound',
  CAKeyNotFound: 'CAKeyNotFound',
  // IdentityValid
  IdentityValid: 'IdentityValid',
  IdentitySecretNotFound: 'IdentitySecretNotFound',
  IdentityKeyNotFound: 'IdentityKeyNotFound',
  IdentityMalformed: 'IdentityMalformed',
  IdentityExpired: 'IdentityExpired',
  IdentityNotYetValid: 'IdentityNotYetValid',
  /** Still valid, but so close to its expiry that its renewals (tbot's every 20 minutes) have stopped. */
  IdentityNotRenewed: 'IdentityNotRenewed',
  // TbotReady (besides the Deployment reasons below)
  TbotSpecInvalid: 'TbotSpecInvalid',
  // Available
  DeploymentAvailable: 'DeploymentAvailable',
  DeploymentUnavailable: 'DeploymentUnavailable',
  DeploymentPending: 'DeploymentPending',
  DeploymentNotCreated: 'DeploymentNotCreated',
  // Ready
  Ready: 'WatcherReady',
  ConfigInvalid: 'ConfigInvalid',
  IdentityInvalid: 'IdentityInvalid',
  NotAvailable: 'DeploymentNotAvailable',
  TbotNotReady: 'TbotNotReady',
} as const;
export type Reason = (typeof REASON)[keyof typeof REASON];

export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/**
 * setCondition returns a new list with `input` merged in. The lastTransitionTime is kept from the
 * existing condition of that type when its status is unchanged, else set to `now`.
 */
export function setCondition(list: readonly Condition[], input: ConditionInput, now: Date): Condition[] {
  const existing = list.find((c) => c.type === input.type);
  const lastTransitionTime =
    existing && existing.status === input.status ? existing.lastTransitionTime : rfc3339(now);
  const next: Condition = { ...input, lastTransitionTime };
  return existing ? list.map((c) => (c.type === input.type ? next : c)) : [...list, next];
}

export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Kubernetes timestamps have second precision; keeping that avoids spurious diffs. */
export function rfc3339(d: Date): string {
  return new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** Reasons of Events emitted on the CR that are not condition reasons. */
export const EVENT_REASON = {
  DeploymentCreated: 'DeploymentCreated',
  ConfigChanged: 'ConfigChanged',
  DeploymentUpdated: 'DeploymentUpdated',
  ReviewKeyGenerated: 'ReviewKeyGenerated',
} as const;

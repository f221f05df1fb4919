// Reconciler: the level-triggered reconcile(key). It reads everything it needs from the informer caches
// (the CR, its Secrets, its Deployment and ConfigMap), computes the desired state with pure functions,
// and writes only what differs:
//   1. spec -> TOML (validated with the watcher's own loader); invalid -> ConfigValid=False and the
//      Deployment is left as it is;
//   2. identity Secret -> parse with the watcher's identity code -> IdentityValid (with the expiry);
//   3. ConfigMap and Deployment by server-side apply (one field manager, force), skipped when the live
//      object already matches (so an idle operator makes no writes);
//   4. status through the /status subresource, only when it changed; Events for condition transitions.
// The pod-template hash covers the config text and the token (the watcher reads both only at start), not
// the identity: tbot's renewals reach the pod through the directory mount and refresh_identity.
// With spec.teleport.tbot, step 1b applies tbot's ServiceAccount, Role, RoleBinding, output Secret,
// ConfigMap and Deployment (tbot.ts) before the identity is read, and TbotReady mirrors tbot's
// Deployment. An identity that stops being renewed turns IdentityValid False before it expires
// (IDENTITY_RENEWAL_MARGIN_MS).
import { own } from '../config/dict.js';
import { maskUrlCredentials } from '../observability/safe-text.js';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import type { Logger } from '../observability/logger.js';
import { checkValidity, IdentityError, parseIdentity } from '../teleport/identity.js';
import { NotLeaderError } from './errors.js';
import { buildConfigMap, buildDeployment } from './build.js';
import { CONDITION, EVENT_REASON, REASON, findCondition } from './conditions.js';
import {
  CONFIG_HASH_ANNOTATION,
  DEFAULT_CA_KEY,
  DEFAULT_IDENTITY_KEY,
  DEFAULT_TOKEN_KEY,
  GROUP,
  IDENTITY_RECHECK_MAX_MS,
  IDENTITY_RENEWAL_MARGIN_MS,
  MISSING_SECRET_RETRY_MS,
} from './defaults.js';
import {
  configWarnings,
  hashParts,
  inSpecFieldNames,
  renderConfig,
  SpecError,
  type RenderedConfig,
} from './render.js';
import { buildReviewKeySecret, buildReviewService, reviewEnabled, reviewKeyRef } from './review.js';
import { availability, computeStatus, isSubset, jsonEqual, type CheckResult } from './status.js';
import {
  buildTbotObjects,
  genericTbotObjects,
  tbotNames,
  validateTbot,
  withTbotDefaults,
  type TbotOwnedKind,
} from './tbot.js';
import type { MattermostAccessPlugin, MattermostAccessPluginStatus, SecretKeyRef } from './types.js';

/** Annotation with the hash of the desired object last applied: a change (even a removal) re-applies. */
export const APPLIED_HASH_ANNOTATION = `${GROUP}/applied-hash`;

export interface ClusterReader {
  getPlugin(namespace: string, name: string): MattermostAccessPlugin | undefined;
  getSecret(namespace: string, name: string): V1Secret | undefined;
  getDeployment(namespace: string, name: string): V1Deployment | undefined;
  getConfigMap(namespace: string, name: string): V1ConfigMap | undefined;
  /** tbot's ServiceAccount, Role, RoleBinding and output Secret (Secrets come from the Secret cache). */
  getObject?(kind: TbotOwnedKind, namespace: string, name: string): KubernetesObject | undefined;
  getService?(namespace: string, name: string): V1Service | undefined;
}

export interface ClusterWriter {
  applyConfigMap(cm: V1ConfigMap): Promise<void>;
  applyDeployment(d: V1Deployment): Promise<void>;
  /** Server-side apply of one of tbot's ServiceAccount, Role, RoleBinding or output Secret. */
  applyObject?(kind: TbotOwnedKind, obj: KubernetesObject): Promise<void>;
  /** spec.review: the callback Service (server-side apply) and a generated key Secret (create once). */
  applyService?(svc: V1Service): Promise<void>;
  createSecret?(secret: V1Secret): Promise<boolean>;
  applyStatus(cr: MattermostAccessPlugin, status: MattermostAccessPluginStatus): Promise<void>;
  event(
    cr: MattermostAccessPlugin,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void>;
}

export interface ReconcileResult {
  requeueAfterMs?: number;
}

export interface ReconcilerOptions {
  reader: ClusterReader;
  writer: ClusterWriter;
  defaultImage: string;
  version: string;
  logger: Logger;
  now?: () => Date;
}

function secretValue(secret: V1Secret, key: string): string | undefined {
  // The key comes from the CR: a lookup must not find an inherited member such as `constructor`.
  const b64 = own(secret.data, key);
  if (b64 !== undefined) return Buffer.from(b64, 'base64').toString('utf8');
  return own(secret.stringData, key);
}

function keysOf(secret: V1Secret): string {
  const keys = Object.keys(secret.data ?? {});
  return keys.length ? `it has ${keys.map((k) => `'${k}'`).join(', ')}` : 'it is empty';
}

type SecretLookup = { ok: true; value: string } | { ok: false; missing: 'secret' | 'key'; message: string };

function lookup(
  reader: ClusterReader,
  ns: string,
  ref: SecretKeyRef,
  defaultKey: string,
  field: string,
  hint: string,
): SecretLookup {
  const key = ref.key ?? defaultKey;
  const secret = reader.getSecret(ns, ref.name);
  if (!secret) {
    return {
      ok: false,
      missing: 'secret',
      message: `Secret ${ns}/${ref.name} (${field}) does not exist; ${hint}`,
    };
  }
  const value = secretValue(secret, key);
  if (value === undefined) {
    return {
      ok: false,
      missing: 'key',
      message: `Secret ${ns}/${ref.name} has no key '${key}' (${keysOf(secret)}); set ${field}.key or add the key`,
    };
  }
  return { ok: true, value };
}

/** The hash of the desired object, written as an annotation (computed without that annotation). */
function withAppliedHash<T extends { metadata?: { annotations?: Record<string, string> } }>(obj: T): T {
  const hash = hashParts(JSON.stringify(obj));
  obj.metadata = {
    ...obj.metadata,
    annotations: { ...(obj.metadata?.annotations ?? {}), [APPLIED_HASH_ANNOTATION]: hash },
  };
  return obj;
}

/** True when the live object needs an apply: missing, applied from a different desired state, or drifted. */
export function needsApply(
  desired: { metadata?: { annotations?: Record<string, string> } },
  live: unknown,
): boolean {
  if (!live) return true;
  const liveHash = (live as { metadata?: { annotations?: Record<string, string> } }).metadata?.annotations?.[
    APPLIED_HASH_ANNOTATION
  ];
  return liveHash !== desired.metadata?.annotations?.[APPLIED_HASH_ANNOTATION] || !isSubset(desired, live);
}

export class Reconciler {
  private readonly now: () => Date;

  constructor(private readonly opts: ReconcilerOptions) {
    this.now = opts.now ?? (() => new Date());
  }

  /** Events are informative: a failure to record one is logged, not retried (except lost leadership). */
  private async emit(
    cr: MattermostAccessPlugin,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    try {
      await this.opts.writer.event(cr, type, reason, maskUrlCredentials(message));
    } catch (err) {
      if (err instanceof NotLeaderError) throw err;
      this.opts.logger.warn('Failed to record Event', {
        namespace: cr.metadata.namespace,
        name: cr.metadata.name,
        reason,
        error: (err as Error).message,
      });
    }
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const { reader, writer } = this.opts;
    const raw = reader.getPlugin(namespace, name);
    // Gone: the API server's garbage collector removes the children through their owner references.
    if (!raw || raw.metadata.deletionTimestamp) return {};
    const cr = withTbotDefaults(raw);
    const tbot = cr.spec.teleport?.tbot;
    const log = this.opts.logger.child({ namespace, name });
    const now = this.now();
    const generation = cr.metadata.generation ?? 0;
    const requeue: number[] = [];

    // 1. Configuration.
    let rendered: RenderedConfig | undefined;
    let config: CheckResult;
    try {
      const tbotProblems = validateTbot(raw);
      if (tbotProblems.length > 0) throw new SpecError(tbotProblems);
      rendered = renderConfig(cr.spec, cr);
      const warnings = configWarnings(cr.spec, cr.metadata.annotations);
      config = {
        ok: true,
        reason: REASON.ConfigRendered,
        message: [`Configuration rendered into ConfigMap ${namespace}/${name}`, ...warnings].join('; '),
      };
    } catch (err) {
      if (!(err instanceof SpecError)) throw err;
      config = {
        ok: false,
        reason: REASON.InvalidSpec,
        message: `Invalid spec: ${err.problems.join('; ')}; fix the MattermostAccessPlugin`,
      };
    }
    // Files the watcher reads only at start (token, CA bundle) enter the pod-template hash.
    let startFilesHash = '';
    if (rendered) {
      const token = lookup(
        reader,
        namespace,
        cr.spec.mattermost.tokenSecretRef,
        DEFAULT_TOKEN_KEY,
        'spec.mattermost.tokenSecretRef',
        `create it with the bot's access token: kubectl create secret generic ${cr.spec.mattermost.tokenSecretRef.name} -n ${namespace} --from-literal=${cr.spec.mattermost.tokenSecretRef.key ?? DEFAULT_TOKEN_KEY}=<token>`,
      );
      if (!token.ok) {
        config = {
          ok: false,
          reason: token.missing === 'secret' ? REASON.TokenSecretNotFound : REASON.TokenKeyNotFound,
          message: token.message,
        };
        requeue.push(MISSING_SECRET_RETRY_MS);
      } else {
        startFilesHash = hashParts(token.value.trim());
      }
      const caRef = cr.spec.mattermost.caSecretRef;
      if (caRef && config.ok) {
        const ca = lookup(
          reader,
          namespace,
          caRef,
          DEFAULT_CA_KEY,
          'spec.mattermost.caSecretRef',
          'create it with the PEM CA bundle of the Mattermost server',
        );
        if (ca.ok) {
          startFilesHash = hashParts(startFilesHash, ca.value);
        } else {
          config = {
            ok: false,
            reason: ca.missing === 'secret' ? REASON.CASecretNotFound : REASON.CAKeyNotFound,
            message: ca.message,
          };
          requeue.push(MISSING_SECRET_RETRY_MS);
        }
      }
    }

    // 1b. tbot's objects (only from a valid spec), before the identity is read: the first run creates
    // tbot's output Secret, which step 2 then reports on.
    let tbotStatus: CheckResult | undefined;
    if (tbot && rendered) {
      await this.applyTbot(cr, log);
    } else if (tbot) {
      tbotStatus = { ok: false, reason: REASON.TbotSpecInvalid, message: config.message };
    }

    // 2. Identity (parsed with the watcher's code, so both agree on what is valid).
    let identity: CheckResult;
    let expiresAt: Date | undefined;
    let clusterName: string | undefined;
    const idRef = cr.spec.teleport?.identitySecretRef;
    if (!idRef?.name) {
      identity = {
        ok: false,
        reason: REASON.IdentitySecretNotFound,
        message: 'spec.teleport.identitySecretRef.name is not set',
      };
    } else {
      const idKey = idRef.key ?? DEFAULT_IDENTITY_KEY;
      const found = lookup(
        reader,
        namespace,
        idRef,
        DEFAULT_IDENTITY_KEY,
        'spec.teleport.identitySecretRef',
        tbot
          ? `tbot (Deployment ${namespace}/${tbotNames(name).name}) writes it once it has joined Teleport; see the TbotReady condition`
          : 'tbot writes it once it has joined the cluster, or create it from `tctl auth sign --format=file` output',
      );
      const tbotPending = `Secret ${namespace}/${idRef.name} has no identity yet: tbot (Deployment ${namespace}/${tbotNames(name).name}) writes it once it has joined Teleport; see the TbotReady condition`;
      if (!found.ok) {
        identity = {
          ok: false,
          reason: found.missing === 'secret' ? REASON.IdentitySecretNotFound : REASON.IdentityKeyNotFound,
          message: tbot && found.missing === 'key' ? tbotPending : found.message,
        };
        requeue.push(MISSING_SECRET_RETRY_MS);
      } else if (!found.value.trim() && tbot) {
        identity = { ok: false, reason: REASON.IdentityKeyNotFound, message: tbotPending };
      } else {
        const source = `Secret ${namespace}/${idRef.name} key '${idKey}'`;
        // Without refresh_identity the watcher reads the identity only at start: a new one needs new pods.
        if (cr.spec.teleport.refreshIdentity === false)
          startFilesHash = hashParts(startFilesHash, found.value);
        try {
          const parsed = parseIdentity(found.value, source);
          expiresAt = parsed.notAfter;
          clusterName = parsed.clusterName;
          checkValidity(parsed, now);
          identity = renewalCheck(parsed, now, tbot ? tbotNames(name).name : undefined);
          // Come back when it enters the renewal margin and when it expires, so the status changes
          // without any event.
          const untilExpiry = parsed.notAfter.getTime() - now.getTime() + 1000;
          const untilMargin = untilExpiry - IDENTITY_RENEWAL_MARGIN_MS;
          requeue.push(Math.min(IDENTITY_RECHECK_MAX_MS, untilMargin > 0 ? untilMargin : untilExpiry));
        } catch (err) {
          if (!(err instanceof IdentityError)) throw err;
          const reason =
            err.problem === 'expired'
              ? REASON.IdentityExpired
              : err.problem === 'not-yet-valid'
                ? REASON.IdentityNotYetValid
                : REASON.IdentityMalformed;
          const hint =
            reason === REASON.IdentityExpired ? '; check that tbot is running and renewing it' : '';
          identity = { ok: false, reason, message: `${inSpecFieldNames(err.message)}${hint}` };
        }
      }
    }

    // 3. Children (only from a valid spec: an invalid one leaves the running watcher untouched).
    const previousHash = cr.status?.configHash;
    let configHash: string | undefined = previousHash;
    if (rendered) {
      configHash = hashParts(rendered.toml, startFilesHash);
      const cm = withAppliedHash(buildConfigMap(cr, rendered.toml, this.opts.version));
      if (needsApply(cm, reader.getConfigMap(namespace, name))) {
        await writer.applyConfigMap(cm);
        log.info('Applied ConfigMap');
      }
      const liveDeployment = reader.getDeployment(namespace, name);
      const desired = withAppliedHash(
        buildDeployment(cr, { defaultImage: this.opts.defaultImage, configHash, version: this.opts.version }),
      );
      if (needsApply(desired, liveDeployment)) {
        await writer.applyDeployment(desired);
        const liveHash = liveDeployment?.spec?.template?.metadata?.annotations?.[CONFIG_HASH_ANNOTATION];
        if (!liveDeployment) {
          log.info('Created Deployment');
          await this.emit(
            cr,
            'Normal',
            EVENT_REASON.DeploymentCreated,
            `Created Deployment ${namespace}/${name} running the watcher`,
          );
        } else if (liveHash !== configHash) {
          log.info('Updated Deployment with a new configuration', { config_hash: configHash });
          await this.emit(
            cr,
            'Normal',
            EVENT_REASON.ConfigChanged,
            `Configuration changed (hash ${configHash}); rolling Deployment ${namespace}/${name}`,
          );
        } else {
          log.info('Updated Deployment');
        }
      }
    }

    if (tbot && rendered) {
      tbotStatus = availability(reader.getDeployment(namespace, tbotNames(name).name), 'tbot');
    }
    if (rendered && reviewEnabled(cr.spec)) {
      const wait = await this.reconcileReview(cr, log);
      if (wait) requeue.push(wait);
    }

    // 4. Status, written only when it differs; Events for transitions.
    const status = computeStatus(
      cr.status,
      {
        generation,
        config,
        identity,
        ...(expiresAt ? { identityExpiresAt: expiresAt } : {}),
        ...(clusterName ? { identityClusterName: clusterName } : {}),
        deployment: reader.getDeployment(namespace, name),
        deploymentName: name,
        ...(tbotStatus ? { tbot: tbotStatus } : {}),
        ...(configHash ? { configHash } : {}),
        ...(rendered
          ? { recipientCount: rendered.recipientCount }
          : cr.status?.recipientCount !== undefined
            ? { recipientCount: cr.status.recipientCount }
            : {}),
      },
      now,
    );
    if (!jsonEqual(status, cr.status ?? {})) {
      const previous = cr.status?.conditions ?? [];
      await writer.applyStatus(cr, status);
      // Ready repeats the failing condition's message: one Event (and one log line) per message.
      const told = new Set<string>();
      for (const type of [
        CONDITION.ConfigValid,
        CONDITION.IdentityValid,
        CONDITION.TbotReady,
        CONDITION.Ready,
      ]) {
        const before = findCondition(previous, type);
        const after = findCondition(status.conditions, type);
        if (!after || (before?.status === after.status && before.reason === after.reason)) continue;
        if (!before && after.status === 'True' && type !== CONDITION.Ready) continue;
        if (told.has(after.message)) continue;
        told.add(after.message);
        const healthy = after.status === 'True';
        if (healthy) log.info(after.message, { condition: type, reason: after.reason });
        else log.warn(after.message, { condition: type, reason: after.reason });
        await this.emit(cr, healthy ? 'Normal' : 'Warning', after.reason, after.message);
      }
    }
    const positive = requeue.filter((ms) => ms > 0);
    return positive.length ? { requeueAfterMs: Math.min(...positive) } : {};
  }
  /**
   * spec.review: the callback Service, and the signing key. A key Secret the spec names must exist (the
   * pods wait for it); without one the operator creates `<name>-review-key` once with a random key.
   * Returns a requeue delay while the named Secret is missing.
   */
  private async reconcileReview(cr: MattermostAccessPlugin, log: Logger): Promise<number | undefined> {
    const { reader, writer } = this.opts;
    const namespace = cr.metadata.namespace;
    const ref = reviewKeyRef(cr);
    let wait: number | undefined;
    if (!reader.getSecret(namespace, ref.name)) {
      if (ref.generated && writer.createSecret) {
        if (await writer.createSecret(buildReviewKeySecret(cr, this.opts.version))) {
          log.info('Generated the review signing key', { secret: ref.name });
          await this.emit(
            cr,
            'Normal',
            EVENT_REASON.ReviewKeyGenerated,
            `Generated Secret ${namespace}/${ref.name} with the review buttons' signing key`,
          );
        }
      } else if (!ref.generated) {
        log.warn('The review signing key Secret is missing; the watcher pod waits for it', {
          secret: ref.name,
        });
        wait = MISSING_SECRET_RETRY_MS;
      }
    }
    const svc = withAppliedHash(buildReviewService(cr, this.opts.version));
    if (writer.applyService && needsApply(svc, reader.getService?.(namespace, svc.metadata!.name!))) {
      await writer.applyService(svc);
      log.info('Applied the review callback Service', { service: svc.metadata!.name });
    }
    return wait;
  }

  /** Applies what differs of tbot's objects (same skip rule as the watcher's children). */
  private async applyTbot(cr: MattermostAccessPlugin, log: Logger): Promise<void> {
    const { reader, writer } = this.opts;
    if (!reader.getObject || !writer.applyObject) throw new Error('this cluster client cannot run tbot');
    const ns = cr.metadata.namespace;
    const objects = buildTbotObjects(cr, cr.spec.teleport.tbot!, this.opts.version);
    for (const [kind, obj] of genericTbotObjects(objects)) {
      const desired = withAppliedHash(obj);
      // Of the output Secret only the metadata is ours (and a Secret cache may hold only metadata).
      const compared = kind === 'Secret' ? { metadata: desired.metadata } : desired;
      if (needsApply(compared, reader.getObject(kind, ns, obj.metadata!.name!))) {
        await writer.applyObject(kind, desired);
        log.info(`Applied tbot ${kind}`, { object: obj.metadata!.name });
      }
    }
    const cm = withAppliedHash(objects.configMap);
    if (needsApply(cm, reader.getConfigMap(ns, cm.metadata!.name!))) {
      await writer.applyConfigMap(cm);
      log.info('Applied tbot ConfigMap');
    }
    const deployment = withAppliedHash(objects.deployment);
    if (needsApply(deployment, reader.getDeployment(ns, deployment.metadata!.name!))) {
      await writer.applyDeployment(deployment);
      log.info('Applied tbot Deployment');
    }
  }
}

/**
 * IdentityValid for an identity that is valid now: False (IdentityNotRenewed) once it is within
 * IDENTITY_RENEWAL_MARGIN_MS of its expiry, since whatever renews it (tbot every 20 minutes) has stopped.
 */
export function renewalCheck(
  parsed: { username: string; clusterName: string; notAfter: Date },
  now: Date,
  tbotDeployment: string | undefined,
): CheckResult {
  const left = parsed.notAfter.getTime() - now.getTime();
  if (left >= IDENTITY_RENEWAL_MARGIN_MS) {
    return {
      ok: true,
      reason: REASON.IdentityValid,
      message: `Identity of ${parsed.username} for cluster ${parsed.clusterName} is valid until ${parsed.notAfter.toISOString()}`,
    };
  }
  const advice = tbotDeployment
    ? `check tbot: kubectl logs deployment/${tbotDeployment}`
    : 'check that tbot is running and renewing it, or write a new identity (`tctl auth sign --format=file`)';
  return {
    ok: false,
    reason: REASON.IdentityNotRenewed,
    message: `Identity of ${parsed.username} for cluster ${parsed.clusterName} expires at ${parsed.notAfter.toISOString()} (in ${Math.ceil(left / 60_000)} min) and has not been renewed; ${advice}`,
  };
}

// tbot beside the watcher (spec.teleport.tbot): the pure builders of what the operator runs for it, and
// the spec defaults it implies. tbot joins Teleport with its ServiceAccount (kubernetes join method) and
// writes the watcher's identity to the Secret <name>-tbot-out, key `identity`; the watcher mounts that
// Secret as a directory and re-reads it, so renewals never restart anything.
//
// Least privilege for tbot: its Role allows get/update/patch on that one Secret name only. RBAC cannot
// restrict `create` by resourceNames (the name is not known at authorization time), so rather than letting
// tbot create any Secret in the namespace, the operator creates the (empty) Secret itself and tbot never
// needs `create`: tbot reads it, then server-side applies its data onto it (field manager "tbot").
// The cost is on the operator's side: Kubernetes only lets it create that Role if it holds the same rights,
// so the operator's own RBAC includes get/update/patch/create on Secrets (operator/controller/rbac).
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Role,
  V1RoleBinding,
  V1Secret,
  V1ServiceAccount,
} from '@kubernetes/client-node';
import { commonLabels, imageTag, ownerReference } from './build.js';
import {
  COMPONENT_TBOT,
  CONFIG_HASH_ANNOTATION,
  DEFAULT_IDENTITY_KEY,
  DEFAULT_TBOT_IMAGE,
  DEFAULT_TBOT_JOIN_METHOD,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_NAME,
  TBOT_APP_NAME,
  TBOT_CONTAINER,
  TBOT_OUTPUT_SUFFIX,
  TBOT_SUFFIX,
  WATCHER_UID,
} from './defaults.js';
import { hashParts } from './render.js';
import {
  renderTbotConfig,
  TBOT_CONFIG_DIR,
  TBOT_CONFIG_FILE,
  TBOT_DIAG_PORT,
  TBOT_JOIN_TOKEN_DIR,
  TBOT_JOIN_TOKEN_FILE,
} from './tbot-config.js';
import type { MattermostAccessPlugin, TbotSpec } from './types.js';

/** Names of everything run for a CR's tbot. */
export function tbotNames(crName: string): { name: string; outputSecret: string } {
  return { name: `${crName}${TBOT_SUFFIX}`, outputSecret: `${crName}${TBOT_OUTPUT_SUFFIX}` };
}

/**
 * The CR with what spec.teleport.tbot implies filled in: the watcher connects to tbot's Teleport address
 * and reads tbot's output Secret. Without tbot the CR is returned unchanged.
 */
export function withTbotDefaults(cr: MattermostAccessPlugin): MattermostAccessPlugin {
  const tbot = cr.spec?.teleport?.tbot;
  if (!tbot) return cr;
  const { outputSecret } = tbotNames(cr.metadata.name);
  return {
    ...cr,
    spec: {
      ...cr.spec,
      teleport: {
        ...cr.spec.teleport,
        address: cr.spec.teleport.address || tbot.proxyAddress || tbot.authAddress || '',
        identitySecretRef: { name: outputSecret, key: DEFAULT_IDENTITY_KEY },
      },
    },
  };
}

/** What the API server's schema cannot check about spec.teleport.tbot (and everything, for old objects). */
export function validateTbot(cr: MattermostAccessPlugin): string[] {
  const tbot = cr.spec?.teleport?.tbot;
  if (!tbot) return [];
  const problems: string[] = [];
  if (!tbot.clusterName) {
    problems.push('spec.teleport.tbot.clusterName is missing; set the Teleport cluster name (`tctl status`)');
  }
  if (!!tbot.proxyAddress === !!tbot.authAddress) {
    problems.push(
      'spec.teleport.tbot needs exactly one of proxyAddress (e.g. example.teleport.sh:443) or authAddress (e.g. auth.teleport.svc:3025)',
    );
  }
  const ref = cr.spec.teleport.identitySecretRef;
  const { outputSecret } = tbotNames(cr.metadata.name);
  if (ref?.name && ref.name !== outputSecret) {
    problems.push(
      `spec.teleport.identitySecretRef names ${ref.name}, but with spec.teleport.tbot the identity is tbot's output Secret ${outputSecret}; remove identitySecretRef`,
    );
  }
  return problems;
}

function tbotSelector(cr: MattermostAccessPlugin): Record<string, string> {
  return { [LABEL_NAME]: TBOT_APP_NAME, [LABEL_INSTANCE]: cr.metadata.name };
}

function tbotLabels(cr: MattermostAccessPlugin, version: string): Record<string, string> {
  // commonLabels' name is the watcher's; tbot's own name keeps the watcher's selector off tbot's pods.
  return { ...commonLabels(cr, version), ...tbotSelector(cr), [LABEL_COMPONENT]: COMPONENT_TBOT };
}

function meta(cr: MattermostAccessPlugin, name: string, version: string) {
  return {
    name,
    namespace: cr.metadata.namespace,
    labels: tbotLabels(cr, version),
    ownerReferences: [ownerReference(cr)],
  };
}

export function tbotConfigText(cr: MattermostAccessPlugin, tbot: TbotSpec): string {
  const { outputSecret } = tbotNames(cr.metadata.name);
  return renderTbotConfig({
    joinMethod: tbot.joinMethod ?? DEFAULT_TBOT_JOIN_METHOD,
    token: tbot.token ?? tbotNames(cr.metadata.name).name,
    ...(tbot.proxyAddress ? { proxyAddress: tbot.proxyAddress } : { authAddress: tbot.authAddress ?? '' }),
    outputSecret,
  });
}

export interface TbotObjects {
  serviceAccount: V1ServiceAccount;
  role: V1Role;
  roleBinding: V1RoleBinding;
  outputSecret: V1Secret;
  configMap: V1ConfigMap;
  deployment: V1Deployment;
}

/** Everything the operator applies for a CR with spec.teleport.tbot, in the order it applies them. */
export function buildTbotObjects(cr: MattermostAccessPlugin, tbot: TbotSpec, version: string): TbotObjects {
  const { name, outputSecret } = tbotNames(cr.metadata.name);
  const configText = tbotConfigText(cr, tbot);
  return {
    serviceAccount: {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: meta(cr, name, version),
    },
    role: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: meta(cr, name, version),
      // No `create`: it cannot be limited to one name, and the operator creates the Secret (see top).
      rules: [
        {
          apiGroups: [''],
          resources: ['secrets'],
          resourceNames: [outputSecret],
          verbs: ['get', 'update', 'patch'],
        },
      ],
    },
    roleBinding: {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: meta(cr, name, version),
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name },
      subjects: [{ kind: 'ServiceAccount', name, namespace: cr.metadata.namespace }],
    },
    // Only metadata and type: the data is tbot's (its own field manager), never overwritten by us.
    outputSecret: {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: meta(cr, outputSecret, version),
      type: 'Opaque',
    },
    configMap: {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta(cr, name, version),
      data: { [TBOT_CONFIG_FILE]: configText },
    },
    deployment: buildTbotDeployment(cr, tbot, version, hashParts(configText)),
  };
}

function buildTbotDeployment(
  cr: MattermostAccessPlugin,
  tbot: TbotSpec,
  version: string,
  configHash: string,
): V1Deployment {
  const { name } = tbotNames(cr.metadata.name);
  const image = tbot.image ?? DEFAULT_TBOT_IMAGE;
  const kubernetesJoin = (tbot.joinMethod ?? DEFAULT_TBOT_JOIN_METHOD) === 'kubernetes';
  const podLabels = { ...tbotLabels(cr, imageTag(image)) };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(cr, name, version),
    spec: {
      // One writer per Secret, never two at once (tbot's documented requirement), hence Recreate.
      replicas: 1,
      revisionHistoryLimit: 3,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: tbotSelector(cr) },
      template: {
        metadata: { labels: podLabels, annotations: { [CONFIG_HASH_ANNOTATION]: configHash } },
        spec: {
          serviceAccountName: name,
          // tbot writes its Secret through the API with this ServiceAccount.
          automountServiceAccountToken: true,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: WATCHER_UID,
            runAsGroup: WATCHER_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: TBOT_CONTAINER,
              image,
              imagePullPolicy: 'IfNotPresent',
              args: ['start', '-c', `${TBOT_CONFIG_DIR}/${TBOT_CONFIG_FILE}`],
              env: [
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                ...(kubernetesJoin
                  ? [
                      {
                        name: 'KUBERNETES_TOKEN_PATH',
                        value: `${TBOT_JOIN_TOKEN_DIR}/${TBOT_JOIN_TOKEN_FILE}`,
                      },
                    ]
                  : []),
              ],
              ports: [{ name: 'diag', containerPort: TBOT_DIAG_PORT, protocol: 'TCP' }],
              livenessProbe: {
                httpGet: { path: '/livez', port: 'diag' },
                initialDelaySeconds: 10,
                periodSeconds: 20,
                failureThreshold: 3,
              },
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'diag' },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: [
                { name: 'config', mountPath: TBOT_CONFIG_DIR, readOnly: true },
                ...(kubernetesJoin
                  ? [{ name: 'join-sa-token', mountPath: TBOT_JOIN_TOKEN_DIR, readOnly: true }]
                  : []),
                { name: 'tmp', mountPath: '/tmp' },
              ],
            },
          ],
          volumes: [
            { name: 'config', configMap: { name } },
            ...(kubernetesJoin
              ? [
                  {
                    // A token for Teleport (audience: the cluster name), not for the Kubernetes API.
                    name: 'join-sa-token',
                    projected: {
                      sources: [
                        {
                          serviceAccountToken: {
                            path: TBOT_JOIN_TOKEN_FILE,
                            expirationSeconds: 600,
                            audience: tbot.clusterName,
                          },
                        },
                      ],
                    },
                  },
                ]
              : []),
            { name: 'tmp', emptyDir: { sizeLimit: '16Mi' } },
          ],
        },
      },
    },
  };
}

/** Kinds the operator applies for tbot beyond ConfigMaps and Deployments. */
export type TbotOwnedKind = 'ServiceAccount' | 'Role' | 'RoleBinding' | 'Secret';

/** The objects of TbotObjects applied through the generic reader/writer, with their kinds. */
export function genericTbotObjects(o: TbotObjects): Array<[TbotOwnedKind, KubernetesObject]> {
  return [
    ['ServiceAccount', o.serviceAccount],
    ['Role', o.role],
    ['RoleBinding', o.roleBinding],
    ['Secret', o.outputSecret],
  ];
}

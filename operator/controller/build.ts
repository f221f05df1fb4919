// Pure builders of the objects the operator owns: the ConfigMap with the rendered TOML and the watcher
// Deployment. Both are complete desired states for server-side apply (only the fields we manage).
import type { V1ConfigMap, V1Deployment, V1OwnerReference, V1Volume } from '@kubernetes/client-node';
import { watcherResources } from './resources.js';
import {
  API_VERSION,
  APP_NAME,
  CA_DIR,
  CA_FILE_NAME,
  COMPONENT_WATCHER,
  CONFIG_DIR,
  CONFIG_FILE_NAME,
  CONFIG_HASH_ANNOTATION,
  CONFIG_PATH,
  DEFAULT_CA_KEY,
  DEFAULT_IDENTITY_KEY,
  DEFAULT_TOKEN_KEY,
  IDENTITY_DIR,
  KIND,
  LABEL_COMPONENT,
  LABEL_INSTANCE,
  LABEL_MANAGED_BY,
  LABEL_NAME,
  LABEL_PART_OF,
  LABEL_VERSION,
  MANAGED_BY,
  TMP_DIR,
  TOKEN_DIR,
  TOKEN_FILE_NAME,
  VOLUME_MODE,
  WATCHER_CONTAINER,
  WATCHER_HTTP_PORT,
  WATCHER_UID,
} from './defaults.js';
import { REVIEW_PORT, reviewEnabled, reviewVolume } from './review.js';
import type { MattermostAccessPlugin } from './types.js';

/** The controller owner reference: GC deletes the children with the CR. */
export function ownerReference(cr: MattermostAccessPlugin): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cr.metadata.name,
    uid: cr.metadata.uid ?? '',
    controller: true,
    blockOwnerDeletion: true,
  };
}

/** Immutable selector labels (never user labels: a Deployment selector cannot change). */
export function selectorLabels(cr: MattermostAccessPlugin): Record<string, string> {
  return { [LABEL_NAME]: APP_NAME, [LABEL_INSTANCE]: cr.metadata.name };
}

/** The recommended app.kubernetes.io/* labels of every owned object. */
export function commonLabels(cr: MattermostAccessPlugin, version: string): Record<string, string> {
  return {
    ...selectorLabels(cr),
    [LABEL_COMPONENT]: COMPONENT_WATCHER,
    [LABEL_PART_OF]: APP_NAME,
    [LABEL_MANAGED_BY]: MANAGED_BY,
    // Label values are at most 63 characters of [A-Za-z0-9._-].
    [LABEL_VERSION]: version.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 63),
  };
}

export function buildConfigMap(cr: MattermostAccessPlugin, toml: string, version: string): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: cr.metadata.name,
      namespace: cr.metadata.namespace,
      labels: commonLabels(cr, version),
      ownerReferences: [ownerReference(cr)],
    },
    data: { [CONFIG_FILE_NAME]: toml },
  };
}

export interface DeploymentInputs {
  /** Image from --watcher-image, used unless spec.image is set. */
  defaultImage: string;
  /** Hash of everything that needs a restart to take effect (config text, token). */
  configHash: string;
  /** Operator version for the app.kubernetes.io/version label. */
  version: string;
}

/** Tag of an image reference, or 'latest' (for the version label). */
export function imageTag(image: string): string {
  const noDigest = image.split('@')[0] ?? image;
  const lastSlash = noDigest.lastIndexOf('/');
  const colon = noDigest.lastIndexOf(':');
  return colon > lastSlash ? noDigest.slice(colon + 1) : 'latest';
}

/**
 * Builds the watcher Deployment: one replica (two watchers would race on the same requests, hence
 * Recreate), `start -c <config>`, the identity Secret mounted as a directory (never subPath, so kubelet
 * refreshes tbot's renewals in place and refresh_identity picks them up), the token as a file, probes
 * on the watcher's /readyz and /healthz, and the restricted pod security profile.
 */
export function buildDeployment(cr: MattermostAccessPlugin, inputs: DeploymentInputs): V1Deployment {
  const spec = cr.spec;
  const image = spec.image ?? inputs.defaultImage;
  const labels = commonLabels(cr, imageTag(image));
  const volumes: V1Volume[] = [
    {
      name: 'config',
      configMap: { name: cr.metadata.name, defaultMode: VOLUME_MODE },
    },
    {
      name: 'teleport-identity',
      secret: {
        secretName: spec.teleport.identitySecretRef.name,
        defaultMode: VOLUME_MODE,
        items: [
          {
            key: spec.teleport.identitySecretRef.key ?? DEFAULT_IDENTITY_KEY,
            path: spec.teleport.identitySecretRef.key ?? DEFAULT_IDENTITY_KEY,
          },
        ],
      },
    },
    {
      name: 'mattermost-token',
      secret: {
        secretName: spec.mattermost.tokenSecretRef.name,
        defaultMode: VOLUME_MODE,
        items: [{ key: spec.mattermost.tokenSecretRef.key ?? DEFAULT_TOKEN_KEY, path: TOKEN_FILE_NAME }],
      },
    },
    { name: 'tmp', emptyDir: { sizeLimit: '64Mi' } },
  ];
  const mounts = [
    { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
    { name: 'teleport-identity', mountPath: IDENTITY_DIR, readOnly: true },
    { name: 'mattermost-token', mountPath: TOKEN_DIR, readOnly: true },
    { name: 'tmp', mountPath: TMP_DIR },
  ];
  if (reviewEnabled(spec)) {
    const { volume, mount } = reviewVolume(cr);
    volumes.push(volume);
    mounts.push(mount);
  }
  if (spec.mattermost.caSecretRef) {
    volumes.push({
      name: 'mattermost-ca',
      secret: {
        secretName: spec.mattermost.caSecretRef.name,
        defaultMode: VOLUME_MODE,
        items: [{ key: spec.mattermost.caSecretRef.key ?? DEFAULT_CA_KEY, path: CA_FILE_NAME }],
      },
    });
    mounts.push({ name: 'mattermost-ca', mountPath: CA_DIR, readOnly: true });
  }

  const sized = watcherResources(spec.resources);
  // User labels first so ours win; user annotations first so the hash cannot be overridden.
  const podLabels = { ...(spec.podLabels ?? {}), ...labels };
  const podAnnotations = { ...(spec.podAnnotations ?? {}), [CONFIG_HASH_ANNOTATION]: inputs.configHash };

  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: cr.metadata.name,
      namespace: cr.metadata.namespace,
      labels: commonLabels(cr, inputs.version),
      ownerReferences: [ownerReference(cr)],
    },
    spec: {
      replicas: 1,
      revisionHistoryLimit: 3,
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels(cr) },
      template: {
        metadata: { labels: podLabels, annotations: podAnnotations },
        spec: {
          automountServiceAccountToken: false,
          ...(spec.serviceAccountName ? { serviceAccountName: spec.serviceAccountName } : {}),
          ...(spec.priorityClassName ? { priorityClassName: spec.priorityClassName } : {}),
          ...(spec.nodeSelector ? { nodeSelector: spec.nodeSelector } : {}),
          ...(spec.tolerations ? { tolerations: spec.tolerations } : {}),
          ...(spec.affinity ? { affinity: spec.affinity } : {}),
          ...(spec.imagePullSecrets ? { imagePullSecrets: spec.imagePullSecrets } : {}),
          securityContext: {
            runAsNonRoot: true,
            runAsUser: WATCHER_UID,
            runAsGroup: WATCHER_UID,
            fsGroup: WATCHER_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: WATCHER_CONTAINER,
              image,
              imagePullPolicy: spec.imagePullPolicy ?? 'IfNotPresent',
              args: ['start', '-c', CONFIG_PATH],
              ports: [
                { name: 'http', containerPort: WATCHER_HTTP_PORT, protocol: 'TCP' },
                ...(reviewEnabled(spec)
                  ? [{ name: 'review', containerPort: REVIEW_PORT, protocol: 'TCP' }]
                  : []),
              ],
              readinessProbe: {
                httpGet: { path: '/readyz', port: 'http' },
                periodSeconds: 10,
                failureThreshold: 3,
              },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'http' },
                initialDelaySeconds: 10,
                periodSeconds: 20,
                failureThreshold: 3,
              },
              resources: sized.resources,
              ...(sized.env.length ? { env: sized.env } : {}),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ['ALL'] },
                seccompProfile: { type: 'RuntimeDefault' },
              },
              volumeMounts: mounts,
            },
          ],
          volumes,
        },
      },
    },
  };
}

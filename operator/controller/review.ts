// Native reviews (spec.review) on Kubernetes: the [review] TOML section, the callback Service in front of
// the watcher's review port, the signing-key Secret the operator generates when none is named (created
// once, never rotated behind the admin's back), and the volume that mounts it. Pure except the key.
import { crypto } from '../node-builtins.js';
import type { V1Secret, V1Service, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { commonLabels, ownerReference, selectorLabels } from './build.js';
import { LABEL_COMPONENT, VOLUME_MODE } from './defaults.js';
import type { MattermostAccessPlugin, MattermostAccessPluginSpec } from './types.js';

const { randomBytes } = crypto;

export const REVIEW_PORT = 8082;
export const REVIEW_PATH = '/mattermost/action';
export const REVIEW_KEY_DIR = '/var/lib/teleport/plugins/mattermost/review-key';
export const REVIEW_KEY_FILE = 'key';
export const DEFAULT_REVIEW_KEY = 'key';
export const COMPONENT_REVIEW = 'review-callback';

export const reviewEnabled = (spec: MattermostAccessPluginSpec): boolean => spec.review?.enabled === true;

/** `<name>-review`, within the 63 characters of a Service name. */
export function reviewServiceName(cr: MattermostAccessPlugin): string {
  return `${cr.metadata.name.slice(0, 56).replace(/-+$/, '')}-review`;
}

/** The Secret holding the key: the one named in spec.review.signingKeySecretRef, else `<name>-review-key`. */
export function reviewKeyRef(cr: MattermostAccessPlugin): { name: string; key: string; generated: boolean } {
  const ref = cr.spec.review?.signingKeySecretRef;
  if (ref?.name) return { name: ref.name, key: ref.key ?? DEFAULT_REVIEW_KEY, generated: false };
  return {
    name: `${cr.metadata.name.slice(0, 52).replace(/-+$/, '')}-review-key`,
    key: DEFAULT_REVIEW_KEY,
    generated: true,
  };
}

export function defaultCallbackUrl(cr: MattermostAccessPlugin): string {
  return `http://${reviewServiceName(cr)}.${cr.metadata.namespace}.svc:${REVIEW_PORT}${REVIEW_PATH}`;
}

/** The [review] table of the watcher's TOML. */
export function reviewToml(cr: MattermostAccessPlugin): Record<string, unknown> | undefined {
  const r = cr.spec.review;
  if (!r?.enabled) return undefined;
  return {
    enabled: true,
    listen_addr: `:${REVIEW_PORT}`,
    callback_url: r.callbackUrl ?? defaultCallbackUrl(cr),
    mattermost_user_id_trait: r.mattermostUserIdTrait ?? 'mattermost_user_id',
    allow_email_username_match: r.allowEmailUsernameMatch ?? false,
    signing_key_file: `${REVIEW_KEY_DIR}/${REVIEW_KEY_FILE}`,
  };
}

export function reviewVolume(cr: MattermostAccessPlugin): { volume: V1Volume; mount: V1VolumeMount } {
  const ref = reviewKeyRef(cr);
  return {
    volume: {
      name: 'review-key',
      secret: {
        secretName: ref.name,
        defaultMode: VOLUME_MODE,
        items: [{ key: ref.key, path: REVIEW_KEY_FILE }],
      },
    },
    mount: { name: 'review-key', mountPath: REVIEW_KEY_DIR, readOnly: true },
  };
}

/** Labels of the callback Service: selectable by NetworkPolicies (component review-callback). */
function reviewLabels(cr: MattermostAccessPlugin, version: string): Record<string, string> {
  return { ...commonLabels(cr, version), [LABEL_COMPONENT]: COMPONENT_REVIEW };
}

export function buildReviewService(cr: MattermostAccessPlugin, version: string): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: reviewServiceName(cr),
      namespace: cr.metadata.namespace,
      labels: reviewLabels(cr, version),
      ownerReferences: [ownerReference(cr)],
    },
    spec: {
      type: 'ClusterIP',
      selector: selectorLabels(cr),
      ports: [{ name: 'review', port: REVIEW_PORT, targetPort: 'review', protocol: 'TCP' }],
    },
  };
}

/** A new random key (48 bytes, base64): only created when the Secret does not exist yet. */
export function buildReviewKeySecret(cr: MattermostAccessPlugin, version: string): V1Secret {
  const ref = reviewKeyRef(cr);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: ref.name,
      namespace: cr.metadata.namespace,
      labels: reviewLabels(cr, version),
      ownerReferences: [ownerReference(cr)],
    },
    data: { [ref.key]: Buffer.from(randomBytes(48).toString('base64')).toString('base64') },
  };
}

// The MattermostAccessPlugin resource as TypeScript types (crds/mattermostaccessplugins.yaml is the
// source of truth; schema defaults are applied by the API server, so optional here means "may be absent
// on an object created before a default existed").
import type {
  KubernetesObject,
  V1Affinity,
  V1LocalObjectReference,
  V1ResourceRequirements,
  V1Toleration,
} from '@kubernetes/client-node';
import type { Condition } from './conditions.js';

export interface SecretKeyRef {
  name: string;
  key?: string;
}

/** spec.teleport.tbot: the operator runs tbot beside the watcher to keep the identity Secret fresh. */
export interface TbotSpec {
  clusterName: string;
  joinMethod?: string;
  /** Name of the join token in Teleport (default <name>-tbot). */
  token?: string;
  proxyAddress?: string;
  authAddress?: string;
  image?: string;
}

export interface MattermostAccessPluginSpec {
  teleport: {
    /** Required unless tbot is set (then it defaults to tbot's proxy or auth address). */
    address: string;
    /** Required unless tbot is set (then it is tbot's output Secret <name>-tbot-out, key identity). */
    identitySecretRef: SecretKeyRef;
    tbot?: TbotSpec;
    refreshIdentity?: boolean;
    refreshIdentityInterval?: string;
  };
  mattermost: {
    url: string;
    tokenSecretRef: SecretKeyRef;
    caSecretRef?: SecretKeyRef;
    recipients?: string[];
    roleToRecipients?: Record<string, string[]>;
    notifyRequester?: boolean;
  };
  log?: { severity?: string; format?: string };
  /** Native Approve/Deny buttons (operator/review); off unless enabled. */
  review?: {
    enabled?: boolean;
    callbackUrl?: string;
    mattermostUserIdTrait?: string;
    allowEmailUsernameMatch?: boolean;
    signingKeySecretRef?: SecretKeyRef;
  };
  image?: string;
  imagePullPolicy?: string;
  imagePullSecrets?: V1LocalObjectReference[];
  resources?: V1ResourceRequirements;
  nodeSelector?: Record<string, string>;
  tolerations?: V1Toleration[];
  affinity?: V1Affinity;
  podAnnotations?: Record<string, string>;
  podLabels?: Record<string, string>;
  serviceAccountName?: string;
  priorityClassName?: string;
}

export interface MattermostAccessPluginStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  identityExpiresAt?: string;
  identityClusterName?: string;
  deploymentName?: string;
  configMapName?: string;
  configHash?: string;
  recipientCount?: number;
}

export interface MattermostAccessPlugin extends KubernetesObject {
  metadata: NonNullable<KubernetesObject['metadata']> & { name: string; namespace: string };
  spec: MattermostAccessPluginSpec;
  status?: MattermostAccessPluginStatus;
}

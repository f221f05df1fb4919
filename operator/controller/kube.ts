// The operator's writes to the Kubernetes API, all through this one module so they are counted (the
// api_writes_total metric) and refused when this replica is not the leader.
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import type { Counter } from '../observability/metrics.js';
import { API_VERSION, EVENT_COMPONENT, FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION } from './defaults.js';
import { rfc3339 } from './conditions.js';
import { NotLeaderError } from './errors.js';
import type { ClusterWriter } from './reconciler.js';
import type { TbotOwnedKind } from './tbot.js';
import type { MattermostAccessPlugin, MattermostAccessPluginStatus } from './types.js';

import type { KubeApi } from './kubeapi.js';

/** Server-side apply: the body is JSON (valid YAML), one field manager, conflicts forced. */
const SSA = {
  contentType: 'application/apply-patch+yaml',
  query: { fieldManager: FIELD_MANAGER, force: true },
};

export interface KubeWriterHooks {
  isLeader(): boolean;
  writes: Counter<'resource' | 'verb'>;
  /** Lets the caches see our own writes before the watch delivers them. */
  observeConfigMap(cm: V1ConfigMap): void;
  observeDeployment(d: V1Deployment): void;
  observeService?(s: V1Service): void;
  observeSecret?(s: V1Secret): void;
  observePlugin(cr: MattermostAccessPlugin): void;
  observeObject(kind: TbotOwnedKind, obj: KubernetesObject): void;
}

const TBOT_KIND_PATHS: Record<TbotOwnedKind, { resource: string; base: string }> = {
  ServiceAccount: { resource: 'serviceaccounts', base: '/api/v1' },
  Secret: { resource: 'secrets', base: '/api/v1' },
  Role: { resource: 'roles', base: '/apis/rbac.authorization.k8s.io/v1' },
  RoleBinding: { resource: 'rolebindings', base: '/apis/rbac.authorization.k8s.io/v1' },
};

export class KubeClusterWriter implements ClusterWriter {
  constructor(
    private readonly api: KubeApi,
    private readonly hooks: KubeWriterHooks,
  ) {}

  private guard(resource: string, verb: string): void {
    if (!this.hooks.isLeader()) throw new NotLeaderError();
    this.hooks.writes.inc({ resource, verb });
  }

  async applyConfigMap(cm: V1ConfigMap): Promise<void> {
    this.guard('configmaps', 'apply');
    const live = await this.api.request<V1ConfigMap>(
      'PATCH',
      `/api/v1/namespaces/${cm.metadata!.namespace!}/configmaps/${cm.metadata!.name!}`,
      { ...SSA, body: cm },
    );
    this.hooks.observeConfigMap(live);
  }

  async applyDeployment(d: V1Deployment): Promise<void> {
    this.guard('deployments', 'apply');
    const live = await this.api.request<V1Deployment>(
      'PATCH',
      `/apis/apps/v1/namespaces/${d.metadata!.namespace!}/deployments/${d.metadata!.name!}`,
      { ...SSA, body: d },
    );
    this.hooks.observeDeployment(live);
  }

  /** Server-side applies one of tbot's objects (ServiceAccount, Role, RoleBinding, its output Secret). */
  async applyObject(kind: TbotOwnedKind, obj: KubernetesObject): Promise<void> {
    const { resource, base } = TBOT_KIND_PATHS[kind];
    this.guard(resource, 'apply');
    const live = await this.api.request<KubernetesObject>(
      'PATCH',
      `${base}/namespaces/${obj.metadata!.namespace!}/${resource}/${obj.metadata!.name!}`,
      { ...SSA, body: obj },
    );
    this.hooks.observeObject(kind, live);
  }

  async applyService(svc: V1Service): Promise<void> {
    this.guard('services', 'apply');
    const live = await this.api.request<V1Service>(
      'PATCH',
      `/api/v1/namespaces/${svc.metadata!.namespace!}/services/${svc.metadata!.name!}`,
      { ...SSA, body: svc },
    );
    this.hooks.observeService?.(live);
  }

  /** Creates a Secret; false when it already exists (another replica or an earlier attempt made it). */
  async createSecret(secret: V1Secret): Promise<boolean> {
    this.guard('secrets', 'create');
    try {
      const live = await this.api.request<V1Secret>(
        'POST',
        `/api/v1/namespaces/${secret.metadata!.namespace!}/secrets`,
        { query: { fieldManager: FIELD_MANAGER }, body: { apiVersion: 'v1', kind: 'Secret', ...secret } },
      );
      this.hooks.observeSecret?.(live);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 409) return false;
      throw err;
    }
  }

  async applyStatus(cr: MattermostAccessPlugin, status: MattermostAccessPluginStatus): Promise<void> {
    this.guard(`${PLURAL}/status`, 'apply');
    const live = await this.api.request<MattermostAccessPlugin>(
      'PATCH',
      `/apis/${GROUP}/${VERSION}/namespaces/${cr.metadata.namespace}/${PLURAL}/${cr.metadata.name}/status`,
      {
        ...SSA,
        body: {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: cr.metadata.name, namespace: cr.metadata.namespace },
          status,
        },
      },
    );
    this.hooks.observePlugin(live);
  }

  async event(
    cr: MattermostAccessPlugin,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): Promise<void> {
    this.guard('events', 'create');
    const now = new Date();
    await this.api.request('POST', `/api/v1/namespaces/${cr.metadata.namespace}/events`, {
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { generateName: `${cr.metadata.name}.`, namespace: cr.metadata.namespace },
        involvedObject: {
          apiVersion: API_VERSION,
          kind: KIND,
          name: cr.metadata.name,
          namespace: cr.metadata.namespace,
          uid: cr.metadata.uid,
          resourceVersion: cr.metadata.resourceVersion,
        },
        type,
        reason,
        message: message.slice(0, 1024),
        source: { component: EVENT_COMPONENT },
        firstTimestamp: rfc3339(now),
        lastTimestamp: rfc3339(now),
        count: 1,
      },
    });
  }
}

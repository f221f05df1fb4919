// The operator's writes to the Kubernetes API, all through this one module so they are counted (the
// api_writes_total metric) and refused when this replica is not the leader.
import type { V1ConfigMap, V1Deployment } from '@kubernetes/client-node';
import type { Counter } from 'prom-client';
import { API_VERSION, EVENT_COMPONENT, FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION } from './defaults.js';
import { rfc3339 } from './conditions.js';
import { NotLeaderError } from './errors.js';
import type { ClusterWriter } from './reconciler.js';
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
  observePlugin(cr: MattermostAccessPlugin): void;
}

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

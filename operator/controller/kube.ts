// The operator's writes to the Kubernetes API, all through this one module so they are counted (the
// api_writes_total metric) and refused when this replica is not the leader.
import {
  AppsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Deployment,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import type { Counter } from 'prom-client';
import { API_VERSION, EVENT_COMPONENT, FIELD_MANAGER, GROUP, KIND, PLURAL, VERSION } from './defaults.js';
import { NotLeaderError } from './errors.js';
import type { ClusterWriter } from './reconciler.js';
import type { MattermostAccessPlugin, MattermostAccessPluginStatus } from './types.js';

const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

export interface KubeWriterHooks {
  isLeader(): boolean;
  writes: Counter<'resource' | 'verb'>;
  /** Lets the caches see our own writes before the watch delivers them. */
  observeConfigMap(cm: V1ConfigMap): void;
  observeDeployment(d: V1Deployment): void;
  observeService?(s: V1Service): void;
  observeSecret?(s: V1Secret): void;
  observePlugin(cr: MattermostAccessPlugin): void;
}

export class KubeClusterWriter implements ClusterWriter {
  private readonly core: CoreV1Api;
  private readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(
    kc: KubeConfig,
    private readonly hooks: KubeWriterHooks,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.apps = kc.makeApiClient(AppsV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  private guard(resource: string, verb: string): void {
    if (!this.hooks.isLeader()) throw new NotLeaderError();
    this.hooks.writes.inc({ resource, verb });
  }

  async applyConfigMap(cm: V1ConfigMap): Promise<void> {
    this.guard('configmaps', 'apply');
    const live = await this.core.patchNamespacedConfigMap(
      {
        name: cm.metadata!.name!,
        namespace: cm.metadata!.namespace!,
        body: cm,
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      SSA,
    );
    this.hooks.observeConfigMap(live);
  }

  async applyDeployment(d: V1Deployment): Promise<void> {
    this.guard('deployments', 'apply');
    const live = await this.apps.patchNamespacedDeployment(
      {
        name: d.metadata!.name!,
        namespace: d.metadata!.namespace!,
        body: d,
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      SSA,
    );
    this.hooks.observeDeployment(live);
  }

  async applyService(svc: V1Service): Promise<void> {
    this.guard('services', 'apply');
    const live = await this.core.patchNamespacedService(
      {
        name: svc.metadata!.name!,
        namespace: svc.metadata!.namespace!,
        body: svc,
        fieldManager: FIELD_MANAGER,
        force: true,
      },
      SSA,
    );
    this.hooks.observeService?.(live);
  }

  /** Creates a Secret; false when it already exists (another replica or an earlier attempt made it). */
  async createSecret(secret: V1Secret): Promise<boolean> {
    this.guard('secrets', 'create');
    try {
      const live = await this.core.createNamespacedSecret({
        namespace: secret.metadata!.namespace!,
        body: secret,
        fieldManager: FIELD_MANAGER,
      });
      this.hooks.observeSecret?.(live);
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 409) return false;
      throw err;
    }
  }

  async applyStatus(cr: MattermostAccessPlugin, status: MattermostAccessPluginStatus): Promise<void> {
    this.guard(`${PLURAL}/status`, 'apply');
    const live = (await this.custom.patchNamespacedCustomObjectStatus(
      {
        group: GROUP,
        version: VERSION,
        namespace: cr.metadata.namespace,
        plural: PLURAL,
        name: cr.metadata.name,
        fieldManager: FIELD_MANAGER,
        force: true,
        body: {
          apiVersion: API_VERSION,
          kind: KIND,
          metadata: { name: cr.metadata.name, namespace: cr.metadata.namespace },
          status,
        },
      },
      SSA,
    )) as MattermostAccessPlugin;
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
    await this.core.createNamespacedEvent({
      namespace: cr.metadata.namespace,
      body: {
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
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      },
    });
  }
}

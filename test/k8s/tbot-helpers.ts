// Checks shared by the chart's and the operator's tbot tests: what tbot's ServiceAccount may do, asked of
// the API server's own authorizer (SubjectAccessReview) and then tried for real, the way tbot writes its
// Secret (get, then a server-side apply of the data with field manager "tbot" and the resourceVersion read).
import {
  ApiException,
  AuthorizationV1Api,
  CoreV1Api,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { loadTestKubeConfig, serviceAccountKubeconfig } from './harness.js';

const SSA = setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);

/** Whether `serviceAccount` may `verb` Secrets (named `name`, or any when undefined) in `namespace`. */
export async function saCan(
  namespace: string,
  serviceAccount: string,
  verb: string,
  name?: string,
): Promise<boolean> {
  const authz = loadTestKubeConfig().makeApiClient(AuthorizationV1Api);
  const review = await authz.createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${namespace}:${serviceAccount}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${namespace}`, 'system:authenticated'],
        resourceAttributes: { namespace, verb, resource: 'secrets', ...(name ? { name } : {}) },
      },
    },
  });
  return review.status!.allowed;
}

/** Writes `identity` into `secret` as tbot does (get, then apply with the read resourceVersion). */
export async function writeAsTbot(kc: KubeConfig, namespace: string, secret: string, identity: string) {
  const core = kc.makeApiClient(CoreV1Api);
  const live = await core.readNamespacedSecret({ namespace, name: secret });
  await core.patchNamespacedSecret(
    {
      namespace,
      name: secret,
      fieldManager: 'tbot',
      body: {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secret, namespace, resourceVersion: live.metadata!.resourceVersion },
        type: 'Opaque',
        data: { identity: Buffer.from(identity).toString('base64') },
      },
    },
    SSA,
  );
}

/** What tbot's ServiceAccount may do with Secrets, as the authorizer answers (for the tests to assert). */
export async function tbotSecretAccess(
  namespace: string,
  serviceAccount: string,
  outputSecret: string,
  otherSecret: string,
): Promise<Record<string, boolean>> {
  const access: Record<string, boolean> = {};
  for (const verb of ['get', 'update', 'patch', 'delete']) {
    access[`${verb} ${outputSecret}`] = await saCan(namespace, serviceAccount, verb, outputSecret);
    access[`${verb} ${otherSecret}`] = await saCan(namespace, serviceAccount, verb, otherSecret);
  }
  for (const verb of ['create', 'list', 'watch', 'deletecollection']) {
    access[`${verb} any`] = await saCan(namespace, serviceAccount, verb);
  }
  return access;
}

/** The access tbot's ServiceAccount must have: get/update/patch of its output Secret, nothing else. */
export function onlyItsSecret(outputSecret: string, otherSecret: string): Record<string, boolean> {
  const expected: Record<string, boolean> = {};
  for (const verb of ['get', 'update', 'patch', 'delete']) {
    expected[`${verb} ${outputSecret}`] = verb !== 'delete';
    expected[`${verb} ${otherSecret}`] = false;
  }
  for (const verb of ['create', 'list', 'watch', 'deletecollection']) expected[`${verb} any`] = false;
  return expected;
}

/** A KubeConfig authenticated as `serviceAccount` (a TokenRequest token). */
export async function kubeConfigAs(namespace: string, serviceAccount: string): Promise<KubeConfig> {
  const kc = new KubeConfig();
  kc.loadFromFile(await serviceAccountKubeconfig(namespace, serviceAccount));
  return kc;
}

/** The HTTP status of a failed call (0 when it succeeded). */
export async function statusOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    if (err instanceof ApiException) return err.code;
    throw err;
  }
}

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

/**
 * Asserts that tbot's ServiceAccount can read and write its output Secret and nothing else: no other
 * Secret, no create, list or delete. Returns a KubeConfig authenticated as that ServiceAccount.
 */
export async function expectTbotWritesOnlyItsSecret(
  namespace: string,
  serviceAccount: string,
  outputSecret: string,
  otherSecret: string,
): Promise<KubeConfig> {
  for (const verb of ['get', 'update', 'patch']) {
    expect(await saCan(namespace, serviceAccount, verb, outputSecret)).toBe(true);
    expect(await saCan(namespace, serviceAccount, verb, otherSecret)).toBe(false);
  }
  for (const verb of ['create', 'list', 'watch', 'delete', 'deletecollection']) {
    expect(await saCan(namespace, serviceAccount, verb)).toBe(false);
  }
  expect(await saCan(namespace, serviceAccount, 'delete', outputSecret)).toBe(false);

  const kc = new KubeConfig();
  kc.loadFromFile(await serviceAccountKubeconfig(namespace, serviceAccount));
  await writeAsTbot(kc, namespace, outputSecret, 'probe');
  let denied: unknown;
  try {
    await writeAsTbot(kc, namespace, otherSecret, 'probe');
  } catch (err) {
    denied = err;
  }
  expect(denied).toBeInstanceOf(ApiException);
  expect((denied as ApiException<unknown>).code).toBe(403);
  return kc;
}

// The operator's kubeconfig lookup (KubeApi.create): what it loads, and the errors that replace a bare
// ENOENT and client-node's silent http://localhost:8080 fallback.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KubeApi, KubeConfigError } from '../../../operator/controller/kubeapi.js';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubeconfig-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function kubeconfig(file: string, server: string, extra = ''): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: ${server}
${extra}
users:
- name: u
  user:
    token: abc
contexts:
- name: test
  context: { cluster: test, user: u }
current-context: test
`,
  );
  return file;
}

const load = (env: NodeJS.ProcessEnv) =>
  KubeApi.create(undefined, { env, home: dir, serviceAccountDir: path.join(dir, 'no-service-account') });

describe('KubeApi.create without a KubeConfig: where the operator looks', () => {
  it('loads KUBECONFIG, skipping entries that do not exist as kubectl does', async () => {
    const file = kubeconfig(path.join(dir, 'kc.yaml'), 'https://127.0.0.1:6443');
    const api = await load({ KUBECONFIG: `${path.join(dir, 'missing.yaml')}:${file}` });
    expect(api.server).toBe('https://127.0.0.1:6443/');
  });

  it('loads ~/.kube/config when KUBECONFIG is not set', async () => {
    kubeconfig(path.join(dir, '.kube', 'config'), 'https://10.0.0.1');
    expect((await load({})).server).toBe('https://10.0.0.1/');
  });

  it('uses the in-cluster ServiceAccount when there is no kubeconfig', async () => {
    const sa = path.join(dir, 'sa');
    fs.mkdirSync(sa);
    fs.writeFileSync(path.join(sa, 'token'), 'token\n');
    fs.writeFileSync(path.join(sa, 'ca.crt'), '');
    const api = await KubeApi.create(undefined, {
      env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' },
      home: dir,
      serviceAccountDir: sa,
    });
    expect(api.server).toBe('https://[fd00::1]:6443/');
  });

  it('says so when KUBECONFIG names no existing file (not ENOENT)', async () => {
    await expect(load({ KUBECONFIG: '/nonexistent' })).rejects.toThrow(
      new KubeConfigError(
        'no kubeconfig: KUBECONFIG=/nonexistent names no existing file; set KUBECONFIG to a kubeconfig file or run in-cluster',
      ),
    );
  });

  it('says so when there is no kubeconfig and no in-cluster service account (no localhost:8080 fallback)', async () => {
    await expect(load({})).rejects.toThrow(
      /^no kubeconfig: set KUBECONFIG or run in-cluster \(there is no .*\.kube\/config/,
    );
    await expect(load({ KUBERNETES_SERVICE_HOST: '10.0.0.1' })).rejects.toThrow(
      /^no kubeconfig: set KUBECONFIG/,
    );
  });

  it('refuses a plain-HTTP cluster up front instead of failing every call', async () => {
    const file = kubeconfig(path.join(dir, 'kc.yaml'), 'http://127.0.0.1:8080');
    await expect(load({ KUBECONFIG: file })).rejects.toThrow(
      /cluster test is served over plain HTTP \(http:\/\/127\.0\.0\.1:8080\); use its https:\/\/ address/,
    );
    const insecure = kubeconfig(
      path.join(dir, 'insecure.yaml'),
      'http://127.0.0.1:8080',
      '    insecure-skip-tls-verify: true',
    );
    expect((await load({ KUBECONFIG: insecure })).server).toBe('http://127.0.0.1:8080/');
  });

  it('names an unreadable kubeconfig file, a missing current context, and a plugin user it cannot run', async () => {
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'clusters: [');
    await expect(load({ KUBECONFIG: bad })).rejects.toThrow(/^kubeconfig .*bad\.yaml cannot be read: /);
    const noContext = kubeconfig(path.join(dir, 'nc.yaml'), 'https://x');
    fs.writeFileSync(noContext, fs.readFileSync(noContext, 'utf8').replace('current-context: test', ''));
    await expect(load({ KUBECONFIG: noContext })).rejects.toThrow(
      /no current cluster \(current-context '' not found\); set current-context \(kubectl config use-context <name>\)/,
    );
    const exec = kubeconfig(path.join(dir, 'exec.yaml'), 'https://x');
    fs.writeFileSync(exec, fs.readFileSync(exec, 'utf8').replace('token: abc', 'exec: { command: aws }'));
    await expect(load({ KUBECONFIG: exec })).rejects.toThrow(/uses an exec or auth-provider plugin/);
  });
});

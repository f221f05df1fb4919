// Run by the pre-upgrade hook Job (templates/crd-upgrade-hook.yaml) with the chart's image, from /app so the
// image's node_modules resolve. Helm installs the CRD from crds/ on the first install but never changes it
// afterwards; this server-side-applies the chart's copy so `helm upgrade` brings new fields and columns.
// It only upgrades: a missing CRD (installed with --skip-crds, or removed on purpose) is left alone.
import { readFileSync } from 'node:fs';
import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy } from '@kubernetes/client-node';
import { parse } from 'yaml';

const FIELD_MANAGER = 'teleport-plugin-mattermost-chart';
const file = process.env.CRD_FILE;
if (!file) {
  console.error('CRD_FILE is not set: it must name the CRD manifest to apply');
  process.exit(2);
}
const crd = parse(readFileSync(file, 'utf8'));
const name = crd.metadata.name;
const kc = new KubeConfig();
kc.loadFromDefault();
const api = KubernetesObjectApi.makeApiClient(kc);
try {
  await api.read({ apiVersion: crd.apiVersion, kind: crd.kind, metadata: { name } });
} catch (err) {
  if (err instanceof ApiException && err.code === 404) {
    console.log(`CustomResourceDefinition ${name} is not installed; nothing to upgrade`);
    process.exit(0);
  }
  throw err;
}
const applied = await api.patch(
  crd,
  undefined,
  undefined,
  FIELD_MANAGER,
  true,
  PatchStrategy.ServerSideApply,
);
console.log(
  `Applied CustomResourceDefinition ${name} (resourceVersion ${applied.metadata?.resourceVersion})`,
);

// tbot's configuration file (`version: v2`) as a typed model, and the one tbot configuration this project
// renders: join Teleport with a delegated join method, keep tbot's own state in memory, and write one
// `identity` output to a Kubernetes Secret the watcher mounts.
//
// The model follows tbot's documented schema: "Machine & Workload Identity Configuration Reference"
// (gravitational/teleport docs/pages/reference/machine-workload-identity/configuration.mdx and
// diagnostics-service.mdx, Teleport 18.x/19.x). It covers the top-level keys, `onboarding`, the `memory`,
// `directory` and `kubernetes_secret` destinations and the `identity` output; other output types are accepted
// by type name only. Objects are strict, so a misspelt key fails the parse as tbot's own YAML decoding would
// leave it unused. Used by the operator's unit tests and the chart tests to check what we render.
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';

/** The join methods tbot documents for `onboarding.join_method`. */
export const TBOT_JOIN_METHODS = [
  'token',
  'azure',
  'azure_devops',
  'bitbucket',
  'bound_keypair',
  'circleci',
  'env0',
  'gcp',
  'github',
  'gitlab',
  'iam',
  'ec2',
  'kubernetes',
  'oracle',
  'spacelift',
  'terraform_cloud',
  'tpm',
] as const;

/** host:port, as tbot's auth_server / proxy_server expect. */
const hostPort = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?):[0-9]{1,5}$/, 'must be host:port');
/** tbot durations: a positive number with an m or h suffix (Go durations in practice). */
const duration = z.string().regex(/^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$/, 'must be a duration like 20m');

const memoryDestination = z.strictObject({ type: z.literal('memory') });
const directoryDestination = z.strictObject({
  type: z.literal('directory'),
  path: z.string().min(1),
  symlinks: z.enum(['try-secure', 'secure', 'insecure']).optional(),
  acls: z.enum(['try', 'off', 'required']).optional(),
  readers: z
    .array(z.union([z.strictObject({ user: z.string() }), z.strictObject({ group: z.string() })]))
    .optional(),
});
const kubernetesSecretDestination = z.strictObject({
  type: z.literal('kubernetes_secret'),
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Kubernetes Secret name'),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  kubeconfig_path: z.string().optional(),
  kubeconfig_context: z.string().optional(),
});
export const tbotDestination = z.discriminatedUnion('type', [
  memoryDestination,
  directoryDestination,
  kubernetesSecretDestination,
]);

/** The `identity` output (with the options common to outputs). */
const identityOutput = z.strictObject({
  type: z.literal('identity'),
  name: z.string().optional(),
  destination: tbotDestination,
  roles: z.array(z.string()).optional(),
  credential_ttl: duration.optional(),
  renewal_interval: duration.optional(),
  ssh_config: z.enum(['on', 'off']).optional(),
  allow_reissue: z.boolean().optional(),
});
/** Any other output/service type: only its type is checked here. */
const otherOutput = z.looseObject({
  type: z
    .string()
    .min(1)
    .refine((t) => t !== 'identity'),
});
export const tbotOutput = z.union([identityOutput, otherOutput]);

export const tbotOnboarding = z.strictObject({
  join_method: z.enum(TBOT_JOIN_METHODS),
  token: z.string().min(1),
  ca_pins: z.array(z.string()).optional(),
  ca_path: z.string().optional(),
  gitlab: z.strictObject({ token_env_var_name: z.string().optional() }).optional(),
  kubernetes: z.strictObject({ token_path: z.string().optional() }).optional(),
  bound_keypair: z
    .strictObject({
      registration_secret: z.string().optional(),
      registration_secret_path: z.string().optional(),
      static_key_path: z.string().optional(),
    })
    .optional(),
});

export const tbotConfigV2 = z
  .strictObject({
    version: z.literal('v2'),
    debug: z.boolean().optional(),
    auth_server: hostPort.optional(),
    proxy_server: hostPort.optional(),
    credential_ttl: duration.optional(),
    renewal_interval: duration.optional(),
    oneshot: z.boolean().optional(),
    diag_addr: z.string().optional(),
    onboarding: tbotOnboarding,
    storage: tbotDestination.optional(),
    services: z.array(tbotOutput).optional(),
    outputs: z.array(tbotOutput).optional(),
  })
  .refine((c) => !(c.auth_server && c.proxy_server), {
    message: 'set only one of auth_server and proxy_server',
  })
  .refine((c) => !!(c.auth_server || c.proxy_server), {
    message: 'one of auth_server or proxy_server is required',
  });

export type TbotConfigV2 = z.infer<typeof tbotConfigV2>;

/** Parses tbot configuration text (already YAML-decoded) against the model; throws with every problem. */
export function parseTbotConfig(doc: unknown): TbotConfigV2 {
  const result = tbotConfigV2.safeParse(doc);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new Error(`invalid tbot configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

/** Port of tbot's diagnostics endpoint (/livez, /readyz) inside the tbot pod. */
export const TBOT_DIAG_PORT = 3001;
/** Where the rendered configuration is mounted in the tbot pod. */
export const TBOT_CONFIG_DIR = '/config';
export const TBOT_CONFIG_FILE = 'tbot.yaml';
/** The projected ServiceAccount token tbot presents for the kubernetes join method. */
export const TBOT_JOIN_TOKEN_DIR = '/var/run/secrets/tokens';
export const TBOT_JOIN_TOKEN_FILE = 'join-sa-token';

export interface TbotSettings {
  joinMethod: string;
  token: string;
  proxyAddress?: string;
  authAddress?: string;
  /** The Secret the identity output is written to. */
  outputSecret: string;
}

/** The configuration tbot runs with (the same text as the chart's templates/tbot-config.yaml renders). */
export function tbotConfig(s: TbotSettings): TbotConfigV2 {
  return {
    version: 'v2',
    ...(s.proxyAddress ? { proxy_server: s.proxyAddress } : { auth_server: s.authAddress ?? '' }),
    onboarding: { join_method: s.joinMethod as TbotConfigV2['onboarding']['join_method'], token: s.token },
    // Nothing on disk: a restarted tbot joins again with its ServiceAccount token.
    storage: { type: 'memory' },
    diag_addr: `0.0.0.0:${TBOT_DIAG_PORT}`,
    // `outputs` rather than `services`: both are accepted by current tbot, `outputs` by every v2 release.
    outputs: [{ type: 'identity', destination: { type: 'kubernetes_secret', name: s.outputSecret } }],
  };
}

export function renderTbotConfig(s: TbotSettings): string {
  return toYaml(tbotConfig(s));
}

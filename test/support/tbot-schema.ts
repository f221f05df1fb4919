// tbot's configuration file (`version: v2`) as the tests' model of it: the test-side check of what the
// operator and the chart render (operator/controller/tbot-config.ts renders it; this module parses it).
//
// The model follows tbot's documented schema: "Machine & Workload Identity Configuration Reference"
// (gravitational/teleport docs/pages/reference/machine-workload-identity/configuration.mdx and
// diagnostics-service.mdx, Teleport 18.x/19.x). It covers the top-level keys, `onboarding`, the `memory`,
// `directory` and `kubernetes_secret` destinations and the `identity` output; other output types are accepted
// by type name only. Objects are strict, so a misspelt key fails the parse as tbot's own YAML decoding would
// leave it unused. It lives with the tests (zod is a development dependency): the operator renders this
// configuration but never parses one, and loading zod cost it ~6 MiB (issue 16).
import { z } from 'zod';
import { TBOT_JOIN_METHODS } from '../../operator/controller/tbot-config.js';

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

export type ParsedTbotConfig = z.infer<typeof tbotConfigV2>;

/** Parses tbot configuration text (already YAML-decoded) against the model; throws with every problem. */
export function parseTbotConfig(doc: unknown): ParsedTbotConfig {
  const result = tbotConfigV2.safeParse(doc);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(top)'}: ${i.message}`);
    throw new Error(`invalid tbot configuration: ${problems.join('; ')}`);
  }
  return result.data;
}

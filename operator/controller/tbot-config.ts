// tbot's configuration file (`version: v2`) as a typed model, and the one tbot configuration this project
// renders: join Teleport with a delegated join method, keep tbot's own state in memory, and write one
// `identity` output to a Kubernetes Secret the watcher mounts.
//
// The keys follow tbot's documented schema ("Machine & Workload Identity Configuration Reference"); the
// tests parse what we render against a strict model of it (test/support/tbot-schema.ts).
import { stringify as toYaml } from 'yaml';

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

/** The part of tbot's `version: v2` configuration this project renders (test/support/tbot-schema.ts checks it). */
export interface TbotConfigV2 {
  version: 'v2';
  auth_server?: string;
  proxy_server?: string;
  diag_addr?: string;
  onboarding: { join_method: (typeof TBOT_JOIN_METHODS)[number]; token: string };
  storage?: { type: 'memory' };
  outputs?: { type: 'identity'; destination: { type: 'kubernetes_secret'; name: string } }[];
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

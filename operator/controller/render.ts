// Pure: MattermostAccessPlugin spec -> the watcher's TOML configuration (upstream-compatible keys).
// The rendered text is checked with the watcher's own loader (parseConfigText), so whatever the
// operator puts in a ConfigMap is a file `teleport-mattermost start` accepts.
//
// Recipients: upstream replaces [role_to_recipients] with {"*": recipients} whenever
// mattermost.recipients is non-empty. So that a CR setting both means what it says, recipients are
// rendered as the "*" entry of [role_to_recipients] in that case (roles with their own list use it,
// every other role goes to `recipients`); with recipients only, they are rendered as mattermost.recipients.
import { crypto } from '../node-builtins.js';
import { stringify as toToml } from 'smol-toml';
import { dict } from '../config/dict.js';
import { ConfigError, isRecipient, parseConfigText } from '../config/load.js';
import {
  CHART_WARNINGS_ANNOTATION,
  CA_DIR,
  CA_FILE_NAME,
  CONFIG_PATH,
  DEFAULT_IDENTITY_KEY,
  IDENTITY_DIR,
  TOKEN_DIR,
  TOKEN_FILE_NAME,
  WATCHER_HTTP_PORT,
} from './defaults.js';
import { reviewToml } from './review.js';
import type { MattermostAccessPlugin, MattermostAccessPluginSpec } from './types.js';

const { createHash } = crypto;

/** SpecError lists every problem of a spec that the API server's schema could not catch. */
export class SpecError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'SpecError';
  }
}

export interface RenderedConfig {
  toml: string;
  /** Distinct recipients named anywhere in the configuration. */
  recipientCount: number;
}

/** The path of the identity file inside the pod (the Secret is mounted as a directory). */
export function identityFilePath(spec: MattermostAccessPluginSpec): string {
  return `${IDENTITY_DIR}/${spec.teleport.identitySecretRef.key ?? DEFAULT_IDENTITY_KEY}`;
}

/** Checks what the schema cannot express (and everything again, for objects stored under an older schema). */
export function validateSpec(spec: MattermostAccessPluginSpec | undefined): string[] {
  const problems: string[] = [];
  if (!spec || typeof spec !== 'object') return ['spec is missing'];
  if (!spec.teleport?.address) problems.push('spec.teleport.address is missing; set host:port of Teleport');
  if (!spec.teleport?.identitySecretRef?.name) {
    problems.push(
      'spec.teleport.identitySecretRef.name is missing; name the Secret tbot writes the identity to',
    );
  }
  if (!spec.mattermost?.url) problems.push('spec.mattermost.url is missing; set the Mattermost server URL');
  if (!spec.mattermost?.tokenSecretRef?.name) {
    problems.push('spec.mattermost.tokenSecretRef.name is missing; name the Secret holding the bot token');
  }
  (spec.mattermost?.recipients ?? []).forEach((r, i) => {
    if (!isRecipient(r.trim())) {
      problems.push(
        `spec.mattermost.recipients[${i}] must be "team/channel" or an email address, got '${r}'`,
      );
    }
  });
  for (const [role, list] of Object.entries(spec.mattermost?.roleToRecipients ?? {})) {
    if (!Array.isArray(list) || list.length === 0) {
      problems.push(`spec.mattermost.roleToRecipients["${role}"] must be a non-empty list of recipients`);
      continue;
    }
    list.forEach((r, i) => {
      if (!isRecipient(r.trim())) {
        problems.push(
          `spec.mattermost.roleToRecipients["${role}"][${i}] must be "team/channel" or an email address, got '${r}'`,
        );
      }
    });
  }
  if ((spec.mattermost?.recipients ?? []).length > 0 && spec.mattermost?.roleToRecipients?.['*']) {
    problems.push(
      'spec.mattermost.recipients and spec.mattermost.roleToRecipients["*"] both set the default recipients; keep one of them',
    );
  }
  return problems;
}

// The watcher's TOML settings as the MattermostAccessPlugin fields that produce them, so a status message
// names what the user edits (spec.teleport.refreshIdentity), not the rendered file's key (refresh_identity).
const SPEC_FIELD_OF_SETTING: [RegExp, string][] = [
  [/(?<![\w.])(?:teleport\.)?refresh_identity_interval\b/g, 'spec.teleport.refreshIdentityInterval'],
  [/(?<![\w.])refresh_identity = true\b/g, 'spec.teleport.refreshIdentity: true'],
  [/(?<![\w.])(?:teleport\.)?refresh_identity\b/g, 'spec.teleport.refreshIdentity'],
  [/(?<![\w.])teleport\.addr\b/g, 'spec.teleport.address'],
  [/(?<![\w.])teleport\.identity\b/g, 'spec.teleport.identitySecretRef'],
  [/(?<![\w.])mattermost\.ca_file\b/g, 'spec.mattermost.caSecretRef'],
  [/(?<![\w.])mattermost\.notify_requester\b/g, 'spec.mattermost.notifyRequester'],
  [/(?<![\w.])mattermost\.token\b/g, 'spec.mattermost.tokenSecretRef'],
  [/(?<![\w.])mattermost\.(url|recipients)\b/g, 'spec.mattermost.$1'],
  [/(?<![\w.])\[?role_to_recipients\]?(?![\w])/g, 'spec.mattermost.roleToRecipients'],
  [/(?<![\w.])log\.(severity|format)\b/g, 'spec.log.$1'],
];

/** A watcher message (config or identity problem) with its TOML setting names replaced by CR field names. */
export function inSpecFieldNames(message: string): string {
  return SPEC_FIELD_OF_SETTING.reduce((text, [setting, field]) => text.replace(setting, field), message);
}

/**
 * What works but is probably not what the user meant, for the ConfigValid message: no recipients at all,
 * and the values the Helm chart accepted but dropped (its chart-warnings annotation).
 */
export function configWarnings(
  spec: MattermostAccessPluginSpec,
  annotations: Record<string, string> = {},
): string[] {
  const warnings: string[] = [];
  const roles = Object.keys(spec.mattermost?.roleToRecipients ?? {});
  if ((spec.mattermost?.recipients ?? []).length === 0 && roles.length === 0) {
    warnings.push(
      'warning: spec.mattermost.recipients and roleToRecipients are empty, so requests reach only their suggested reviewers; add "team/channel" names or emails',
    );
  }
  for (const line of (annotations[CHART_WARNINGS_ANNOTATION] ?? '').split('\n')) {
    if (line.trim()) warnings.push(`warning (Helm values): ${line.trim()}`);
  }
  return warnings;
}

/** Renders the TOML text. Throws SpecError when the spec is invalid or the watcher would reject the result. */
export function renderConfig(
  spec: MattermostAccessPluginSpec,
  /** Name and namespace: the default review callback URL points at this plugin's Service. */
  where?: Pick<MattermostAccessPlugin, 'metadata'>,
): RenderedConfig {
  const problems = validateSpec(spec);
  if (problems.length > 0) throw new SpecError(problems);

  const recipients = (spec.mattermost.recipients ?? []).map((r) => r.trim());
  const roleMap = dict<string[]>();
  for (const [role, list] of Object.entries(spec.mattermost.roleToRecipients ?? {})) {
    roleMap[role] = list.map((r) => r.trim());
  }
  const hasRoles = Object.keys(roleMap).length > 0;
  if (hasRoles && recipients.length > 0) roleMap['*'] = recipients;

  const teleport: Record<string, unknown> = {
    addr: spec.teleport.address,
    identity: identityFilePath(spec),
    refresh_identity: spec.teleport.refreshIdentity ?? true,
  };
  if (spec.teleport.refreshIdentityInterval) {
    teleport.refresh_identity_interval = spec.teleport.refreshIdentityInterval;
  }
  const mattermost: Record<string, unknown> = {
    url: spec.mattermost.url,
    // A leading '/' makes the watcher read the token from that file (the mounted Secret).
    token: `${TOKEN_DIR}/${TOKEN_FILE_NAME}`,
  };
  if (!hasRoles && recipients.length > 0) mattermost.recipients = recipients;
  if (spec.mattermost.caSecretRef) mattermost.ca_file = `${CA_DIR}/${CA_FILE_NAME}`;
  if (spec.mattermost.notifyRequester) mattermost.notify_requester = true;

  const doc: Record<string, unknown> = { teleport, mattermost };
  if (hasRoles) doc.role_to_recipients = roleMap;
  doc.log = {
    output: 'stderr',
    severity: (spec.log?.severity ?? 'INFO').toUpperCase(),
    format: (spec.log?.format ?? 'text').toLowerCase(),
  };
  doc.http = { listen_addr: `:${WATCHER_HTTP_PORT}` };
  const review = where ? reviewToml({ ...where, spec } as MattermostAccessPlugin) : undefined;
  if (review) doc.review = review;

  const toml =
    '# Rendered by teleport-mattermost-operator from a MattermostAccessPlugin; edit the resource, not this file.\n' +
    toToml(doc) +
    '\n';
  try {
    parseConfigText(toml, CONFIG_PATH, { readTokenFile: false });
  } catch (err) {
    if (err instanceof ConfigError) {
      throw new SpecError(
        err.problems.map((p) => `the rendered configuration is invalid: ${inSpecFieldNames(p)}`),
      );
    }
    throw err;
  }
  const distinct = new Set([...recipients, ...Object.values(roleMap).flat()]);
  return { toml, recipientCount: distinct.size };
}

/** Short stable hash (hex) of the given parts; used for the pod-template annotation. */
export function hashParts(...parts: string[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 32);
}

// Which raw recipients (emails, `team/channel`) a request goes to, before any Mattermost lookup.
// Pure: role_to_recipients with the "*" fallback, valid suggested reviewers, and Access Monitoring
// Rules, which (as upstream) replace every other source when one of them matches.
import type { AccessMonitoringRule, AccessRequest } from '../teleport/api.js';
import { PLUGIN_NAME } from '../config/defaults.js';
import { own } from '../config/dict.js';
import { evaluateRuleCondition, type ConditionInput } from './amr.js';

export const WILDCARD_ROLE = '*';

/** Like Go's net/mail.ParseAddress(s).Address == s for the plain `local@domain` form upstream accepts. */
export function isEmail(text: string): boolean {
  return /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(text);
}

/** Upstream's GetRawRecipientsFor: each role's list (else the "*" list), then suggested reviewers, de-duplicated. */
export function rawRecipientsFor(
  roleToRecipients: Record<string, string[]>,
  roles: string[],
  suggestedReviewers: string[],
): string[] {
  const out: string[] = [];
  for (const role of roles) {
    const mine = own(roleToRecipients, role);
    out.push(...(mine && mine.length > 0 ? mine : (own(roleToRecipients, WILDCARD_ROLE) ?? [])));
  }
  out.push(...suggestedReviewers);
  return dedupe(out.map((r) => r.trim()).filter((r) => r !== ''));
}

export function dedupe<T>(items: T[], key: (t: T) => string = String): T[] {
  const seen = new Set<string>();
  return items.filter((item) => {
    const k = key(item);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** True when the rule is about access requests and notifies this plugin. */
export function ruleAppliesToPlugin(rule: AccessMonitoringRule, pluginName = PLUGIN_NAME): boolean {
  return rule.subjects.includes('access_request') && rule.notification.name === pluginName;
}

export interface RecipientChoice {
  recipients: string[];
  source: 'access_monitoring_rules' | 'role_to_recipients';
  /** Rules whose condition we could not parse or evaluate (skipped, as upstream), with why. */
  skippedRules: { name: string; reason: string }[];
  invalidSuggestedReviewers: string[];
}

export function conditionInput(request: AccessRequest, pluginName = PLUGIN_NAME): ConditionInput {
  return {
    'access_request.spec.roles': request.roles,
    'access_request.spec.suggested_reviewers': request.suggestedReviewers,
    'access_request.spec.system_annotations': request.systemAnnotations,
    'access_request.spec.user': request.user,
    'access_request.spec.request_reason': request.requestReason,
    'plugin.spec.name': pluginName,
  };
}

/** Chooses the raw recipients for a request. */
export function chooseRecipients(
  request: AccessRequest,
  roleToRecipients: Record<string, string[]>,
  rules: Iterable<AccessMonitoringRule>,
): RecipientChoice {
  const skippedRules: RecipientChoice['skippedRules'] = [];
  const fromRules: string[] = [];
  const input = conditionInput(request);
  for (const rule of rules) {
    if (!ruleAppliesToPlugin(rule)) continue;
    const result = evaluateRuleCondition(rule.condition, input);
    if (!result.ok) {
      skippedRules.push({ name: rule.name, reason: result.error });
      continue;
    }
    if (result.value) fromRules.push(...rule.notification.recipients);
  }
  const invalidSuggestedReviewers = request.suggestedReviewers.filter((r) => !isEmail(r));
  const ruleRecipients = dedupe(fromRules.map((r) => r.trim()).filter(Boolean));
  if (ruleRecipients.length > 0) {
    return {
      recipients: ruleRecipients,
      source: 'access_monitoring_rules',
      skippedRules,
      invalidSuggestedReviewers,
    };
  }
  const validSuggested = request.suggestedReviewers.filter(isEmail);
  return {
    recipients: rawRecipientsFor(roleToRecipients, request.roles, validSuggested),
    source: 'role_to_recipients',
    skippedRules,
    invalidSuggestedReviewers,
  };
}

/** Every recipient the configuration names (resolved at start to warn early). */
export function configuredRecipients(roleToRecipients: Record<string, string[]>): string[] {
  return dedupe(Object.values(roleToRecipients).flat());
}

// The Access Monitoring Rules that route requests to this plugin, as last listed or watched.
// A rule whose condition does not parse is kept (so it can be replaced) but warned about once.
import { PLUGIN_NAME } from '../config/defaults.js';
import type { Logger } from '../observability/logger.js';
import type { AccessMonitoringRule } from '../teleport/api.js';
import { checkRuleCondition } from './amr.js';
import { ruleAppliesToPlugin } from './recipients.js';

export class RuleStore {
  private readonly rules = new Map<string, AccessMonitoringRule>();
  private readonly warned = new Set<string>();

  constructor(private readonly logger: Logger) {}

  put(rule: AccessMonitoringRule): void {
    if (!ruleAppliesToPlugin(rule, PLUGIN_NAME)) {
      this.rules.delete(rule.name);
      return;
    }
    const problem = checkRuleCondition(rule.condition);
    const key = `${rule.name}\u0000${rule.condition}`;
    if (problem && !this.warned.has(key)) {
      this.warned.add(key);
      this.logger.warn('Failed to parse access monitoring notification rule; it will be skipped', {
        rule: rule.name,
        condition: rule.condition,
        error: problem,
      });
    }
    this.rules.set(rule.name, rule);
  }

  delete(name: string): void {
    this.rules.delete(name);
  }

  /** A fresh list from Teleport replaces everything known. */
  replaceAll(list: AccessMonitoringRule[]): void {
    this.rules.clear();
    for (const rule of list) this.put(rule);
  }

  values(): IterableIterator<AccessMonitoringRule> {
    return this.rules.values();
  }
}

// Shared by the config tests: the problems a ConfigError lists for a text that must not load.
import { expect } from '@jest/globals';
import { ConfigError, parseConfigText } from '../../../operator/config/load.js';

export function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'test.toml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

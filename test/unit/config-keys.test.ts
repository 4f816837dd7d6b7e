/**
 * A config file whose JSON holds a `__proto__` key (issue 10, the same class of fault as segments):
 * it is refused as an unknown setting, exit 78 naming it, instead of setting a prototype whose
 * values the schema then read as settings (`rate.perMinute` took effect, unknown keys inside it
 * passed unnoticed). A user field mapped to such a name is refused too (seed-users wrote through
 * it into Object.prototype).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deepMerge, loadConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/errors.js';

function load(text: string): unknown {
  const file = join(mkdtempSync(join(tmpdir(), 'mailwheel-config-keys-')), 'config.json');
  writeFileSync(file, text);
  try {
    return loadConfig({ file, env: {} }).config;
  } catch (err) {
    return err;
  }
}

describe('config: keys that mean something to a JavaScript object', () => {
  it.each([
    ['{"__proto__": {"bogus": 1}}', '__proto__'],
    ['{"rate": {"__proto__": {"perMinute": 1}}}', 'rate.__proto__'],
    ['{"http": {"__proto__": {"host": "0.0.0.0"}}}', 'http.__proto__'],
  ])('%s is refused naming %s', (text, field) => {
    const err = load(text);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
    expect((err as ConfigError).message).toContain('unknown setting');
  });

  it.each(['__proto__.x', 'profile.constructor', 'prototype'])('a user field mapped to %s is refused naming the field', (name) => {
    const err = load(JSON.stringify({ users: { fields: { name } } }));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe('users.fields.name');
  });

  it('deepMerge keeps a __proto__ key as an own key and never sets a prototype', () => {
    const merged = deepMerge({ a: { b: 1 } }, JSON.parse('{"__proto__": {"x": 1}, "a": {"__proto__": {"y": 2}}}') as Record<string, unknown>);
    expect(Object.getPrototypeOf(merged)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(merged['a'])).toBe(Object.prototype);
    expect(Object.hasOwn(merged, '__proto__')).toBe(true);
    expect((merged as Record<string, unknown>)['x']).toBeUndefined();
  });
});

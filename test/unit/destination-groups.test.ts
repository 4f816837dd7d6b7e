/**
 * The destination group of a recipient (core/destination-groups.ts): by the domain after the
 * last `@`, lower-cased; every other domain, and an address without one, in the default group.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_GROUP, destinationRouter, domainOf } from '../../src/core/destination-groups.js';

const route = destinationRouter([
  { name: 'gmail', domains: ['gmail.com', 'googlemail.com'] },
  { name: 'yahoo', domains: ['yahoo.com', 'ymail.com', 'rocketmail.com', 'aol.com'] },
]);

describe('destination groups', () => {
  it('routes each domain of a group to it, whatever the case of the address', () => {
    expect(route('ann@gmail.com')).toBe('gmail');
    expect(route('Bob@GoogleMail.COM')).toBe('gmail');
    expect(route('c@ymail.com')).toBe('yahoo');
    expect(route('d@AOL.com')).toBe('yahoo');
  });

  it('puts other domains, subdomains and addresses without a domain in the default group', () => {
    expect(route('e@outlook.com')).toBe(DEFAULT_GROUP);
    expect(route('f@mail.gmail.com')).toBe(DEFAULT_GROUP);
    expect(route('no-domain')).toBe(DEFAULT_GROUP);
    expect(route('')).toBe(DEFAULT_GROUP);
  });

  it('takes the domain after the last @ (a quoted local part may hold one) and drops a trailing dot', () => {
    expect(domainOf('"a@yahoo.com"@gmail.com')).toBe('gmail.com');
    expect(route('"a@yahoo.com"@gmail.com')).toBe('gmail');
    expect(domainOf('x@Gmail.com.')).toBe('gmail.com');
  });
});

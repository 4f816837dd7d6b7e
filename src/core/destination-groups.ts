/**
 * Which destination group a recipient belongs to (config `destinations.groups`): mailbox
 * providers throttle per destination, so mail to gmail.com and googlemail.com shares one set of
 * limits, the Yahoo family another, and so on. The group is chosen by the domain of the address
 * (lower-cased, after the LAST `@`: a quoted local part may hold an `@` of its own); a domain no
 * group names, or an address without a domain, is in the default group. Pure: the send path
 * (adapters/smtp/destination-queues.ts) keeps one queue per group and routes with this.
 */

/** The group of every recipient whose domain no configured group names. */
export const DEFAULT_GROUP = 'default';

export interface GroupDomains {
  name: string;
  domains: readonly string[];
}

/** The domain of `address`, lower-cased, without a trailing dot; '' when it has none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  if (at < 0) return '';
  return address.slice(at + 1).trim().toLowerCase().replace(/\.$/, '');
}

/** A router from recipient address to group name, built once (a Map lookup per message). */
export function destinationRouter(groups: readonly GroupDomains[]): (address: string) => string {
  const byDomain = new Map<string, string>();
  for (const g of groups) for (const d of g.domains) if (!byDomain.has(d.toLowerCase())) byDomain.set(d.toLowerCase(), g.name);
  return (address) => byDomain.get(domainOf(address)) ?? DEFAULT_GROUP;
}

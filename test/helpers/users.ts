/**
 * Builders of user documents for integration tests: users whose slots all fall in one chosen UTC
 * minute (in assorted timezones), and a catalogue of invalid documents, each with the field its
 * rejection must name.
 */
import { DateTime } from 'luxon';
import type { Document } from 'mongodb';

const ZONES = ['UTC', 'America/New_York', 'Europe/Berlin', 'Asia/Kolkata', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'America/Los_Angeles', 'Asia/Tokyo'];

/** `n` active users whose (single) slot fires exactly at `minuteUtc`, spread over several zones. */
export function usersDueAt(n: number, minuteUtc: string, prefix = 'u'): Document[] {
  const at = DateTime.fromISO(minuteUtc, { zone: 'utc' });
  return Array.from({ length: n }, (_, i) => {
    const zone = ZONES[i % ZONES.length] ?? 'UTC';
    const local = at.setZone(zone);
    return {
      _id: `${prefix}${String(i).padStart(6, '0')}`,
      email: `${prefix}${i}@example.test`,
      name: `User ${i}`,
      active: true,
      timezone: zone,
      emailTimes: [local.toFormat('HH:mm')],
      updatedAt: new Date(),
    };
  });
}

/** Invalid documents (active, so they reach validation) and the field each reason must name. */
export function invalidUsers(prefix = 'bad'): Array<{ doc: Document; field: string }> {
  const base = (i: number) => ({ _id: `${prefix}${i}`, email: `${prefix}${i}@example.test`, active: true, emailTimes: ['09:00'] });
  return [
    { doc: { ...base(0), email: 'not-an-address' }, field: 'email' },
    { doc: { ...base(1), email: 'x@example.test\r\nBcc: victim@example.test' }, field: 'email' },
    { doc: { ...base(2), timezone: 'Mars/Olympus_Mons' }, field: 'timezone' },
    { doc: { ...base(3), emailTimes: ['25:00'] }, field: 'emailTimes' },
    { doc: { ...base(4), emailTimes: ['9:00'] }, field: 'emailTimes' },
    { doc: { ...base(5), emailTimes: [] }, field: 'emailTimes' },
    { doc: { ...base(6), emailTimes: '09:00' }, field: 'emailTimes' },
    { doc: { ...base(7), name: 'Eve\r\nBcc: victim@example.test' }, field: 'name' },
    { doc: { ...base(8), emailDays: [7] }, field: 'emailDays' },
    { doc: { _id: `${prefix}9`, active: true, emailTimes: ['09:00'] }, field: 'email' },
  ];
}

/**
 * The settings the core reads, defined here so the core never imports the config module (the
 * layering rule in eslint.config.js forbids it). `config/schema.ts` is checked to produce them
 * (`satisfies z.ZodType<...>`), so the two cannot drift apart.
 */

/** Field names in the application's user documents (applications differ). */
export interface FieldMap {
  id: string;
  email: string;
  name: string;
  active: string;
  timezone: string;
  emailTimes: string;
  emailDays: string;
  unsubscribed: string;
  updatedAt: string;
}

/** One-click unsubscribe (RFC 8058): see config/schema.ts `unsubscribe` for each field. */
export interface UnsubscribeSettings {
  secret: string | null;
  baseUrl: string | null;
  allowInsecureBaseUrl: boolean;
  mailto: string;
  tokenTtlDays: number;
}

/**
 * Settings that are valid but probably not what the operator meant: each one would otherwise
 * send nothing, or send something other than intended, silently. `config check` prints them and
 * `start` logs them as warnings.
 */
import addressparser from 'nodemailer/lib/addressparser';
import { unsubscribeMode } from '../core/unsubscribe-token.js';
import { alignsWith } from './dkim-keys.js';
import { databaseName } from './load.js';
import type { Config } from './schema.js';

export interface ConfigWarning {
  /** The setting to look at, dotted (and its environment variable, if any). */
  setting: string;
  message: string;
}

/** True when the connection string's path names a database. */
export function uriNamesDatabase(uri: string): boolean {
  return /^mongodb(?:\+srv)?:\/\/[^/]+\/[^?]+/.test(uri);
}

/** Warnings that need no connection. */
export function configWarnings(config: Config): ConfigWarning[] {
  const out: ConfigWarning[] = [];
  if (!uriNamesDatabase(config.mongodb.uri)) {
    out.push({
      setting: 'mongodb.uri (MONGODB_URI)',
      message: `names no database, so users are read from ${databaseName(config.mongodb.uri)}.${config.users.collection}; put your database in the URI path (mongodb://host:27017/yourdb)`,
    });
  }
  const mode = unsubscribeMode(config.unsubscribe);
  if (mode.warn) out.push({ setting: 'unsubscribe.baseUrl', message: mode.reason });
  const dkim = dkimAlignmentWarning(config);
  if (dkim) out.push(dkim);
  return out;
}

/**
 * DMARC passes on DKIM only when a signature's d= aligns with the From domain (relaxed: equal,
 * or the From domain lies below it). Signatures that all miss it are valid, yet Gmail and Yahoo
 * treat the mail as unauthenticated bulk mail.
 */
function dkimAlignmentWarning(config: Config): ConfigWarning | undefined {
  if (config.dkim.length === 0) return undefined;
  const address = addressparser(config.smtp.from, { flatten: true })[0]?.address ?? '';
  const fromDomain = address.slice(address.lastIndexOf('@') + 1);
  if (fromDomain === '' || config.dkim.some((k) => alignsWith(fromDomain, k.domain))) return undefined;
  return {
    setting: 'dkim',
    message: `no signature's domain (${config.dkim.map((k) => k.domain).join(', ')}) aligns with the smtp.from domain ${fromDomain}: DMARC will not pass on DKIM; sign with d=${fromDomain} or a parent of it`,
  };
}

/** The warning for an empty users collection (nothing would ever be scheduled), or undefined. */
export function emptyUsersWarning(config: Config, count: number): ConfigWarning | undefined {
  if (count > 0) return undefined;
  return {
    setting: 'users.collection',
    message: `${databaseName(config.mongodb.uri)}.${config.users.collection} holds no documents: nobody will be mailed (check mongodb.uri's database and users.collection)`,
  };
}

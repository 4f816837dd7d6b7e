/**
 * Builds the real App (the composition root) in-process against the test database and the test
 * SMTP server, with its log captured as parsed JSON lines, for integration tests that need to look
 * inside (stats, logs) while still using every real part.
 */
import { Writable } from 'node:stream';
import { App, type AppOptions } from '../../src/app/app.js';
import { loadConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { writeTestConfig } from './cli.js';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

export interface TestApp {
  app: App;
  logs: LogLine[];
  /** The same lines unparsed (JSON.parse would hide a duplicated key). */
  rawLogs: string[];
}

export async function startTestApp(mongoUri: string, smtpUrl: string, overrides: Record<string, unknown> = {}, opts: AppOptions = {}): Promise<TestApp> {
  const file = writeTestConfig({ http: { enabled: false }, rate: { perSecond: null, perDay: null }, ...overrides });
  const loaded = loadConfig({ file, env: { MONGODB_URI: mongoUri, SMTP_URL: smtpUrl } });
  const logs: LogLine[] = [];
  const rawLogs: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) {
        rawLogs.push(line);
        logs.push(JSON.parse(line) as LogLine);
      }
      done();
    },
  });
  const app = await App.create(loaded, createLogger('info', sink), opts);
  return { app, logs, rawLogs };
}

/**
 * Shared by the webhook tests: the feedback config from config/default.json with overrides, a
 * sink that records what it is given, a replay guard in memory, and a FeedbackWebhooks served on
 * 127.0.0.1 (port 0) by a bare node:http server, with a `post` that returns status and JSON.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../../src/config/schema.js';
import { RefusalCounter } from '../../src/core/feedback-refusals.js';
import { FeedbackWebhooks, type FeedbackWebhooksDeps } from '../../src/feedback/webhooks/index.js';
import type { FeedbackApplyResult, FeedbackReport, FeedbackSink, FeedbackSource } from '../../src/ports/feedback.js';
import { silentLogger } from './fakes.js';

type Feedback = Config['feedback'];
type Webhooks = Feedback['webhooks'];

/** config/default.json's feedback section, with the webhook settings given merged in. */
export function feedbackConfig(webhooks: { [K in keyof Webhooks]?: Partial<Webhooks[K]> } = {}): Feedback {
  const defaults = (JSON.parse(readFileSync(new URL('../../config/default.json', import.meta.url), 'utf8')) as { feedback: Feedback }).feedback;
  const w = defaults.webhooks;
  return {
    ...defaults,
    webhooks: {
      ...w,
      ...(webhooks.maxBodyBytes !== undefined ? { maxBodyBytes: webhooks.maxBodyBytes } : {}),
      ...(webhooks.maxAgeSeconds !== undefined ? { maxAgeSeconds: webhooks.maxAgeSeconds } : {}),
      ses: { ...w.ses, ...webhooks.ses },
      sendgrid: { ...w.sendgrid, ...webhooks.sendgrid },
      mailgun: { ...w.mailgun, ...webhooks.mailgun },
      postmark: { ...w.postmark, ...webhooks.postmark },
    },
  };
}

/** Keeps every batch; answers as if each report changed something. */
export class RecordingSink implements FeedbackSink {
  readonly batches: FeedbackReport[][] = [];
  fail = false;
  get reports(): FeedbackReport[] {
    return this.batches.flat();
  }
  apply(reports: readonly FeedbackReport[]): Promise<FeedbackApplyResult> {
    if (this.fail) return Promise.reject(new Error('sink down'));
    this.batches.push([...reports]);
    return Promise.resolve({ applied: reports.length, duplicates: 0, suppressed: reports.length, ignored: [] });
  }
}

export class MemoryReplayGuard {
  readonly seen = new Set<string>();
  firstSeen(source: FeedbackSource, id: string): Promise<boolean> {
    const k = `${source}:${id}`;
    if (this.seen.has(k)) return Promise.resolve(false);
    this.seen.add(k);
    return Promise.resolve(true);
  }
  forget(source: FeedbackSource, id: string): Promise<void> {
    this.seen.delete(`${source}:${id}`);
    return Promise.resolve();
  }
}

export interface Served {
  webhooks: FeedbackWebhooks;
  sink: RecordingSink;
  refusals: RefusalCounter;
  replay: MemoryReplayGuard;
  clock: { now(): number; t: number };
  post(path: string, body: string | Buffer, headers?: Record<string, string>, method?: string): Promise<{ status: number; json: Record<string, unknown> }>;
  close(): Promise<void>;
}

/** A FeedbackWebhooks with recording parts, served on 127.0.0.1. */
export async function serveWebhooks(feedback: Feedback, extra: Partial<Pick<FeedbackWebhooksDeps, 'certificates' | 'fetchText'>> = {}, now = Date.now()): Promise<Served> {
  const sink = new RecordingSink();
  const refusals = new RefusalCounter();
  const replay = new MemoryReplayGuard();
  const clock = {
    t: now,
    now() {
      return this.t;
    },
  };
  const webhooks = new FeedbackWebhooks({ feedback, certificates: extra.certificates ?? new Map(), sink, refusals, replay, clock, log: silentLogger(), fetchText: extra.fetchText });
  const server: Server = createServer((req, res) => void webhooks.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    webhooks,
    sink,
    refusals,
    replay,
    clock,
    post: async (path, body, headers = {}, method = 'POST') => {
      const res = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...headers }, ...(method === 'GET' ? {} : { body }) });
      const text = await res.text();
      return { status: res.status, json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

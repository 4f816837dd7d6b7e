/**
 * Instance liveness for claim takeover. Each running process writes a heartbeat document every
 * `claimStaleMs / 4`; a claim whose owner has no heartbeat newer than `claimStaleMs` belongs to a
 * crashed process and may be taken over. A graceful stop deletes the document.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import type { Logger } from 'pino';
import type { InstanceDoc } from './store.js';

export class InstanceRegistry {
  readonly id: string;
  readonly #col: Collection<InstanceDoc>;
  readonly #staleMs: number;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #stopped: Promise<void> | undefined;

  constructor(col: Collection<InstanceDoc>, staleMs: number, log: Logger) {
    this.#col = col;
    this.#staleMs = staleMs;
    this.#log = log;
    this.id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    const now = new Date();
    await this.#col.insertOne({ _id: this.id, host: hostname(), pid: process.pid, startedAt: now, heartbeatAt: now });
    this.#timer = setInterval(() => void this.#beat(), Math.max(1000, Math.floor(this.#staleMs / 4)));
    this.#timer.unref();
  }

  /** True when `owner` has sent a heartbeat within `claimStaleMs`. */
  async isAlive(owner: string): Promise<boolean> {
    if (owner === this.id) return true;
    const doc = await this.#col.findOne({ _id: owner });
    return doc !== null && isLive(doc, this.#staleMs);
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#timer) clearInterval(this.#timer);
      await this.#col.deleteOne({ _id: this.id }).catch((err: unknown) => this.#log.warn({ err }, 'could not remove instance heartbeat'));
    })();
    return this.#stopped;
  }

  async #beat(): Promise<void> {
    try {
      await this.#col.updateOne({ _id: this.id }, { $set: { heartbeatAt: new Date() } });
    } catch (err) {
      this.#log.warn({ err }, 'heartbeat write failed');
    }
  }
}

/** True when the instance `doc` describes sent a heartbeat within `staleMs` and its process exists. */
function isLive(doc: InstanceDoc, staleMs: number): boolean {
  if (Date.now() - doc.heartbeatAt.getTime() >= staleMs) return false;
  // A process on this host that no longer exists is dead now, not in `claimStaleMs`: this is the
  // common crash case (systemd restarts the daemon within seconds), and waiting out the
  // heartbeat would let its unsent claims be skipped as "owned by a live instance".
  if (doc.host === hostname() && !processExists(doc.pid)) return false;
  return true;
}

/**
 * The instances (daemons, or a `run-minute`) alive now, for a CLI that needs one to act on what
 * it writes. The collection holds one small document per running process: a scan is cheap.
 */
export async function liveInstances(col: Collection<InstanceDoc>, staleMs: number): Promise<InstanceDoc[]> {
  return (await col.find({}).toArray()).filter((d) => isLive(d, staleMs));
}

/** Signal 0 checks existence without touching the process; EPERM means it exists (not ours). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

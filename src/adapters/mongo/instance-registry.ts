/**
 * Instance liveness for claim takeover. Each running process writes a heartbeat document every
 * `claimStaleMs / 4`; a claim whose owner has no heartbeat newer than `claimStaleMs` belongs to a
 * crashed process and may be taken over. A graceful stop deletes the document.
 *
 * Instance documents are decoded when read (decode.ts): a malformed one is an error naming the
 * collection, the id and the field, never a liveness guessed from `undefined`.
 */
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import type { Collection } from 'mongodb';
import type { Logger } from 'pino';
import { z } from 'zod';
import { systemClock, type Clock } from '../../ports/clock.js';
import type { InstanceInfo, InstanceRegistration } from '../../ports/stores.js';
import { decodeDoc, zDate } from './decode.js';
import type { InstanceDoc } from './store.js';

const instanceSchema = z.object({ _id: z.string(), host: z.string(), pid: z.number().int(), startedAt: zDate, heartbeatAt: zDate });

export class InstanceRegistry implements InstanceRegistration {
  readonly id: string;
  readonly #col: Collection<InstanceDoc>;
  readonly #staleMs: number;
  readonly #log: Logger;
  readonly #clock: Clock;
  #timer: unknown;
  #stopped: Promise<void> | undefined;

  constructor(col: Collection<InstanceDoc>, staleMs: number, log: Logger, clock: Clock = systemClock) {
    this.#col = col;
    this.#staleMs = staleMs;
    this.#log = log;
    this.#clock = clock;
    this.id = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  }

  async start(): Promise<void> {
    const now = new Date(this.#clock.now());
    await this.#col.insertOne({ _id: this.id, host: hostname(), pid: process.pid, startedAt: now, heartbeatAt: now });
    this.#schedule();
  }

  /** True when `owner` has sent a heartbeat within `claimStaleMs`. */
  async isAlive(owner: string): Promise<boolean> {
    if (owner === this.id) return true;
    const doc = await this.#find(owner);
    return doc !== undefined && isLive(doc, this.#staleMs, this.#clock.now());
  }

  /**
   * The instances (daemons, or a `run-minute`) alive now, for a CLI that needs one to act on what
   * it writes. The collection holds one small document per running process: a scan is cheap.
   */
  async live(): Promise<InstanceInfo[]> {
    const now = this.#clock.now();
    return (await this.#col.find({}).toArray()).map((d) => this.#decode(d)).filter((d) => isLive(d, this.#staleMs, now));
  }

  async heartbeatOf(owner: string): Promise<Date | undefined> {
    return (await this.#find(owner))?.heartbeatAt;
  }

  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
      this.#timer = undefined;
      await this.#col.deleteOne({ _id: this.id }).catch((err: unknown) => this.#log.warn({ err }, 'could not remove instance heartbeat'));
    })();
    return this.#stopped;
  }

  async #find(id: string): Promise<InstanceInfo | undefined> {
    const doc = await this.#col.findOne({ _id: id });
    return doc === null ? undefined : this.#decode(doc);
  }

  #decode(doc: unknown): InstanceInfo {
    const { _id, ...rest } = decodeDoc(instanceSchema, this.#col.collectionName, doc);
    return { id: _id, ...rest };
  }

  /** The next heartbeat (a chain of one-shot timers on the clock, so tests drive it). */
  #schedule(): void {
    if (this.#stopped !== undefined) return;
    this.#timer = this.#clock.setTimeout(() => void this.#beat().finally(() => this.#schedule()), Math.max(1000, Math.floor(this.#staleMs / 4)));
  }

  async #beat(): Promise<void> {
    try {
      await this.#col.updateOne({ _id: this.id }, { $set: { heartbeatAt: new Date(this.#clock.now()) } });
    } catch (err) {
      this.#log.warn({ err }, 'heartbeat write failed');
    }
  }
}

/** True when the instance `doc` describes sent a heartbeat within `staleMs` and its process exists. */
function isLive(doc: InstanceInfo, staleMs: number, nowMs: number): boolean {
  if (nowMs - doc.heartbeatAt.getTime() >= staleMs) return false;
  // A process on this host that no longer exists is dead now, not in `claimStaleMs`: this is the
  // common crash case (systemd restarts the daemon within seconds), and waiting out the
  // heartbeat would let its unsent claims be skipped as "owned by a live instance".
  if (doc.host === hostname() && !processExists(doc.pid)) return false;
  return true;
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

/**
 * DKIM signing off the event loop. A signature costs 1.4-2 ms of CPU per message here (RSA-2048
 * and, through mailauth's per-message key parse, Ed25519 alike: bench/mime.bench.ts); signed on
 * the event loop it cut the daemon's send path to 0.2x of unsigned (bench/smtp.bench.ts case f)
 * and blocked timers and the rate limiter for that long per message. So the transport signs in
 * worker threads: each holds the same DkimSigner with the keys loadConfig parsed (sent as
 * KeyObjects), the main thread only posts the raw message and prepends the fields it gets back.
 *
 * The workers are unref'd (they never keep the process alive) and a worker that dies is replaced;
 * the messages it had fail with an error (the send queue's retry takes them again).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { DkimKey } from '../../config/dkim-keys.js';
import { ErrorCodes, MailwheelError } from '../../errors.js';
import { DkimSigner } from './dkim-signer.js';

/** What the transport signs with: the in-thread signer or the worker pool. */
export interface MessageSigner {
  /** `raw` with the DKIM-Signature fields in front (`raw` itself without keys). */
  sign(raw: string): Promise<string>;
  close(): Promise<void>;
}

interface Pending {
  raw: string;
  resolve: (signed: string) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * The build loads dkim-worker.js. Source runs (tsx, vitest) load the .ts file, registering tsx's
 * loader inside the worker first (a parent's loader hooks do not reach worker threads).
 */
const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(fromSource ? './dkim-worker.ts' : './dkim-worker.js', import.meta.url);
function startWorker(workerData: unknown): Worker {
  if (!fromSource) return new Worker(workerUrl, { workerData });
  const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

export class DkimWorkerPool implements MessageSigner {
  readonly #keys: readonly DkimKey[];
  readonly #slots: Slot[] = [];
  #nextId = 1;
  #closed = false;

  constructor(keys: readonly DkimKey[], size: number) {
    this.#keys = keys;
    for (let i = 0; i < size; i++) this.#slots.push(this.#spawn());
  }

  /** The current worker threads (one replaced after it died shows up here as a new one). */
  get workers(): readonly Worker[] {
    return this.#slots.map((s) => s.worker);
  }

  sign(raw: string): Promise<string> {
    if (this.#closed) return Promise.reject(new MailwheelError(ErrorCodes.INTERNAL, 'DKIM signer is closed'));
    // The least busy worker: messages differ little in size, so this spreads the CPU evenly.
    let slot = this.#slots[0] as Slot;
    for (const s of this.#slots) if (s.pending.size < slot.pending.size) slot = s;
    const id = this.#nextId++;
    return new Promise<string>((resolve, reject) => {
      slot.pending.set(id, { raw, resolve, reject });
      slot.worker.postMessage({ id, raw });
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const slots = this.#slots.splice(0);
    for (const s of slots) this.#fail(s, 'DKIM signer closed');
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  #spawn(): Slot {
    const worker = startWorker({ keys: this.#keys });
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    worker.on('message', (m: { id: number; fields?: string; error?: string }) => {
      const p = slot.pending.get(m.id);
      if (p === undefined) return;
      slot.pending.delete(m.id);
      if (m.fields !== undefined) p.resolve(m.fields + p.raw);
      else p.reject(new MailwheelError(ErrorCodes.INTERNAL, m.error ?? 'DKIM signing failed'));
    });
    const replace = (why: string) => {
      if (this.#closed) return;
      const i = this.#slots.indexOf(slot);
      if (i < 0) return;
      this.#fail(slot, why);
      this.#slots[i] = this.#spawn();
    };
    worker.on('error', (err) => replace(`DKIM worker failed: ${err.message}`));
    worker.on('exit', (code) => replace(`DKIM worker exited (${code})`));
    return slot;
  }

  #fail(slot: Slot, why: string): void {
    for (const p of slot.pending.values()) p.reject(new MailwheelError(ErrorCodes.INTERNAL, why));
    slot.pending.clear();
  }
}

/**
 * The transport's signer: nothing to do without keys; with keys, a worker per core (at most 4;
 * the main thread's own SMTP work is light next to signing).
 */
export function messageSigner(keys: readonly DkimKey[], workers = Math.min(4, availableParallelism())): MessageSigner {
  if (keys.length === 0 || workers <= 0) return new DkimSigner(keys);
  return new DkimWorkerPool(keys, workers);
}

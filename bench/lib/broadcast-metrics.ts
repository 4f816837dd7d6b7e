/**
 * What the broadcast suite measures around the daemon besides arrivals: CPU of the daemon and of
 * the database server sampled over the run, RSS by quarters of the run, and the daemon's own log
 * lines about the work that runs beside a broadcast (incremental user syncs, progress writes), so
 * their share of a core during the broadcast is measured, not guessed.
 */
import { readFileSync } from 'node:fs';

/** CPU time (user + system) of a live process, ms; NaN once it is gone. */
export function cpuMsOf(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are in clock ticks; 100 per second on Linux.
    return ((Number(fields[11]) + Number(fields[12])) / 100) * 1000;
  } catch {
    return Number.NaN;
  }
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? Number.NaN) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Medians of [t, value] samples in each quarter of [from, to]: memory compared within the run
 * (last quarter against first), not against a sample taken before start-up garbage was collected.
 */
export function quarterMedians(samples: ReadonlyArray<readonly [number, number]>, from: number, to: number): number[] {
  const q = (to - from) / 4;
  return [0, 1, 2, 3].map((i) => median(samples.filter(([t]) => t >= from + i * q && t <= from + (i + 1) * q).map(([, v]) => v)));
}

/** CPU samples: [seconds, daemon CPU ms, database server CPU ms]. */
export class CpuSampler {
  readonly samples: Array<[number, number, number]> = [];
  readonly #timer: NodeJS.Timeout;
  constructor(daemonPid: number, dbPid: number | undefined, everyMs: number) {
    const take = (): void => void this.samples.push([performance.now() / 1000, cpuMsOf(daemonPid), cpuMsOf(dbPid)]);
    take();
    this.#timer = setInterval(take, everyMs);
  }
  stop(): void {
    clearInterval(this.#timer);
  }
  /** Cores used by the daemon and the database server between two instants (performance.now() s). */
  share(from: number, to: number): { daemon: number; db: number; seconds: number } {
    const inside = this.samples.filter(([t]) => t >= from && t <= to);
    const a = inside[0];
    const b = inside.at(-1);
    if (a === undefined || b === undefined || b[0] <= a[0]) return { daemon: Number.NaN, db: Number.NaN, seconds: 0 };
    const s = b[0] - a[0];
    return { daemon: (b[1] - a[1]) / 1000 / s, db: (b[2] - a[2]) / 1000 / s, seconds: s };
  }
}

/** The daemon's log lines that matter here, caught whole as they come (not from a kept tail). */
export class LogLines {
  readonly lines: Array<Record<string, unknown>> = [];
  #rest = '';
  constructor(
    stream: NodeJS.ReadableStream | null | undefined,
    readonly messages: readonly string[],
  ) {
    stream?.on('data', (b: Buffer) => {
      const parts = (this.#rest + b.toString()).split('\n');
      this.#rest = parts.pop() ?? '';
      for (const line of parts) {
        if (!messages.some((m) => line.includes(`"${m}"`))) continue;
        try {
          this.lines.push(JSON.parse(line) as Record<string, unknown>);
        } catch {
          // not JSON: ignored
        }
      }
    });
  }
  of(msg: string): Array<Record<string, unknown>> {
    return this.lines.filter((l) => l['msg'] === msg);
  }
}

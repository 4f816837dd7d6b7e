/**
 * Summary of a V8 CPU profile written by `node --cpu-prof` (the `.cpuprofile` JSON): self time per
 * function (and per package or source file), largest first. The sync suite profiles its worker
 * with it when asked (BENCH_SYNC_PROFILE=1) to show what dominates a full sync.
 */
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
}

/** V8's pseudo-frame for time the thread spent waiting (here: for the server's next batch). */
const IDLE = '(idle)';

export interface ProfileLine {
  name: string;
  selfMs: number;
  /** Share of the busy (non-idle) time, in %. */
  share: number;
}

/** Where a frame comes from: `pkg:<name>` for node_modules, the repo-relative file, or the V8 pseudo-frame. */
function origin(url: string): string {
  if (url === '') return '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm !== null) return `pkg:${nm[1] ?? '?'}`;
  if (url.startsWith('node:')) return url;
  const repo = /\/(src|bench|scripts)\/(.*)$/.exec(url);
  return repo === null ? url : `${repo[1] ?? ''}/${repo[2] ?? ''}`;
}

/**
 * Self time by function and by origin (package or file), each sorted by time, top `top` of each.
 * Idle time is reported on its own and the shares are of the busy time, so that a process that
 * mostly waits still shows what its work consists of.
 */
export function summarizeCpuProfile(file: string, top = 12): { totalMs: number; idleMs: number; busyMs: number; byFunction: ProfileLine[]; byOrigin: ProfileLine[] } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const totalHits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
  const totalMs = (profile.endTime - profile.startTime) / 1000;
  const msPerHit = totalHits > 0 ? totalMs / totalHits : 0;
  const byFunction = new Map<string, number>();
  const byOrigin = new Map<string, number>();
  let idleHits = 0;
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (hits === 0) continue;
    if (n.callFrame.functionName === IDLE) {
      idleHits += hits;
      continue;
    }
    const o = origin(n.callFrame.url);
    // Line numbers only for packages: repo files run through tsx, whose output lines do not match the source.
    const line = o.startsWith('pkg:') ? `:${n.callFrame.lineNumber + 1}` : '';
    const fn = `${n.callFrame.functionName || '(anonymous)'} ${o}${line}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
    byOrigin.set(o, (byOrigin.get(o) ?? 0) + hits);
  }
  const lines = (m: Map<string, number>): ProfileLine[] =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, hits]) => ({ name, selfMs: Math.round(hits * msPerHit), share: Math.round((hits / Math.max(1, busyHits)) * 1000) / 10 }));
  const busyHits = totalHits - idleHits;
  return { totalMs: Math.round(totalMs), idleMs: Math.round(idleHits * msPerHit), busyMs: Math.round(busyHits * msPerHit), byFunction: lines(byFunction), byOrigin: lines(byOrigin) };
}

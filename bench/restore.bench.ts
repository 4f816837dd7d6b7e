/**
 * Suite `restore`: what the start-up restore of the rate windows costs (issue 13, without Redis).
 * Every start with a minute, hour or day window configured (the default has `rate.perDay`) counts
 * the sends recorded in them (src/adapters/mongo/sent-counter.ts): one streamed `find` of the
 * longest window's `sent` outcomes, the shorter windows derived from it. FerretDB v1 pushes down
 * no filter but `_id`, so that `find` scans the deliveries collection: the figure to know is the
 * seconds it adds to a start at 100,000 delivery records. Compared in the same run with the
 * obvious alternative, one `countDocuments` per window (a scan each on FerretDB).
 *
 * The records: 50,000 delivery keys, each a claim and its `sent` outcome (100,000 documents),
 * their times spread evenly over the last 48 hours, so about half fall in the day window.
 */
import { MongoSentCounter } from '../src/adapters/mongo/sent-counter.js';
import type { DeliveryDoc } from '../src/adapters/mongo/store.js';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../src/core/time.js';
import { insertMany, startBenchDb } from './lib/db.js';
import { round, type Row, type Suite } from './lib/suite.js';

const FULL_RECORDS = 100_000;
const QUICK_RECORDS = 10_000;
const SPREAD_MS = 2 * DAY_MS;
const REPEATS = 3;
const WINDOWS = [MINUTE_MS, HOUR_MS, DAY_MS];
/** `mongodb.batchSize` default. */
const BATCH = 1000;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { seconds: (performance.now() - t0) / 1000, value };
}

const suite: Suite = {
  description: 'start-up count of the sends in the last minute / hour / day (rate windows restored after a restart): one streamed find vs one countDocuments per window, at 100,000 delivery records',
  async run({ log, quick }) {
    const records = quick ? QUICK_RECORDS : FULL_RECORDS;
    const keys = records / 2;
    const db = await startBenchDb('mw_bench_restore', log);
    try {
      const col = db.db.collection<DeliveryDoc>('mailwheel_deliveries');
      const now = Date.now();
      const atOf = (k: number) => new Date(now - Math.floor((k / keys) * SPREAD_MS));
      const seedSeconds = await insertMany(
        db.db,
        'mailwheel_deliveries',
        records,
        (i) => {
          const k = Math.floor(i / 2);
          const key = `s:u${String(k).padStart(7, '0')}:09:00:2027-01-15`;
          const at = atOf(k);
          return i % 2 === 0
            ? { _id: key, type: 'claim', kind: 'scheduled', userId: `u${k}`, owner: 'bench', gen: `g${k}`, at, v: 2 }
            : { _id: `${key}#done`, type: 'done', key, status: 'sent', at };
        },
        log,
      );
      const expected = WINDOWS.map((ms) => Array.from({ length: keys }, (_, k) => atOf(k)).filter((at) => now - at.getTime() <= ms).length);
      const counter = new MongoSentCounter(col, { batchSize: BATCH });
      const oneFind: number[] = [];
      const perWindow: number[] = [];
      let counts: number[] = [];
      let countsEach: number[] = [];
      for (let r = 0; r < REPEATS; r++) {
        const a = await timed(() => counter.countSent(now, WINDOWS));
        oneFind.push(a.seconds);
        counts = a.value;
        const b = await timed(() => Promise.all(WINDOWS.map((ms) => col.countDocuments({ type: 'done', status: 'sent', at: { $gte: new Date(now - ms) } }))));
        perWindow.push(b.seconds);
        countsEach = b.value;
        log(`  repeat ${r + 1}: one find ${round(a.seconds, 2)} s, ${WINDOWS.length} countDocuments ${round(b.seconds, 2)} s`);
      }
      const rows: Row[] = [
        { records, step: 'seed (insertMany, 1,000 per batch)', seconds: round(seedSeconds, 1), perMinute: null, perHour: null, perDay: null },
        { records, step: 'MongoSentCounter: one streamed find, windows derived (median of 3)', seconds: round(median(oneFind), 2), perMinute: counts[0] ?? null, perHour: counts[1] ?? null, perDay: counts[2] ?? null },
        { records, step: 'alternative: countDocuments per window, in parallel (median of 3)', seconds: round(median(perWindow), 2), perMinute: countsEach[0] ?? null, perHour: countsEach[1] ?? null, perDay: countsEach[2] ?? null },
      ];
      const notes: string[] = [];
      if (counts.join() !== expected.join()) notes.push(`the counter found ${counts.join(' / ')} sends, expected ${expected.join(' / ')}`);
      notes.push(`server: ${db.kind}; the count runs once per start (daemon and run-minute), before anything is sent`);
      return {
        config: { records, keys, spreadHours: SPREAD_MS / HOUR_MS, batchSize: BATCH, repeats: REPEATS },
        rows,
        comparisons: [{ comparison: 'countDocuments per window / one find', ratio: round(median(perWindow) / median(oneFind), 2) }],
        notes,
      };
    } finally {
      await db.stop();
    }
  },
};

export default suite;

/**
 * Worker thread of DkimWorkerPool: signs with the DkimSigner of this thread. The keys arrive once,
 * as parsed KeyObjects in workerData (structured clone keeps them key objects, never PEM text);
 * each message arrives as `{ id, raw }` and only its DKIM-Signature fields go back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { DkimKey } from '../../config/dkim-keys.js';
import { DkimSigner } from './dkim-signer.js';

const signer = new DkimSigner((workerData as { keys: DkimKey[] }).keys);

parentPort?.on('message', (m: { id: number; raw: string }) => {
  signer.fields(m.raw).then(
    (fields) => parentPort?.postMessage({ id: m.id, fields }),
    (err: unknown) => parentPort?.postMessage({ id: m.id, error: err instanceof Error ? err.message : String(err) }),
  );
});

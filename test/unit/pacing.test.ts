import { describe, expect, it } from 'vitest';
import { grantPacing } from '../../src/core/pacing.js';

describe('grantPacing', () => {
  it('batches perSecond/20 messages per grant, spaced exactly batch/perSecond apart', () => {
    // 14/s: too low to batch, one message every 1000/14 ms.
    expect(grantPacing(14, 50)).toEqual({ batch: 1, minTime: 1000 / 14 });
    // 40/s: 2 per grant, every 50 ms; 1000/s: 50 per grant, every 50 ms.
    expect(grantPacing(40, 50)).toEqual({ batch: 2, minTime: 50 });
    expect(grantPacing(1000, 50)).toEqual({ batch: 50, minTime: 50 });
  });

  it('never grants more than maxBatch: above 20 x maxBatch per second, grants come faster', () => {
    expect(grantPacing(5000, 50)).toEqual({ batch: 50, minTime: 10 });
    expect(grantPacing(1000, 10)).toEqual({ batch: 10, minTime: 10 });
  });

  it('without a per-second limit: full batches, no spacing', () => {
    expect(grantPacing(null, 50)).toEqual({ batch: 50, minTime: 0 });
    expect(grantPacing(undefined, 25)).toEqual({ batch: 25, minTime: 0 });
  });
});

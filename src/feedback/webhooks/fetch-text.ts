/**
 * The production fetcher for SNS signing certificates and subscription confirmations: an https
 * GET with a timeout and a size cap. Only https (the TLS check of the SNS host is what makes a
 * fetched certificate trustworthy); no redirects followed (a redirect could leave the SNS host).
 */
import { get } from 'node:https';
import { Errors } from '../../errors.js';

export interface FetchTextOptions {
  /** Longest silence on the socket, ms. Default 5000. */
  timeoutMs?: number;
  /** Largest body, bytes. Default 64 KiB (a certificate is about 2 KB). */
  maxBytes?: number;
  /** CA certificates to trust instead of the system's (PEM): tests and private mirrors only. */
  ca?: string;
}

export function httpsGetText(url: string, opts: FetchTextOptions = {}): Promise<string> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const maxBytes = opts.maxBytes ?? 64 * 1024;
  return new Promise((resolve, reject) => {
    if (!url.startsWith('https://')) return reject(new Errors.BAD_ARGUMENT('only https URLs are fetched'));
    const req = get(url, { timeout: timeoutMs, ...(opts.ca === undefined ? {} : { ca: opts.ca }) }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        return reject(new Errors.UNAVAILABLE(`GET ${new URL(url).host} answered ${res.statusCode ?? '?'}`));
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > maxBytes) {
          req.destroy(new Errors.UNAVAILABLE(`GET ${new URL(url).host}: body over ${maxBytes} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Errors.DEADLINE_EXCEEDED(`GET ${new URL(url).host}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

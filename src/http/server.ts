/**
 * The daemon's HTTP surface, bound to 127.0.0.1 unless configured otherwise: `/healthz` (the
 * process answers), `/readyz` (MongoDB answers and the first user sync is done), `/stats` (JSON
 * read from the components), and, when given a handler, `/unsubscribe` (RFC 8058 one-click; the
 * only route that accepts POST). Plain `node:http`: four routes need no framework.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { UnsubscribeHandler } from './unsubscribe.js';

export interface HttpSources {
  /** Resolves true when dependencies answer; never throws. */
  ready(): Promise<boolean>;
  stats(): Record<string, unknown>;
  /** Serves `GET`/`POST /unsubscribe`; without it that path is 404 like any unknown one. */
  unsubscribe?: UnsubscribeHandler;
}

export class HttpServer {
  readonly #server: Server;
  readonly #sources: HttpSources;
  readonly #log: Logger;
  #closed: Promise<void> | undefined;

  constructor(sources: HttpSources, log: Logger) {
    this.#sources = sources;
    this.#log = log;
    // Every request here is small: a client that takes longer to send one is holding a socket
    // open on purpose (slowloris), and /unsubscribe may be reachable from the internet.
    this.#server = createServer({ requestTimeout: 15_000, headersTimeout: 10_000 }, (req, res) => void this.#handle(req, res));
  }

  async listen(host: string, port: number): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
    const addr = this.#server.address() as AddressInfo;
    this.#log.info({ host, port: addr.port }, 'http listening');
    return addr.port;
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0];
      const unsubscribe = this.#sources.unsubscribe;
      if (path === '/unsubscribe' && unsubscribe) return await unsubscribe.handle(req, res);
      if (req.method !== 'GET') return send(res, 405, { error: 'method not allowed' });
      if (path === '/healthz') return send(res, 200, { ok: true });
      if (path === '/readyz') {
        const ok = await this.#sources.ready();
        return send(res, ok ? 200 : 503, { ok });
      }
      if (path === '/stats') return send(res, 200, this.#sources.stats());
      return send(res, 404, { error: 'not found' });
    } catch (err) {
      this.#log.error({ err }, 'http handler failed');
      // A handler that failed mid-answer cannot be given a status any more; drop the connection.
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'internal error' });
    }
  }
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

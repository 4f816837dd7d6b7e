/**
 * The daemon's HTTP surface, bound to 127.0.0.1 unless configured otherwise: `/healthz` (the
 * process answers), `/readyz` (MongoDB and SMTP answer and the first user sync is done), `/stats`
 * (JSON read from the components), `/metrics` (Prometheus text), and, when given a handler,
 * `/unsubscribe` (RFC 8058 one-click), and, when given the webhooks, the configured
 * `/webhooks/<provider>` paths (POST; each provider authenticates itself), and, when given a
 * status page, its read-only routes (`/status`, `/status.json`, `/status/*`: http/status-routes.ts).
 * With a bearer token configured, every route but `/healthz`, `/unsubscribe` and the webhooks
 * requires it; the status routes also take it as the password of HTTP Basic (a browser cannot put
 * a Bearer header on a navigation, but prompts for Basic credentials). Plain `node:http`: a
 * handful of routes need no framework.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SECOND_MS } from '../core/time.js';
import { Errors, type MailwheelError } from '../errors.js';
import { StatusRoutes, type StatusPage } from './status-routes.js';
import type { UnsubscribeHandler } from './unsubscribe.js';

/** A readiness answer with details (which dependency failed). */
export interface ReadyReport {
  ok: boolean;
  [check: string]: unknown;
}

export interface HttpSources {
  /** Resolves true (or `{ ok: true, ... }`) when dependencies answer; never throws. */
  ready(): Promise<boolean | ReadyReport>;
  /** May be async: parts of it (the cluster, the shared rate windows) are read through async ports. */
  stats(): Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Prometheus text for `GET /metrics`; without it that path is 404. */
  metrics?(): Promise<{ contentType: string; body: string }>;
  /** Serves `GET`/`POST /unsubscribe`; without it that path is 404 like any unknown one. */
  unsubscribe?: UnsubscribeHandler;
  /**
   * The provider webhooks (feedback/webhooks FeedbackWebhooks): the `/webhooks/*` paths it
   * `handles` are served by it and open without the bearer token (each provider authenticates
   * itself: a signature or its own credentials). Other `/webhooks/*` paths are like any unknown one.
   */
  webhooks?: WebhookRoutes;
  /** The read-only status page's data and curve; without it the status paths are 404. */
  status?: StatusPage;
}

/** What the server needs of the webhooks: which paths are theirs, and the handler. */
export interface WebhookRoutes {
  handles(path: string): boolean;
  handle(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

export interface HttpServerOptions {
  /**
   * Bearer token required on every route except `/healthz` (liveness probes carry no secrets)
   * and `/unsubscribe` (recipients' mail clients call it; its tokens are signed per user).
   */
  token?: string | null | undefined;
}

/** Routes open without the bearer token. */
const OPEN_PATHS = new Set(['/healthz', '/unsubscribe']);

export class HttpServer {
  readonly #server: Server;
  readonly #sources: HttpSources;
  readonly #log: Logger;
  readonly #token: Buffer | undefined;
  readonly #status: StatusRoutes | undefined;
  #closed: Promise<void> | undefined;

  constructor(sources: HttpSources, log: Logger, opts: HttpServerOptions = {}) {
    this.#sources = sources;
    this.#log = log;
    this.#token = opts.token ? Buffer.from(opts.token) : undefined;
    this.#status = sources.status === undefined ? undefined : new StatusRoutes(sources.status);
    // Every request here is small: a client that takes longer to send one is holding a socket
    // open on purpose (slowloris), and /unsubscribe may be reachable from the internet.
    this.#server = createServer({ requestTimeout: 15 * SECOND_MS, headersTimeout: 10 * SECOND_MS }, (req, res) => void this.#handle(req, res));
  }

  /** @throws MailwheelError naming the address and the cause (port in use, no permission, ...). */
  async listen(host: string, port: number): Promise<number> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.#server.once('error', reject);
        this.#server.listen(port, host, () => resolve());
      });
    } catch (err) {
      throw listenError(err, host, port);
    }
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
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const webhooks = this.#sources.webhooks;
      if (webhooks && path.startsWith('/webhooks/') && webhooks.handles(path)) return await webhooks.handle(req, res);
      const status = this.#status !== undefined && StatusRoutes.handles(path);
      if (!OPEN_PATHS.has(path) && !this.#authorised(req, status)) {
        // The status page is opened in a browser: Basic makes it ask for the token.
        res.setHeader('www-authenticate', status ? 'Basic realm="mailwheel"' : 'Bearer');
        return send(res, 401, { error: 'unauthorized' });
      }
      if (status) return await (this.#status as StatusRoutes).handle(req, res, path);
      const unsubscribe = this.#sources.unsubscribe;
      if (path === '/unsubscribe' && unsubscribe) return await unsubscribe.handle(req, res);
      if (req.method !== 'GET') return send(res, 405, { error: 'method not allowed' });
      if (path === '/healthz') return send(res, 200, { ok: true });
      if (path === '/readyz') {
        const r = await this.#sources.ready();
        const report = typeof r === 'boolean' ? { ok: r } : r;
        return send(res, report.ok ? 200 : 503, report);
      }
      if (path === '/stats') return send(res, 200, await this.#sources.stats());
      if (path === '/metrics' && this.#sources.metrics) {
        const { contentType, body } = await this.#sources.metrics();
        res.writeHead(200, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
        return void res.end(body);
      }
      return send(res, 404, { error: 'not found' });
    } catch (err) {
      this.#log.error({ err }, 'http handler failed');
      // A handler that failed mid-answer cannot be given a status any more; drop the connection.
      if (res.headersSent) res.destroy();
      else send(res, 500, { error: 'internal error' });
    }
  }

  /**
   * `Authorization: Bearer <token>`, the scheme name in any case (RFC 7235 §2.1: schemes are
   * case-insensitive); with `basic`, also `Basic base64(user:token)` with any user name (RFC 7617).
   * The token is compared in constant time.
   */
  #authorised(req: IncomingMessage, basic = false): boolean {
    if (this.#token === undefined) return true;
    const header = req.headers.authorization ?? '';
    const bearer = /^bearer +/i.exec(header);
    if (bearer !== null) return this.#matches(Buffer.from(header.slice(bearer[0].length)));
    const userPass = basic ? /^basic +([A-Za-z0-9+/=]+) *$/i.exec(header) : null;
    if (userPass === null) return this.#matches(Buffer.alloc(0));
    const decoded = Buffer.from(userPass[1] as string, 'base64');
    const colon = decoded.indexOf(0x3a);
    return this.#matches(colon < 0 ? Buffer.alloc(0) : decoded.subarray(colon + 1));
  }

  #matches(given: Buffer): boolean {
    const token = this.#token as Buffer;
    return given.length === token.length && timingSafeEqual(given, token);
  }
}

/** Why a bind failed, in the words an operator acts on, with the settings to change. */
function listenError(err: unknown, host: string, port: number): MailwheelError {
  const code = (err as { code?: string }).code;
  const reason =
    code === 'EADDRINUSE'
      ? 'address already in use (another process listens there; stop it or change http.port)'
      : code === 'EACCES'
        ? 'permission denied (ports below 1024 need privileges; change http.port)'
        : code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND'
          ? 'no such local address (check http.host)'
          : err instanceof Error
            ? err.message
            : String(err);
  return new Errors.STARTUP_FAILED(`http: cannot listen on ${host}:${port}: ${reason}`, { cause: err });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * The read-only status page's routes (GET only): `/status` (the page), `/status/status.js` and
 * `/status/status.css` and `/status/favicon.svg` (its script, style and icon, shipped in the package under assets/status/),
 * `/status.json` (the data the page reloads) and `/status/curve.svg` (the next 24 h, drawn on
 * the server by src/charts). Authentication is the server's (http/server.ts): the token, as a
 * Bearer header or as the password of HTTP Basic, which a browser can send on a navigation.
 *
 * Every answer says `Content-Security-Policy: default-src 'self'`: the page loads nothing from
 * anywhere else (no CDN, no font), and no inline script runs. `Cache-Control: no-store`: the data
 * is live, and an authenticated page has no business in a shared cache.
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** What the routes read (src/status StatusSource). */
export interface StatusPage {
  data(): Promise<unknown>;
  curveSvg(): string;
}

/** The files of the page, by route, with their content types. */
const ASSETS: Record<string, { file: string; type: string }> = {
  '/status': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/status/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/status/status.js': { file: 'status.js', type: 'text/javascript; charset=utf-8' },
  '/status/status.css': { file: 'status.css', type: 'text/css; charset=utf-8' },
  // Named in the page, so the browser does not ask for /favicon.ico (a route without Basic).
  '/status/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
};

/** assets/status/ at the package root: two levels up from src/http/ and from dist/http/ alike. */
const ASSET_DIR = new URL('../../assets/status/', import.meta.url);

const HEADERS = {
  'content-security-policy': "default-src 'self'",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
};

export class StatusRoutes {
  readonly #page: StatusPage;
  readonly #files = new Map<string, Buffer>();

  constructor(page: StatusPage) {
    this.#page = page;
  }

  /** True for the paths these routes answer. */
  static handles(path: string): boolean {
    return path in ASSETS || path === '/status.json' || path === '/status/curve.svg';
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      return reply(res, 405, 'application/json', '{"error":"method not allowed"}', req);
    }
    if (path === '/status.json') return reply(res, 200, 'application/json', JSON.stringify(await this.#page.data()), req);
    if (path === '/status/curve.svg') return reply(res, 200, 'image/svg+xml', this.#page.curveSvg(), req);
    const asset = ASSETS[path] as { file: string; type: string };
    return reply(res, 200, asset.type, this.#file(asset.file), req);
  }

  /** Read once: the files ship with the package and do not change while it runs. */
  #file(name: string): Buffer {
    let body = this.#files.get(name);
    if (body === undefined) {
      body = readFileSync(new URL(name, ASSET_DIR));
      this.#files.set(name, body);
    }
    return body;
  }
}

function reply(res: ServerResponse, status: number, type: string, body: string | Buffer, req: IncomingMessage): void {
  res.writeHead(status, { ...HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

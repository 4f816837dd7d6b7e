/**
 * The status page in a real browser (issue 18): Debian's chromium driven by playwright-core,
 * headless, against the real daemon (App in-process, the test database, the test SMTP server).
 * While a 5,000-user broadcast runs at 200/s (about 25 s), the page shows its progress moving,
 * a pause as such (no ETA), the next 24 h as an SVG with the capacity line, and recent failures
 * with their SMTP replies (the recipient's address masked); every request the browser makes goes
 * to 127.0.0.1; 50 users due two minutes after the start show, once their minute fires, as the
 * curve's already-claimed part (so the test lasts up to about two minutes). With `http.token` set the page needs it: no credentials, 401; Basic credentials, the page.
 * Screenshots are written to test-artifacts/status-*.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PLAN_COLOURS } from '../../src/charts/plan-chart.js';
import { broadcastUsers, insertUsers } from '../helpers/broadcasts.js';
import { startTestApp, type TestApp } from '../helpers/app.js';
import { testDb, type TestDb } from '../helpers/db.js';
import { TestSmtpServer } from '../helpers/smtp-server.js';
import { parseSvg, plotSpan, valueAxis } from '../helpers/svg.js';

const TOKEN = 'status-page-token-0123456789abcdef';
const USERS = 5000;
/** Users with a scheduled slot two minutes after the start: the curve's already-claimed part. */
const DUE_SOON = 50;
const PER_SECOND = 200;
/** Recipients the relay refuses for good: every 500th user (10 of them). */
const refused = (rcpt: string) => /^st0*(\d+)@/.test(rcpt) && Number(/^st0*(\d+)@/.exec(rcpt)?.[1] ?? 1) % 500 === 0;
const REFUSED_ADDRESS = 'st000500@example.test';
const ARTIFACTS = 'test-artifacts';
const CHROMIUM = '/usr/bin/chromium';

let db: TestDb;
let smtp: TestSmtpServer;
let t: TestApp | undefined;
let browser: Browser | undefined;
const requests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (.ci/run installs it)`);
  mkdirSync(ARTIFACTS, { recursive: true });
  db = await testDb('status_page');
  smtp = await TestSmtpServer.start();
  // Every user's own slot is 12 h from now (farSlot): the curve shows it, and it never fires here.
  await insertUsers(db.db, broadcastUsers(USERS, 'st', (i) => ({ email: `st${String(i).padStart(6, '0')}@example.test`, plan: 'status' })));
  const soon = new Date((Math.floor(Date.now() / 60_000) + 2) * 60_000).toISOString().slice(11, 16);
  await insertUsers(db.db, broadcastUsers(DUE_SOON, 'sd', () => ({ emailTimes: [soon] })));
  smtp.setFault({ kind: 'reply', code: 550, stage: 'rcpt', message: `5.1.1 <${REFUSED_ADDRESS}>: Recipient address rejected`, match: refused });
  t = await startTestApp(db.uri, smtp.url, {
    http: { enabled: true, host: '127.0.0.1', port: 0, token: TOKEN },
    rate: { perSecond: PER_SECOND, perDay: null },
    broadcasts: { pollMs: 200 },
    analytics: { flushIntervalMs: 100 },
  });
  await t.app.start();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-default-apps', '--disable-sync', '--metrics-recording-only', '--disable-domain-reliability'],
  });
});

afterAll(async () => {
  await browser?.close();
  await t?.app.close();
  await smtp?.close();
  await db?.cleanup();
});

/** A context whose every request is recorded (the page, its script, its data, its picture). */
async function context(credentials: boolean): Promise<BrowserContext> {
  const ctx = await (browser as Browser).newContext({ ...(credentials ? { httpCredentials: { username: 'operator', password: TOKEN } } : {}), viewport: { width: 1280, height: 1400 } });
  ctx.on('request', (r) => requests.push(r.url()));
  return ctx;
}

async function poll<T>(what: string, read: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function base(): string {
  return `http://127.0.0.1:${t?.app.httpPort}`;
}

it('needs the token: 401 with a Basic challenge without it, the page with Basic or Bearer; GET only', async () => {
  const plain = await fetch(`${base()}/status`);
  expect(plain.status).toBe(401);
  expect(plain.headers.get('www-authenticate')).toBe('Basic realm="mailwheel"');
  expect((await fetch(`${base()}/status.json`)).status).toBe(401);
  expect((await fetch(`${base()}/status/curve.svg`)).status).toBe(401);
  const basic = (pass: string) => ({ authorization: `Basic ${Buffer.from(`anyone:${pass}`).toString('base64')}` });
  expect((await fetch(`${base()}/status`, { headers: basic('wrong-token-wrong-token-wrong-tok') })).status).toBe(401);
  expect((await fetch(`${base()}/status`, { headers: basic(TOKEN) })).status).toBe(200);
  expect((await fetch(`${base()}/status.json`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
  // Basic is for the status page only: the other routes keep the Bearer scheme.
  expect((await fetch(`${base()}/stats`, { headers: basic(TOKEN) })).status).toBe(401);
  expect((await fetch(`${base()}/status.json`, { method: 'POST', headers: basic(TOKEN) })).status).toBe(405);

  const ctx = await context(false);
  try {
    const page = await ctx.newPage();
    expect((await page.request.get(`${base()}/status`)).status()).toBe(401);
    // Chromium answers the challenge by refusing the navigation (nobody to type a password).
    const res = await page.goto(`${base()}/status`).catch((err: Error) => err);
    if (res instanceof Error) expect(res.message).toContain('ERR_INVALID_AUTH_CREDENTIALS');
    else expect(res?.status()).toBe(401);
    expect(await page.locator('#summary').count()).toBe(0);
  } finally {
    await ctx.close();
  }
});

it('shows a running broadcast moving (and paused), the next 24 h with the capacity line, failures masked, and loads nothing from beyond 127.0.0.1', { timeout: 300_000 }, async () => {
  const { app } = t as TestApp;
  const ctx = await context(true);
  const page: Page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  try {
    const res = await page.goto(`${base()}/status`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toBe("default-src 'self'");
    const doc = await app.store.broadcasts.create({ subject: 'Status page test', text: 'Hello', segment: '{"plan":"status"}' });

    // Two different progress values seen in the page while the broadcast runs, of a known total
    // (the run counts its recipients in the background: `? ` until then).
    const row = page.locator(`#broadcasts tr[data-id="${doc._id}"]`);
    const seen = new Set<string>();
    await poll('two different progress values of 5,000 on the page', async () => {
      const text = (await row.locator('td.done').textContent({ timeout: 90_000 }).catch(() => null)) ?? '';
      const done = Number(text.split('/')[0]?.replace(/,/g, '').trim());
      if (done > 0 && done < USERS && text.endsWith('/ 5,000')) seen.add(text);
      return seen.size >= 2 ? true : undefined;
    });
    await page.screenshot({ path: `${ARTIFACTS}/status-running.png`, fullPage: true });
    const values = [...seen].map((s) => Number(s.split('/')[0]?.replace(/,/g, '')));
    expect(new Set(values).size).toBeGreaterThanOrEqual(2);
    const bar = await row.locator('progress').evaluate((el) => (el as unknown as { value: number }).value);
    expect(bar).toBeGreaterThan(0);
    expect(await row.locator('td.eta').textContent()).toMatch(/^\d+ (s|min)/);

    // Paused by the operator: the page says so and gives no ETA; resumed, it moves on.
    await app.store.broadcasts.requestControl(doc._id, 'pause');
    await poll('the page to show the pause', async () => ((await row.locator('td.eta').textContent().catch(() => '')) === 'paused' ? true : undefined));
    expect(await row.locator('td').nth(2).textContent()).toBe('paused');
    await page.screenshot({ path: `${ARTIFACTS}/status-paused.png`, fullPage: true });
    await app.store.broadcasts.requestControl(doc._id, 'resume');

    // The curve: the picture loaded in the page, and it is the next 24 h with the capacity line.
    await poll('the curve picture', async () => ((await page.locator('#curve').evaluate((el) => { const img = el as unknown as { complete: boolean; naturalWidth: number }; return img.complete && img.naturalWidth > 0; })) ? true : undefined));
    const src = await page.locator('#curve').getAttribute('src');
    expect(src).toMatch(/^\/status\/curve\.svg\?at=\d+$/);
    const svgRes = await page.request.get(`${base()}${src}`);
    expect(svgRes.headers()['content-type']).toBe('image/svg+xml');
    const svg = parseSvg(await svgRes.text());
    const axis = valueAxis(svg, plotSpan(svg).left);
    // The longest dashed path in the capacity colour (the legend's sample is a short one).
    const span = (pts: Array<[number, number]>) => Math.max(...pts.map((q) => q[0])) - Math.min(...pts.map((q) => q[0]));
    const capacity = svg.paths.filter((p) => p.stroke === PLAN_COLOURS.capacity && p.dash !== null).sort((a, b) => span(b.points) - span(a.points))[0];
    expect(capacity, 'a dashed capacity line').toBeDefined();
    expect(Math.abs((capacity?.points[0]?.[1] ?? NaN) - axis.y(PER_SECOND * 60))).toBeLessThan(0.6);
    expect(svg.texts.map((x) => x.text)).toContain(`capacity: 12,000 a minute (${PER_SECOND}/s)`);
    // The users' own slots, 12 h from now, are on it (the registry's 5,000 jobs in one minute).
    expect(svg.texts.some((x) => /\b5,000$/.test(x.text))).toBe(true);
    expect(await page.locator('#curve-summary').textContent()).toMatch(/^5,0[05]0 scheduled sends due in the next 24 h/);

    // Wait for the end, then the failures: the SMTP reply with the recipient masked to its domain.
    await poll('the broadcast to finish on the page', async () => ((await page.locator('#broadcasts-none').isVisible()) ? true : undefined), 120_000);
    await poll('the refused recipients in the failures table', async () => ((await page.locator('#failures tbody tr').count()) >= 10 ? true : undefined));
    const failures = await page.locator('#failures tbody').innerText();
    expect(failures).toContain('550');
    expect(failures).toContain('Recipient address rejected');
    expect(failures).toContain('…@example.test');
    const html = await page.content();
    expect(html).not.toContain(REFUSED_ADDRESS);
    expect(html).not.toMatch(/st\d{6}@/);
    expect(html).not.toContain(TOKEN);
    await page.screenshot({ path: `${ARTIFACTS}/status-done.png`, fullPage: true });

    // The minute the DUE_SOON users fire: their sends are the already-claimed part of the curve.
    await poll('the fired minute as already claimed', async () => ((await page.locator('#curve-summary').textContent())?.includes(`, ${DUE_SOON} already claimed`) ? true : undefined), 180_000);
    const claimedSrc = (await page.locator('#curve').getAttribute('src')) ?? '';
    const claimedSvg = parseSvg(await (await page.request.get(`${base()}${claimedSrc}`)).text());
    const claimedAxis = valueAxis(claimedSvg, plotSpan(claimedSvg).left);
    const grey = claimedSvg.paths.filter((p) => p.fill === PLAN_COLOURS.claimed && p.points.length > 2);
    expect(grey.length, 'an area in the claimed colour').toBeGreaterThan(0);
    const top = Math.min(...grey.flatMap((p) => p.points.map((q) => q[1])));
    expect(Math.abs(top - claimedAxis.y(DUE_SOON))).toBeLessThan(1);
    await page.screenshot({ path: `${ARTIFACTS}/status-claimed.png`, fullPage: true });
    expect(errors).toEqual([]);
  } finally {
    await ctx.close();
  }
  // Every request any page made: this daemon, on 127.0.0.1, nothing else.
  expect(requests.length).toBeGreaterThan(5);
  const hosts = new Set(requests.map((u) => new URL(u).hostname));
  expect([...hosts]).toEqual(['127.0.0.1']);
  expect(requests.every((u) => !u.includes(TOKEN))).toBe(true);
});

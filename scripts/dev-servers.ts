/**
 * `npm run dev-servers [-- --mongo-port 27018] [--smtp-port 2525] [--redis-port 6380] [--data .dev] [--db mailwheel_dev]`:
 * the newcomer's path beyond the demo. Starts, on FIXED loopback ports so a shell keeps working
 * across restarts:
 *
 * 1. a MongoDB-wire server (FerretDB, scripts/lib/mongo-server.ts), data kept in `<data>/ferretdb`
 *    (seeded users survive a restart; delete the folder to start over);
 * 2. a mail capture: an SMTP server that stores each message as `<data>/mail/<n>-<rcpt>.eml` and
 *    prints one line per message;
 * 3. when Debian's `redis-server` is installed, a Redis without persistence (scripts/lib/redis-server.ts)
 *    for the shared rate windows of several instances; without it, one line saying how to install it;
 *
 * then prints the `export MONGODB_URI=... SMTP_URL=...` lines to paste into another shell, where
 * every `mailwheel` command then works against them. Ctrl-C (SIGINT) or SIGTERM stops both (its own
 * children, by PID) and exits 0; a second signal forces.
 *
 * Exit codes: 0 stopped by a signal, 1 a server could not start (a port taken, no FerretDB), 64 bad
 * options.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { headerValue, startMailCapture, type MailCapture } from './lib/mail-capture.js';
import { startFerretdbAt } from './lib/mongo-server.js';
import { REDIS_INSTALL_HINT, redisServerAvailable, startRedisServer, type RedisServer } from './lib/redis-server.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = (line: string): void => void process.stderr.write(`dev-servers: ${line}\n`);

function options(): { mongoPort: number; smtpPort: number; redisPort: number; data: string; db: string } {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'mongo-port': { type: 'string', default: '27018' },
        'smtp-port': { type: 'string', default: '2525' },
        'redis-port': { type: 'string', default: '6380' },
        data: { type: 'string', default: path.join(root, '.dev') },
        db: { type: 'string', default: 'mailwheel_dev' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    say(err instanceof Error ? err.message : String(err));
    process.exit(64);
  }
  if (values.help) {
    process.stdout.write('usage: npm run dev-servers [-- --mongo-port 27018] [--smtp-port 2525] [--redis-port 6380] [--data .dev] [--db mailwheel_dev]\n');
    process.exit(0);
  }
  const port = (v: string, name: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 65535) {
      say(`--${name}: "${v}" is not a port number (1..65535)`);
      process.exit(64);
    }
    return n;
  };
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(values.db)) {
    say(`--db: "${values.db}" is not a database name (letters, digits, _ and -)`);
    process.exit(64);
  }
  return {
    mongoPort: port(values['mongo-port'], 'mongo-port'),
    smtpPort: port(values['smtp-port'], 'smtp-port'),
    redisPort: port(values['redis-port'], 'redis-port'),
    data: path.resolve(values.data),
    db: values.db,
  };
}

async function main(): Promise<number> {
  const opts = options();
  const mailDir = path.join(opts.data, 'mail');
  const dataDir = path.join(opts.data, 'ferretdb');
  mkdirSync(mailDir, { recursive: true });
  mkdirSync(dataDir, { recursive: true });

  let capture: MailCapture | undefined;
  let mongo: Awaited<ReturnType<typeof startFerretdbAt>> | undefined;
  let redis: RedisServer | undefined;
  let stopping = false;
  const stop = async (code: number): Promise<never> => {
    await capture?.close();
    await redis?.stop();
    await mongo?.stop();
    process.exit(code);
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      say(`${signal} again: forcing`);
      if (mongo?.pid !== undefined) process.kill(mongo.pid, 'SIGKILL');
      if (redis?.pid !== undefined) process.kill(redis.pid, 'SIGKILL');
      process.exit(130);
    }
    stopping = true;
    say(`${signal}: stopping`);
    void stop(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    capture = await startMailCapture({
      port: opts.smtpPort,
      dir: mailDir,
      banner: 'mailwheel dev capture',
      onMessage: ({ n, file, rcpt, raw }) => {
        const subject = headerValue(raw.toString('utf8'), 'subject') ?? '';
        say(`mail #${n} to <${rcpt}> ${JSON.stringify(subject)} -> ${path.relative(process.cwd(), file)}`);
      },
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    say(code === 'EADDRINUSE' ? `SMTP port 127.0.0.1:${opts.smtpPort} is taken (another dev-servers?); choose one with --smtp-port` : `SMTP capture did not start: ${String(err)}`);
    return 1;
  }
  try {
    mongo = await startFerretdbAt({ port: opts.mongoPort, dataDir }, { log: (line) => say(line) });
  } catch (err) {
    const text = err instanceof Error ? err.message : String(err);
    say(/address already in use/i.test(text) ? `MongoDB port 127.0.0.1:${opts.mongoPort} is taken (another dev-servers?); choose one with --mongo-port` : `FerretDB did not start: ${text.split('\n')[0] ?? text}`);
    await capture.close();
    return 1;
  }
  if (redisServerAvailable()) {
    try {
      redis = await startRedisServer({ port: opts.redisPort, log: (line) => say(line) });
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      say(/address already in use/i.test(text) ? `Redis port 127.0.0.1:${opts.redisPort} is taken (another dev-servers?); choose one with --redis-port` : `redis-server did not start: ${text.split('\n')[0] ?? text}`);
      await capture.close();
      await mongo.stop();
      return 1;
    }
  } else {
    say(`no redis-server here (only needed for several instances): ${REDIS_INSTALL_HINT}`);
  }
  if (stopping) return new Promise<number>(() => undefined); // a signal arrived during start-up: stop() exits

  process.stdout.write(
    [
      `# mailwheel dev servers: MongoDB-wire (FerretDB, pid ${String(mongo.pid)}), a mail capture${redis ? `, Redis (pid ${String(redis.pid)}, no persistence)` : ''}; Ctrl-C stops them`,
      `# mail is stored in ${mailDir}; database data in ${dataDir}`,
      `export MONGODB_URI='mongodb://127.0.0.1:${opts.mongoPort}/${opts.db}'`,
      `export SMTP_URL='smtp://127.0.0.1:${capture.port}'`,
      ...(redis ? [`# Redis for several instances (cluster.redisUrl, issue 13): ${redis.url}`] : []),
      `# then, in that shell: npx mailwheel seed-users 1000 --soon 3 && npx mailwheel start`,
      '',
    ].join('\n'),
  );
  // Runs until a signal.
  return new Promise<number>(() => undefined);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    say(`failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);

#!/usr/bin/env node
/**
 * Provides what the tests need on this machine, each piece only when it is missing: node_modules
 * (npm ci), PostgreSQL on 127.0.0.1:5432, Debian's chromium for the browser test, the Temporal CLI.
 * Plain node without dependencies, because it runs before node_modules exists. When everything is
 * there it only looks, well under a second.
 *
 *   node scripts/ensure-test-env.mjs        what the whole suite needs
 *   node scripts/ensure-test-env.mjs unit   node_modules only: the unit tier talks to no service
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import process from 'node:process';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PG_HOST = '127.0.0.1'; // test/support/global-setup.ts makes its databases there
const PG_PORT = 5432;
const PG_CLUSTERS_DIR = '/etc/postgresql'; // Debian's layout: one directory per major version
const PG_START_WAIT_MS = 30_000;
const PORT_PROBE_TIMEOUT_MS = 1_000;
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'; // where the browser test looks

class SetupError extends Error {}

function fail(message) {
  throw new SetupError(message);
}

function log(message) {
  process.stderr.write(`ensure-test-env: ${message}\n`);
}

/** Runs a command in the repository, output shown; true when it exited 0, false when it failed or is absent. */
function run(command, args, options = {}) {
  const result = spawnSync(command, args, { cwd: ROOT, stdio: 'inherit', ...options });
  return result.error === undefined && result.status === 0;
}

function executable(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

function onPath(name) {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter((dir) => dir !== '');
  return dirs.map((dir) => path.join(dir, name)).find(executable) ?? null;
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return null;
    throw err;
  }
}

/** node_modules holds every package of package-lock.json at its locked version (optional ones may be absent: other platforms). */
function dependenciesInstalled() {
  const installed = readJson(path.join(ROOT, 'node_modules', '.package-lock.json'));
  if (installed === null) return false;
  const locked = readJson(path.join(ROOT, 'package-lock.json'));
  if (locked === null) fail('package-lock.json is missing');
  return Object.entries(locked.packages).every(
    ([key, entry]) => key === '' || entry.optional === true || installed.packages[key]?.version === entry.version,
  );
}

function ensureDependencies() {
  if (dependenciesInstalled()) return;
  log('node_modules is missing or does not match package-lock.json: npm ci');
  // --include=dev: jest, tsc and eslint are dev dependencies, even where NODE_ENV=production.
  if (!run('npm', ['ci', '--include=dev', '--no-audit', '--no-fund'])) fail('npm ci failed (output above)');
}

function portOpen(host, port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (open) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(PORT_PROBE_TIMEOUT_MS);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.once('timeout', () => done(false));
  });
}

/** The newest Debian cluster, or null when PostgreSQL is not installed that way. */
function postgresCluster() {
  if (!fs.existsSync(PG_CLUSTERS_DIR) || onPath('pg_ctlcluster') === null) return null;
  const versions = fs.readdirSync(PG_CLUSTERS_DIR).filter((v) => /^\d+(\.\d+)?$/.test(v));
  return versions.sort((a, b) => Number(a) - Number(b)).at(-1) ?? null;
}

async function ensurePostgres() {
  const address = `${PG_HOST}:${PG_PORT}`;
  if (await portOpen(PG_HOST, PG_PORT)) return;
  const version = postgresCluster();
  if (version === null) {
    fail(`nothing answers on ${address} and PostgreSQL is not installed here: install it (Debian: apt-get install -y postgresql) or run one on ${address} with user postgres (trust)`);
  }
  log(`PostgreSQL is not running on ${address}: starting cluster ${version}/main`);
  if (!run('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', 'start'])) {
    fail(`pg_ctlcluster ${version} main start failed (output above)`);
  }
  const deadline = Date.now() + PG_START_WAIT_MS;
  while (!(await portOpen(PG_HOST, PG_PORT))) {
    if (Date.now() > deadline) fail(`PostgreSQL ${version}/main started but ${address} does not answer after ${PG_START_WAIT_MS / 1000} s`);
    await sleep(250);
  }
}

function ensureChromium() {
  if (executable(CHROMIUM)) return;
  if (process.env.CHROMIUM_PATH !== undefined) fail(`CHROMIUM_PATH=${CHROMIUM} is not an executable file`);
  if (process.getuid?.() !== 0 || onPath('apt-get') === null) {
    fail(`the browser test needs Debian's chromium at ${CHROMIUM}: install it as root (apt-get install -y chromium), or set CHROMIUM_PATH to a Chromium binary`);
  }
  const apt = (...args) => run('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  log('installing chromium for the browser test (apt-get)');
  if (apt('install', '-y', 'chromium')) return;
  // A fresh image often has no package lists yet.
  log('retrying after apt-get update');
  if (!apt('update') || !apt('install', '-y', 'chromium') || !executable(CHROMIUM)) fail('apt-get install -y chromium failed (output above)');
}

/** Looks where src/dev/temporal.ts's findTemporalCli looks: TEMPORAL_CLI, PATH, then go's bin directory. */
function temporalCliFound() {
  const explicit = process.env.TEMPORAL_CLI;
  if (explicit !== undefined && explicit !== '') return executable(explicit);
  if (onPath('temporal') !== null) return true;
  const gopath = spawnSync('go', ['env', 'GOPATH'], { encoding: 'utf8' });
  return gopath.status === 0 && executable(path.join(gopath.stdout.trim(), 'bin', 'temporal'));
}

function ensureTemporalCli() {
  if (temporalCliFound()) return;
  // setup:temporal explains what is wrong (TEMPORAL_CLI not executable, Go missing) or builds the CLI.
  if (!run('npm', ['run', '--silent', 'setup:temporal'])) fail('the Temporal CLI is missing and was not built (output above)');
}

const STEPS = {
  all: [ensureDependencies, ensurePostgres, ensureChromium, ensureTemporalCli],
  unit: [ensureDependencies],
};

async function main() {
  const tier = process.argv[2] ?? 'all';
  const steps = STEPS[tier];
  if (steps === undefined) fail(`unknown argument ${tier}: expected nothing or "unit"`);
  for (const step of steps) await step();
}

main().catch((err) => {
  if (!(err instanceof SetupError)) throw err;
  log(err.message);
  process.exitCode = 1;
});

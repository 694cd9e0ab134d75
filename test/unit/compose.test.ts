import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

/**
 * Lint for the container files. There is no Docker engine where the tests run, so this reads
 * docker-compose.yml, the Dockerfile and .dockerignore as text and checks what `docker compose
 * config` / `up` would trip over. It starts nothing and talks to no service.
 */

const ROOT = path.resolve(__dirname, '../..');
const REQUIRED_SERVICES = ['postgres', 'temporal', 'temporal-ui', 'api', 'worker', 'sandbox-psp'] as const;
const APP_ENV_REQUIRED = ['DATABASE_URL', 'TEMPORAL_ADDRESS', 'PSP_URL'] as const;
const SEARCH_ATTRIBUTES: ReadonlyArray<readonly [string, string]> = [
  ['PaymentId', 'Keyword'],
  ['MerchantId', 'Keyword'],
  ['PaymentStatus', 'Keyword'],
  ['Currency', 'Keyword'],
  ['AmountMinor', 'Int'],
];

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function readText(relative: string): string {
  return fs.readFileSync(path.join(ROOT, relative), 'utf8');
}

function loadCompose(): Mapping {
  // merge: true so `<<: *anchor` works as it does in compose.
  const doc: unknown = YAML.parse(readText('docker-compose.yml'), { merge: true });
  if (!isMapping(doc)) throw new Error('docker-compose.yml is not a mapping');
  return doc;
}

function servicesOf(doc: Mapping): Mapping {
  const services = doc['services'];
  if (!isMapping(services)) throw new Error('docker-compose.yml has no services mapping');
  return services;
}

function service(doc: Mapping, name: string): Mapping {
  const svc = servicesOf(doc)[name];
  if (!isMapping(svc)) throw new Error(`service ${name} is missing or not a mapping`);
  return svc;
}

/** depends_on comes as a list of names or a mapping name -> { condition }. */
function dependsOn(svc: Mapping): string[] {
  const deps = svc['depends_on'];
  if (deps === undefined) return [];
  if (Array.isArray(deps)) return deps.map(String);
  if (isMapping(deps)) return Object.keys(deps);
  throw new Error(`depends_on must be a list or a mapping, got ${typeof deps}`);
}

/** environment comes as a mapping or a list of KEY=value strings. */
function environment(svc: Mapping): Map<string, string> {
  const env = svc['environment'];
  const out = new Map<string, string>();
  if (env === undefined) return out;
  if (Array.isArray(env)) {
    for (const item of env) {
      const text = String(item);
      const eq = text.indexOf('=');
      if (eq === -1) out.set(text, '');
      else out.set(text.slice(0, eq), text.slice(eq + 1));
    }
    return out;
  }
  if (isMapping(env)) {
    for (const [key, value] of Object.entries(env)) out.set(key, value === null ? '' : String(value));
    return out;
  }
  throw new Error(`environment must be a list or a mapping, got ${typeof env}`);
}

/** Every string in the document, keys included: compose interpolates both. */
function allStrings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const item of value) allStrings(item, out);
  else if (isMapping(value)) {
    for (const [key, item] of Object.entries(value)) {
      out.push(key);
      allStrings(item, out);
    }
  }
  return out;
}

/**
 * The interpolations in `text` that would be empty or an error with an empty environment, using
 * compose's own grammar: `$$` is a literal dollar, `${NAME:-x}` / `${NAME-x}` carry a default,
 * while `${NAME}`, `${NAME:?msg}`, bare `$NAME` and a lone `$` do not.
 */
function interpolationsWithoutDefault(text: string): string[] {
  const bad: string[] = [];
  const pattern = /\$(?:(\$)|\{([^}]*)\}|([A-Za-z_][A-Za-z0-9_]*)|)/g;
  for (const match of text.matchAll(pattern)) {
    const [whole, escaped, braced] = match;
    if (escaped !== undefined) continue;
    if (braced !== undefined && /^[A-Za-z_][A-Za-z0-9_]*:?-/.test(braced)) continue;
    bad.push(whole === '$' ? `lone "$" in ${JSON.stringify(text.slice(0, 60))}` : whole);
  }
  return bad;
}

describe('interpolationsWithoutDefault', () => {
  it('accepts defaults and escapes, rejects the rest', () => {
    expect(interpolationsWithoutDefault('a ${X:-1} ${Y-2} $$HOME $${Z} $$((n + 1))')).toEqual([]);
    expect(interpolationsWithoutDefault('${X}')).toEqual(['${X}']);
    expect(interpolationsWithoutDefault('$X')).toEqual(['$X']);
    expect(interpolationsWithoutDefault('${X:?required}')).toEqual(['${X:?required}']);
    expect(interpolationsWithoutDefault('cost: 5$')).toHaveLength(1);
  });
});

describe('docker-compose.yml', () => {
  // Read lazily inside each test, so a missing or broken file fails named tests instead of the
  // whole suite at collection time, and any single test can run on its own (`-t`).
  let cached: Mapping | undefined;
  const load = (): { doc: Mapping; services: Mapping } => {
    cached ??= loadCompose();
    return { doc: cached, services: servicesOf(cached) };
  };

  it('exists and is a YAML mapping with a services mapping', () => {
    expect(Object.keys(load().services).length).toBeGreaterThan(0);
  });

  it('names every required service', () => {
    const { services } = load();
    for (const name of REQUIRED_SERVICES) expect(Object.keys(services)).toContain(name);
  });

  it('gives every service an image or a build', () => {
    const { services } = load();
    for (const [name, svc] of Object.entries(services)) {
      expect({ name, ok: isMapping(svc) && (svc['image'] !== undefined || svc['build'] !== undefined) }).toEqual({
        name,
        ok: true,
      });
    }
  });

  it('depends only on services that exist', () => {
    const { doc, services } = load();
    for (const name of Object.keys(services)) {
      for (const dep of dependsOn(service(doc, name))) {
        expect({ service: name, depends_on: dep, exists: dep in services }).toEqual({
          service: name,
          depends_on: dep,
          exists: true,
        });
      }
    }
  });

  it('gives api and worker the database, Temporal and PSP addresses', () => {
    const { doc } = load();
    for (const name of ['api', 'worker']) {
      const env = environment(service(doc, name));
      for (const key of APP_ENV_REQUIRED) {
        expect({ service: name, key, value: env.get(key) ?? '' }).toEqual({
          service: name,
          key,
          value: expect.stringMatching(/\S/),
        });
      }
      // Container-to-container addresses, not the 127.0.0.1 defaults of src/config.ts.
      expect(env.get('TEMPORAL_ADDRESS')).toMatch(/^temporal:\d+$/);
      expect(env.get('PSP_URL')).toMatch(/^https?:\/\/sandbox-psp:\d+/);
      expect(env.get('DATABASE_URL')).toMatch(/@postgres:\d+\//);
    }
  });

  it('has the api listen on all interfaces so its published port is reachable', () => {
    const { doc } = load();
    expect(environment(service(doc, 'api')).get('API_HOST')).toBe('0.0.0.0');
    expect(environment(service(doc, 'sandbox-psp')).get('SANDBOX_HOST')).toBe('0.0.0.0');
  });

  it('gives the app and the sandbox the same PSP API key', () => {
    const { doc } = load();
    expect(environment(service(doc, 'api')).get('PSP_API_KEY')).toBe(
      environment(service(doc, 'sandbox-psp')).get('SANDBOX_API_KEY'),
    );
  });

  it('runs each app process from its entry point', () => {
    const { doc } = load();
    const command = (name: string): string => {
      const cmd = service(doc, name)['command'];
      return Array.isArray(cmd) ? cmd.join(' ') : String(cmd ?? '');
    };
    expect(command('api')).toContain('src/api/main.ts');
    expect(command('worker')).toContain('src/workers/main.ts');
    expect(command('sandbox-psp')).toContain('packages/sandbox-psp/src/main.ts');
  });

  it('has a default for every ${VAR}, so `docker compose config` works with an empty environment', () => {
    const { doc } = load();
    const bad = allStrings(doc).flatMap(interpolationsWithoutDefault);
    expect(bad).toEqual([]);
  });

  it('registers the payment search attributes with their types', () => {
    const { services } = load();
    const setup = allStrings(services).join('\n');
    for (const [name, type] of SEARCH_ATTRIBUTES) expect(setup).toContain(`${name}:${type}`);
    expect(setup).toContain('search-attribute create');
  });
});

describe('Dockerfile', () => {
  // Instructions only: comment lines could otherwise satisfy the checks.
  const instructions = (): string[] =>
    readText('Dockerfile')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));

  it('starts from a base image and has a default command', () => {
    const lines = instructions();
    expect(lines.find((line) => /^FROM\s+\S+/i.test(line))).toBeDefined();
    expect(lines.find((line) => /^CMD\s+\S+/i.test(line))).toBeDefined();
  });

  it('installs runtime dependencies only and does not run as root', () => {
    const lines = instructions();
    expect(lines.some((line) => /npm ci\b.*--omit=dev/.test(line))).toBe(true);
    const users = lines.filter((line) => /^USER\s+/i.test(line));
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1]).not.toMatch(/^USER\s+(root|0)\b/i);
  });

  it('copies the folders every compose command runs from', () => {
    const copied = instructions().filter((line) => /^COPY\s+/i.test(line));
    for (const folder of ['src', 'migrations', 'packages']) {
      expect(copied.some((line) => new RegExp(`^COPY\\s+${folder}\\s`, 'i').test(line))).toBe(true);
    }
  });
});

describe('.dockerignore', () => {
  it('keeps node_modules out of the build context', () => {
    const patterns = readText('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && !line.startsWith('#'));
    expect(patterns.some((p) => /^(\*\*\/|\/)?node_modules\/?$/.test(p))).toBe(true);
  });
});

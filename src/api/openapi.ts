import type { RequestHandler } from 'express';
import swaggerUi from 'swagger-ui-express';
import { z } from 'zod';
import { assert } from '../domain/assert';
import { ErrorEnvelope } from './resources';
import { TAGS, type AuthKind, type ErrorStatus, type ResponseHeader, type RouteDef, type SuccessSpec } from './registry';

/**
 * The OpenAPI 3.1 document, generated from the route registry (src/api/registry.ts) and the zod
 * schemas that validate the requests: nothing here is written by hand per route.
 */

type Json = Record<string, unknown>;
const JSON_MEDIA = 'application/json';

/** Component schemas collected while the paths are generated: zod ids (`.meta({ id })`) become names. */
class SchemaBook {
  readonly schemas: Record<string, Json> = {};

  /** The JSON Schema of `schema` (as sent, or as answered), its named parts moved into components. */
  of(schema: z.ZodType, io: 'input' | 'output', name?: string): Json {
    const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
    // The document's dialect is 3.1's own (JSON Schema 2020-12): no per-schema $schema.
    const { $defs, ...root } = generated;
    delete root.$schema;
    for (const [id, def] of Object.entries(($defs ?? {}) as Record<string, Json>)) this.add(id, def);
    if (name === undefined) return relinked(root);
    this.add(name, root);
    return { $ref: `#/components/schemas/${name}` };
  }

  private add(name: string, schema: Json): void {
    const linked = relinked(schema);
    const known = this.schemas[name];
    assert(known === undefined || JSON.stringify(known) === JSON.stringify(linked), `one shape per schema name: ${name}`);
    this.schemas[name] = linked;
  }
}

/** zod points at its own $defs; the document keeps them in components. */
function relinked(schema: Json): Json {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/$defs/', '"#/components/schemas/')) as Json;
}

const pascal = (operation_id: string): string => operation_id.charAt(0).toUpperCase() + operation_id.slice(1);

/** /v1/payments/:id → /v1/payments/{id} */
export const openApiPath = (express_path: string): string => express_path.replace(/:([A-Za-z_]+)/g, '{$1}');

const SECURITY: Record<AuthKind, Json[]> = {
  merchant: [{ merchantKey: [] }],
  operator: [{ operatorKey: [] }],
  webhook_signature: [{ pspSignature: [] }],
  none: [],
};

const SECURITY_SCHEMES = {
  merchantKey: { type: 'http', scheme: 'bearer', description: 'Your merchant API key: `Authorization: Bearer <key>`' },
  operatorKey: { type: 'http', scheme: 'bearer', description: 'The operators\' ADMIN_API_KEY; without one configured the operator routes answer 404 `ops_disabled`' },
  pspSignature: {
    type: 'apiKey',
    in: 'header',
    name: 'Psp-Signature',
    description: '`t=<unix>,v1=<hex HMAC-SHA256 of "t." + raw body>`, checked against every secret in PSP_WEBHOOK_SECRETS with a 300 s tolerance',
  },
};

const HEADERS: Record<ResponseHeader, Json> = {
  'Idempotent-Replayed': { description: '`true` when this is the stored answer to an earlier request with the same Idempotency-Key', schema: { type: 'string', enum: ['true'] } },
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer', minimum: 1 } },
};

const IDEMPOTENCY_KEY = {
  name: 'Idempotency-Key',
  in: 'header',
  required: true,
  description:
    'Client-chosen key (UUID recommended, ≤ 255 chars). Same key + same body replays the first response with `Idempotent-Replayed: true`; a different body → 422 `idempotency_key_reused`; while the first request is in flight → 409 `idempotency_key_in_use`.',
  schema: { type: 'string', minLength: 1, maxLength: 255 },
};

/** The answers every route of an auth kind may give, whatever the route. */
const AUTH_ERRORS: Record<AuthKind, Partial<Record<ErrorStatus, string>>> = {
  merchant: { 401: 'Missing or invalid API key', 429: 'Too many requests for this API key (rate_limited): retry after Retry-After seconds' },
  operator: { 401: 'Missing or invalid admin key' },
  webhook_signature: {},
  none: {},
};

function headersOf(names: readonly ResponseHeader[]): Json | undefined {
  return names.length === 0 ? undefined : Object.fromEntries(names.map((name) => [name, { $ref: `#/components/headers/${name}` }]));
}

function parametersOf(route: RouteDef, book: SchemaBook): Json[] {
  const path_params = route.params === undefined ? [] : propertiesOf(book.of(route.params, 'output')).map(([name, schema]) => ({ name, in: 'path', required: true, schema }));
  const query = route.query === undefined ? { properties: [], required: [] } : { properties: propertiesOf(book.of(route.query, 'input')), required: requiredOf(book.of(route.query, 'input')) };
  const query_params = query.properties.map(([name, schema]) => ({
    name,
    in: 'query',
    required: query.required.includes(name),
    ...(typeof schema.description === 'string' ? { description: schema.description } : {}),
    schema,
  }));
  const headers = route.idempotent === true ? [{ $ref: '#/components/parameters/IdempotencyKey' }] : [];
  return [...path_params, ...query_params, ...headers];
}

function propertiesOf(schema: Json): [string, Json][] {
  return Object.entries((schema.properties ?? {}) as Record<string, Json>);
}

function requiredOf(schema: Json): string[] {
  return (schema.required ?? []) as string[];
}

function requestBodyOf(route: RouteDef, book: SchemaBook): Json | undefined {
  const body = route.body ?? route.raw_body;
  if (body === undefined) return undefined;
  const schema = book.of(body, 'input', pascal(route.operationId));
  return { required: route.body_optional !== true, content: { [JSON_MEDIA]: { schema } } };
}

function successOf(success: SuccessSpec, book: SchemaBook): Json {
  const media = success.content_type ?? JSON_MEDIA;
  const headers = headersOf(success.headers ?? []);
  return { description: success.description, ...(headers === undefined ? {} : { headers }), content: { [media]: { schema: book.of(success.schema, 'output') } } };
}

function errorsOf(route: RouteDef, book: SchemaBook): Json {
  const errors: Partial<Record<ErrorStatus, string>> = { ...AUTH_ERRORS[route.auth], ...route.errors };
  const schema = route.error_schema === undefined ? book.of(ErrorEnvelope, 'output') : book.of(route.error_schema, 'output');
  const entries = Object.entries(errors).map(([status, description]) => {
    const headers = status === '429' || status === '503' ? headersOf(['Retry-After']) : undefined;
    return [status, { description, ...(headers === undefined ? {} : { headers }), content: { [JSON_MEDIA]: { schema } } }];
  });
  return Object.fromEntries(entries);
}

function operationOf(route: RouteDef, book: SchemaBook): Json {
  const parameters = parametersOf(route, book);
  const request_body = requestBodyOf(route, book);
  return {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description === undefined ? {} : { description: route.description }),
    security: SECURITY[route.auth],
    ...(parameters.length === 0 ? {} : { parameters }),
    ...(request_body === undefined ? {} : { requestBody: request_body }),
    responses: { [String(route.success.status)]: successOf(route.success, book), ...errorsOf(route, book) },
  };
}

function pathsOf(routes: readonly RouteDef[], book: SchemaBook): Record<string, Record<string, Json>> {
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of routes) {
    const path = openApiPath(route.path);
    const item = (paths[path] ??= {});
    assert(item[route.method] === undefined, `one declaration of ${route.method} ${path}`);
    item[route.method] = operationOf(route, book);
  }
  return paths;
}

/** The OpenAPI 3.1 contract of `routes`: what /openapi.json serves and /docs renders. */
export function openApiDocument(routes: readonly RouteDef[]) {
  const book = new SchemaBook();
  const paths = pathsOf(routes, book);
  const tags_used = new Set(routes.map((r) => r.tag));
  return {
    openapi: '3.1.0',
    info: {
      title: 'payment-orchestrator',
      version: '0.1.0',
      description: 'Marketplace pay-in API: payments with one order per seller, refunds, payouts, disputes and the ledger. Amounts are decimal strings in the currency\'s units.',
      license: { name: 'Proprietary', identifier: 'LicenseRef-Proprietary' },
    },
    servers: [{ url: '/', description: 'The API that serves this document' }],
    tags: Object.entries(TAGS)
      .filter(([name]) => tags_used.has(name as keyof typeof TAGS))
      .map(([name, description]) => ({ name, description })),
    paths,
    components: {
      schemas: book.schemas,
      securitySchemes: SECURITY_SCHEMES,
      parameters: { IdempotencyKey: IDEMPOTENCY_KEY },
      headers: HEADERS,
    },
  };
}

export const DOCS_PATH = '/docs';

/**
 * The reference page's whole content policy: scripts, styles and fonts from this server only,
 * plus what Swagger UI needs (inline styles, data: images of its icons). Unlike helmet's default,
 * no upgrade-insecure-requests: the page is also read over plain http (localhost, compose), where
 * upgrading its own asset requests to https would break it.
 */
export const DOCS_CSP = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'frame-ancestors': ["'self'"],
  'base-uri': ["'self'"],
  'form-action': ["'self'"],
};

/**
 * /docs: Swagger UI with the document embedded, its assets served from node_modules (no CDN: the
 * page must work where the API runs, offline included). Asset links are made absolute so that
 * /docs answers the page itself, with or without the final slash.
 */
export function apiReference(document: object): RequestHandler[] {
  const options = { swaggerOptions: { validatorUrl: null, tryItOutEnabled: false } };
  const html = swaggerUi.generateHTML(document, options).replaceAll('"./', `"${DOCS_PATH}/`);
  const page: RequestHandler = (req, res, next) => {
    if (req.path === '/' && (req.method === 'GET' || req.method === 'HEAD')) res.type('html').send(html);
    else next();
  };
  return [page, ...swaggerUi.serveFiles(document, options)];
}

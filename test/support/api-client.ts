import { openApiDocument, openApiPath } from '../../src/api/openapi';
import { ErrorEnvelope } from '../../src/api/resources';
import { API_ROUTES } from '../../src/api/routes';
import type { RouteDef } from '../../src/api/registry';
import type { components, paths } from './api-types';

/**
 * The typed client of the integration tests: paths, parameters and bodies are typed from the
 * generated document (test/support/api-types.ts), and every answer is checked at run time against
 * the route's declared schema for its status, so a shape the document does not promise fails.
 */

type Method = 'get' | 'post' | 'put';
type JsonOf<R> = R extends { content: { 'application/json': infer J } } ? J : never;
type Responses<O> = O extends { responses: infer R } ? R : never;
export type OkBody<O> = JsonOf<Responses<O>[200 & keyof Responses<O>]> | JsonOf<Responses<O>[201 & keyof Responses<O>]> | JsonOf<Responses<O>[202 & keyof Responses<O>]>;
type BodyOf<O> = O extends { requestBody?: { content: { 'application/json': infer B } } } ? B : never;
type PathOf<O> = O extends { parameters: { path: infer X } } ? X : never;
type QueryOf<O> = O extends { parameters: { query?: infer Q } } ? Q : never;
export type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

export type ErrorBody = components['schemas']['Error'];
export type Payment = components['schemas']['Payment'];
export type CreatePaymentRequest = components['schemas']['CreatePayment'];
export type CreateRefundRequest = components['schemas']['CreateRefund'];
export type CreatePayoutRequest = components['schemas']['CreatePayout'];

/** Typed as the success answer; on any other status the body is what the document says instead (check status first). */
export interface ApiReply<T> {
  status: number;
  headers: Headers;
  body: T & Partial<ErrorBody>;
}

export interface ApiRequest<O> {
  key?: string;
  idempotency_key?: string;
  params?: PathOf<O>;
  query?: QueryOf<O>;
  body?: BodyOf<O>;
}

const DOCUMENT = openApiDocument(API_ROUTES);

function routeOf(method: Method, path: string): RouteDef {
  const route = API_ROUTES.find((r) => r.method === method && openApiPath(r.path) === path);
  if (route === undefined) throw new Error(`no route ${method} ${path} in the registry`);
  return route;
}

function urlOf(base_url: string, path: string, params: object = {}, query: object = {}): string {
  const filled = path.replace(/\{([A-Za-z_]+)\}/g, (_, name: string) => encodeURIComponent(String((params as Record<string, unknown>)[name])));
  const search = new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined).map(([k, v]): [string, string] => [k, String(v)]));
  return `${base_url}${filled}${search.size === 0 ? '' : `?${search.toString()}`}`;
}

/** The answer is one the document lists for this operation, with the body its schema promises. */
function checkAnswer(method: Method, path: string, status: number, body: unknown): void {
  const documented = (DOCUMENT.paths[path]?.[method]?.responses ?? {}) as Record<string, unknown>;
  if (documented[String(status)] === undefined) throw new Error(`${method.toUpperCase()} ${path} answered ${status}, not in the document: ${JSON.stringify(body)}`);
  const route = routeOf(method, path);
  const schema = status === route.success.status ? route.success.schema : (route.error_schema ?? ErrorEnvelope);
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new Error(`${method.toUpperCase()} ${path} ${status}: the body is not the documented shape: ${parsed.error.message}`);
}

export async function apiCall<P extends keyof paths, M extends Method>(base_url: string, method: M, path: P, req: ApiRequest<Operation<P, M>> = {}): Promise<ApiReply<OkBody<Operation<P, M>>>> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (req.key !== undefined) headers.authorization = `Bearer ${req.key}`;
  if (req.idempotency_key !== undefined) headers['idempotency-key'] = req.idempotency_key;
  const res = await fetch(urlOf(base_url, path, req.params ?? {}, req.query ?? {}), { method: method.toUpperCase(), headers, body: req.body === undefined ? undefined : JSON.stringify(req.body) });
  const text = await res.text();
  const body: unknown = res.headers.get('content-type')?.includes('json') === true ? JSON.parse(text) : text;
  checkAnswer(method, path, res.status, body);
  return { status: res.status, headers: res.headers, body: body as OkBody<Operation<P, M>> & Partial<ErrorBody> };
}

/**
 * The transport under the Anthropic SDK: its documented `fetch` option,
 * served by undici's `request` (the HTTP client Node's own fetch is built on)
 * instead of the WHATWG fetch layer over it. A model call through fetch costs
 * about twice the CPU and wall time of the same call through `request`
 * (bench/RESULTS.md), and it is on the path of every turn.
 *
 * What fetch does and the SDK relies on is kept: redirects are followed (up
 * to 20, as fetch), aborting the signal ends the request and its body, and,
 * as Node's fetch, proxies from HTTP(S)_PROXY / NO_PROXY are used when
 * NODE_USE_ENV_PROXY=1. No compression is asked for, so none is undone. A
 * request this adapter does not cover (a `Request` object, a streamed or
 * multipart body) goes to the global fetch unchanged.
 *
 * Loading undici has a side effect this module takes back: it installs its
 * own agent as the process-wide dispatcher of older undici versions, the one
 * Node's fetch and discord.js's REST client use. Their requests would then go
 * through undici 8 (discord.js's file uploads broke that way).
 */
import { Readable } from "node:stream"
import type * as Undici from "undici"

/** Statuses whose responses have no body (a `Response` refuses one). */
const nullBodyStatuses: ReadonlySet<number> = new Set([101, 103, 204, 205, 304])

const MAX_REDIRECTIONS = 20

/** The body as undici takes it; undefined for a stream, a form or a blob, which go to the global fetch. */
const requestBody = (body: RequestInit["body"]): { readonly body: string | Uint8Array | null } | undefined => {
  if (body === undefined || body === null) return { body: null }
  if (typeof body === "string" || body instanceof Uint8Array) return { body }
  return undefined
}

const requestHeaders = (headers: RequestInit["headers"]): Record<string, string> => {
  const out: Record<string, string> = {}
  // Headers normalises every accepted shape (record, pairs, Headers) and joins repeated names as fetch
  // would; a Headers (what the SDK passes) already is, and is read as it is.
  for (const [name, value] of headers instanceof Headers ? headers : new Headers(headers)) out[name] = value
  return out
}

const responseHeaders = (headers: Record<string, string | Array<string> | undefined>): Headers => {
  const out = new Headers()
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    if (Array.isArray(value)) for (const item of value) out.append(name, item)
    else out.append(name, value)
  }
  return out
}

/** Where undici 7 (Node's fetch) and undici 6 (discord.js) keep the process-wide dispatcher. */
const LEGACY_GLOBAL_DISPATCHER = Symbol.for("undici.globalDispatcher.1")

/** Imports undici without taking over the dispatcher of Node's fetch and other undici copies. */
export const importUndici = async (): Promise<typeof Undici> => {
  // Creating a Headers loads Node's own undici, which sets its dispatcher if nobody has yet.
  new Headers()
  const before: unknown = Reflect.get(globalThis, LEGACY_GLOBAL_DISPATCHER)
  const undici = await import("undici")
  if (before !== undefined && Reflect.get(globalThis, LEGACY_GLOBAL_DISPATCHER) !== before) {
    Reflect.set(globalThis, LEGACY_GLOBAL_DISPATCHER, before)
  }
  return undici
}

/**
 * HTTP/1.1 only, as Node's fetch: undici 8 offers h2 by ALPN by default and
 * the API's servers take it, which would move every model call onto undici's
 * HTTP/2 client (all concurrent turns multiplexed on one connection), a
 * transport neither measured nor tested here. It holds through a proxy's
 * CONNECT tunnel as well (UndiciFetchTls.test.ts).
 */
const http1Only = { allowH2: false } as const

export const makeFetch = (undici: typeof Undici, env: NodeJS.ProcessEnv = process.env): typeof fetch => {
  const base = env["NODE_USE_ENV_PROXY"] === "1" ? new undici.EnvHttpProxyAgent(http1Only) : new undici.Agent(http1Only)
  const dispatcher = base.compose(undici.interceptors.redirect({ maxRedirections: MAX_REDIRECTIONS }))
  return async (input, init) => {
    const body = requestBody(init?.body)
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : undefined
    if (url === undefined || body === undefined) return fetch(input, init)
    const method = (init?.method ?? "GET").toUpperCase()
    const response = await undici.request(url, {
      method,
      headers: requestHeaders(init?.headers),
      body: body.body,
      ...(init?.signal ? { signal: init.signal } : {}),
      dispatcher
    })
    const headers = responseHeaders(response.headers)
    if (nullBodyStatuses.has(response.statusCode) || method === "HEAD") {
      // Read to its (empty) end, so the connection goes back to the pool; destroying it would error the stream.
      await response.body.dump()
      return new Response(null, { status: response.statusCode, headers })
    }
    return new Response(Readable.toWeb(response.body), { status: response.statusCode, headers })
  }
}

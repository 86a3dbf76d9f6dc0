/**
 * Request bodies read under a byte limit, shared by the OpenAI endpoints and
 * the webhooks. A declared Content-Length over the limit is refused before a
 * byte is read; a chunked body is cut off as soon as it passes the limit.
 */
import { Effect, Stream } from "effect"
import type { Headers, HttpServerRequest } from "effect/http"

export type BodyRead =
  | { readonly _tag: "Ok"; readonly text: string }
  | { readonly _tag: "TooLarge"; readonly limit: number }
  | { readonly _tag: "Unreadable"; readonly message: string }

export type JsonRead =
  | { readonly _tag: "Ok"; readonly json: unknown }
  | { readonly _tag: "TooLarge"; readonly limit: number }
  | { readonly _tag: "Unreadable"; readonly message: string }
  | { readonly _tag: "Malformed"; readonly message: string }

// Fatal: bytes that are not UTF-8 are refused, never turned into U+FFFD and passed on as if they were text.
const decoder = new TextDecoder("utf-8", { fatal: true })

/**
 * How deep a request's JSON may nest. Real requests (messages, content
 * parts, tool schemas) stay within a few dozen levels; far deeper values
 * would overflow the stack of whatever walks them recursively later
 * (validation, error messages, the provider's serialisation).
 */
export const MAX_JSON_DEPTH = 128

/** Whether `value` nests deeper than `limit` (walked with an explicit stack, so the check itself cannot overflow). */
export const nestsDeeperThan = (value: unknown, limit: number): boolean => {
  const stack: Array<{ readonly value: unknown; readonly depth: number }> = [{ value, depth: 0 }]
  while (stack.length > 0) {
    const top = stack.pop()
    if (top === undefined || typeof top.value !== "object" || top.value === null) continue
    if (top.depth >= limit) return true
    for (const child of Object.values(top.value)) {
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: top.depth + 1 })
    }
  }
  return false
}

export const readBody = (request: HttpServerRequest.HttpServerRequest, limit: number): Effect.Effect<BodyRead> =>
  Effect.gen(function*() {
    const declared = request.headers["content-length"]
    if (declared !== undefined && Number(declared) > limit) return { _tag: "TooLarge", limit } as const
    const chunks: Array<Uint8Array> = []
    let size = 0
    let tooLarge = false
    const read = yield* Effect.exit(Stream.runForEachWhile(request.stream, (chunk) =>
      Effect.sync(() => {
        size += chunk.length
        if (size > limit) {
          tooLarge = true
          return false
        }
        chunks.push(chunk)
        return true
      })
    ))
    if (tooLarge) return { _tag: "TooLarge", limit } as const
    if (read._tag === "Failure") return { _tag: "Unreadable", message: "the request body could not be read" } as const
    const bytes = new Uint8Array(size)
    let offset = 0
    for (const chunk of chunks) {
      bytes.set(chunk, offset)
      offset += chunk.length
    }
    try {
      return { _tag: "Ok", text: decoder.decode(bytes) } as const
    } catch {
      return { _tag: "Unreadable", message: "the request body is not valid UTF-8" } as const
    }
  })

/** An empty body reads as `emptyAs` (the webhooks treat it as `{}`). */
export const readJson = (request: HttpServerRequest.HttpServerRequest, limit: number, emptyAs?: unknown): Effect.Effect<JsonRead> =>
  readBody(request, limit).pipe(Effect.map((body): JsonRead => {
    if (body._tag !== "Ok") return body
    if (emptyAs !== undefined && body.text.trim() === "") return { _tag: "Ok", json: emptyAs }
    let json: unknown
    try {
      json = JSON.parse(body.text)
    } catch (error) {
      return { _tag: "Malformed", message: error instanceof Error ? error.message : String(error) }
    }
    if (nestsDeeperThan(json, MAX_JSON_DEPTH)) return { _tag: "Malformed", message: `it nests more than ${MAX_JSON_DEPTH} levels deep` }
    return { _tag: "Ok", json }
  }))

export const clientAddress = (request: HttpServerRequest.HttpServerRequest): string =>
  request.remoteAddress._tag === "Some" ? request.remoteAddress.value : "unknown"

/**
 * The first of `names` set in `headers` (pass `request.headers` read once: the
 * server builds a fresh copy of the headers on every read of it).
 */
export const header = (headers: Headers.Headers, ...names: ReadonlyArray<string>): string | undefined => {
  for (const name of names) {
    const value = headers[name]
    if (value !== undefined && value.trim() !== "") return value.trim()
  }
  return undefined
}

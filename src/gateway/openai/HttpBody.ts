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

const decoder = new TextDecoder()

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
    return { _tag: "Ok", text: decoder.decode(bytes) } as const
  })

/** An empty body reads as `emptyAs` (the webhooks treat it as `{}`). */
export const readJson = (request: HttpServerRequest.HttpServerRequest, limit: number, emptyAs?: unknown): Effect.Effect<JsonRead> =>
  readBody(request, limit).pipe(Effect.map((body): JsonRead => {
    if (body._tag !== "Ok") return body
    if (emptyAs !== undefined && body.text.trim() === "") return { _tag: "Ok", json: emptyAs }
    try {
      const json: unknown = JSON.parse(body.text)
      return { _tag: "Ok", json }
    } catch (error) {
      return { _tag: "Malformed", message: error instanceof Error ? error.message : String(error) }
    }
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

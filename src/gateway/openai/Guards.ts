/**
 * The checks every OpenAI-compatible endpoint (/v1/chat/completions,
 * /v1/models, /v1/responses) makes before it reads a body, and the answers
 * they share. Kept apart from the routes so each surface's module loads
 * without the others'.
 */
import { Effect, Result } from "effect"
import { type HttpServerRequest, HttpServerResponse } from "effect/http"
import { GatewayAuth } from "../auth/GatewayAuth.ts"
import { clientAddress, type JsonRead } from "./HttpBody.ts"
import { errorBody, errorResponse, openAiError, type OpenAiError } from "./OpenAiError.ts"

/** What a switched-off endpoint answers: the gateway's plain 404, as for any unknown path. */
export const notFound = HttpServerResponse.text("Not Found", { status: 404 })

export const methodNotAllowed = (allow: string) =>
  HttpServerResponse.jsonUnsafe(
    errorBody(openAiError(405, `Method not allowed; use ${allow}.`, { code: "method_not_allowed" })),
    { status: 405, headers: { allow } }
  )

export const sseHeaders = { "cache-control": "no-cache", "x-accel-buffering": "no" }

/** The bearer check of every OpenAI endpoint; undefined when the caller may proceed. */
export const authorize = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const auth = yield* GatewayAuth
    const result = yield* Effect.result(auth.checkBearer(request.headers.authorization, clientAddress(request)))
    if (Result.isSuccess(result)) return undefined
    const failure = result.failure
    if (failure.reason === "rate_limited") {
      const seconds = Math.max(1, Math.ceil((failure.retryAfterMs ?? 60_000) / 1000))
      return errorResponse(openAiError(429, `Too many failed authentication attempts; retry after ${seconds} s.`, {
        type: "rate_limit_error",
        code: "rate_limited",
        headers: { "retry-after": String(seconds) }
      }))
    }
    return errorResponse(openAiError(401, `Unauthorized: ${failure.message}. Send the gateway token as "Authorization: Bearer <token>".`, {
      type: "unauthorized",
      code: failure.reason === "missing" ? "missing_api_key" : "invalid_api_key",
      headers: { "www-authenticate": "Bearer" }
    }))
  })

/** The answer to a body that could not be read as JSON; `endpoint` names the config key whose `maxBodyBytes` it passed. */
export const unreadableBody = (body: Exclude<JsonRead, { readonly _tag: "Ok" }>, endpoint: "chatCompletions" | "responses"): OpenAiError => {
  switch (body._tag) {
    case "TooLarge":
      return openAiError(413, `Request body too large: the limit is ${body.limit} bytes (gateway.http.endpoints.${endpoint}.maxBodyBytes).`, { code: "payload_too_large" })
    case "Unreadable":
      return openAiError(400, body.message, { code: "unreadable_body" })
    case "Malformed":
      return openAiError(400, `We could not parse the JSON body of your request: ${body.message}`, { code: "invalid_json" })
  }
}

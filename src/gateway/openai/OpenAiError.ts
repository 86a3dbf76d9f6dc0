/**
 * Errors in the shape OpenAI clients parse: `{error:{message,type,param,code}}`.
 * The official SDKs turn the status into an exception class and read
 * `error.message`, so the message carries the whole explanation.
 */
import { HttpServerResponse } from "effect/http"

export type OpenAiErrorType =
  | "invalid_request_error"
  | "unauthorized"
  | "rate_limit_error"
  | "not_found_error"
  | "api_error"

export interface OpenAiError {
  readonly status: number
  readonly message: string
  readonly type: OpenAiErrorType
  readonly param: string | null
  readonly code: string | null
  readonly headers?: Readonly<Record<string, string>> | undefined
}

export const openAiError = (
  status: number,
  message: string,
  options: {
    readonly type?: OpenAiErrorType | undefined
    readonly param?: string | undefined
    readonly code?: string | undefined
    readonly headers?: Readonly<Record<string, string>> | undefined
  } = {}
): OpenAiError => ({
  status,
  message,
  type: options.type ?? (status >= 500 ? "api_error" : "invalid_request_error"),
  param: options.param ?? null,
  code: options.code ?? null,
  headers: options.headers
})

/** A 400 about one request field. */
export const invalidField = (param: string, message: string, code = "invalid_value"): OpenAiError =>
  openAiError(400, message, { param: param === "" ? undefined : param, code })

export const errorBody = (error: OpenAiError) => ({
  error: { message: error.message, type: error.type, param: error.param, code: error.code }
})

export const errorResponse = (error: OpenAiError): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.jsonUnsafe(errorBody(error), {
    status: error.status,
    headers: { "cache-control": "no-store", ...error.headers }
  })

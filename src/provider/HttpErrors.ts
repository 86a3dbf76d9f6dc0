/**
 * HTTP-level error classification shared by the providers, so Anthropic and
 * OpenAI-compatible servers map the same status to the same ProviderError reason.
 */
import type { ProviderErrorReason } from "./Provider.ts"

interface HeaderSource {
  readonly get: (name: string) => string | null
}

/** Wording used by Anthropic, OpenAI, vLLM, llama.cpp and Ollama when the prompt does not fit. */
const contextOverflowPattern =
  /prompt is too long|context[ _]length|maximum context|context window|exceeds? (the )?(available |model'?s? )?context|exceed context limit|too many tokens/i

export const isContextOverflowMessage = (message: string): boolean => contextOverflowPattern.test(message)

/**
 * `retry-after-ms` wins over `retry-after`, which is either delta-seconds or an
 * HTTP date. Unparseable or negative values are ignored rather than guessed.
 */
export const parseRetryAfterMs = (headers: HeaderSource | undefined, nowMs: number): number | undefined => {
  if (headers === undefined) return undefined
  const ms = headers.get("retry-after-ms")
  if (ms !== null && ms.trim() !== "") {
    const value = Number(ms)
    if (Number.isFinite(value) && value >= 0) return Math.round(value)
  }
  const after = headers.get("retry-after")
  if (after === null || after.trim() === "") return undefined
  const seconds = Number(after)
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined
  const date = Date.parse(after)
  if (Number.isNaN(date)) return undefined
  return Math.max(0, date - nowMs)
}

export const reasonForStatus = (status: number, message: string): ProviderErrorReason => {
  if (status === 401 || status === 403) return "Auth"
  if (status === 413) return "ContextOverflow"
  if (status === 400 || status === 422) return isContextOverflowMessage(message) ? "ContextOverflow" : "BadRequest"
  if (status === 404) return "NotFound"
  if (status === 408) return "Timeout"
  if (status === 429) return "RateLimited"
  if (status === 529) return "Overloaded"
  if (status === 503) return "Overloaded"
  if (status >= 500) return "ServerError"
  if (status >= 400) return isContextOverflowMessage(message) ? "ContextOverflow" : "BadRequest"
  return "Unknown"
}

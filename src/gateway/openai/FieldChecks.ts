/**
 * The field checks the OpenAI-shaped request bodies share (chat completions
 * and OpenResponses): each failure is the OpenAI 400 naming the field. A
 * parser written with them throws `Invalid` at the first bad field, and
 * `parseWith` turns that into a Result, so a nested parser needs no plumbing.
 */
import { Result } from "effect"
import { invalidField, type OpenAiError } from "./OpenAiError.ts"

export const present = (u: unknown): boolean => u !== undefined && u !== null

/** OpenAI's rule for function names. */
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/

class Invalid {
  readonly error: OpenAiError
  constructor(error: OpenAiError) {
    this.error = error
  }
}

export const fail = (param: string, message: string, code?: string): never => {
  throw new Invalid(invalidField(param, message, code))
}

export const numberIn = (body: Readonly<Record<string, unknown>>, key: string, min: number, max: number): number | undefined => {
  const value = body[key]
  if (!present(value)) return undefined
  if (typeof value !== "number" || !Number.isFinite(value)) return fail(key, `Invalid '${key}': expected a number, got ${JSON.stringify(value)}.`, "invalid_type")
  if (value < min) return fail(key, `Invalid '${key}': decimal below minimum value. Expected a value >= ${min}, but got ${value} instead.`, "decimal_below_min_value")
  if (value > max) return fail(key, `Invalid '${key}': decimal above maximum value. Expected a value <= ${max}, but got ${value} instead.`, "decimal_above_max_value")
  return value
}

export const positiveInt = (body: Readonly<Record<string, unknown>>, key: string): number | undefined => {
  const value = body[key]
  if (!present(value)) return undefined
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    return fail(key, `Invalid '${key}': expected a positive integer, got ${JSON.stringify(value)}.`, "invalid_value")
  }
  return value
}

/** Runs a parser written with `fail`: its result, or the 400 of the first bad field. Other exceptions are defects and pass through. */
export const parseWith = <A>(parse: () => A): Result.Result<A, OpenAiError> => {
  try {
    return Result.succeed(parse())
  } catch (error) {
    if (error instanceof Invalid) return Result.fail(error.error)
    throw error
  }
}

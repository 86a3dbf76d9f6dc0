/**
 * The field checks the OpenAI-shaped request bodies share (chat completions
 * and OpenResponses): each failure is the OpenAI 400 naming the field. A
 * parser written with them throws `Invalid` at the first bad field, and
 * `parseWith` turns that into a Result, so a nested parser needs no plumbing.
 */
import { Predicate, Result } from "effect"
import type { ClientTool, ToolChoice } from "./ChatRequest.ts"
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

/** A client's value as an error message shows it: JSON, cut at 200 characters (the value may be megabytes). */
export const shown = (value: unknown): string => {
  const text = JSON.stringify(value) ?? String(value)
  return text.length > 200 ? `${text.slice(0, 200)}…` : text
}

export const fail = (param: string, message: string, code?: string): never => {
  throw new Invalid(invalidField(param, message, code))
}

export const numberIn = (body: Readonly<Record<string, unknown>>, key: string, min: number, max: number): number | undefined => {
  const value = body[key]
  if (!present(value)) return undefined
  if (typeof value !== "number" || !Number.isFinite(value)) return fail(key, `Invalid '${key}': expected a number, got ${shown(value)}.`, "invalid_type")
  if (value < min) return fail(key, `Invalid '${key}': decimal below minimum value. Expected a value >= ${min}, but got ${value} instead.`, "decimal_below_min_value")
  if (value > max) return fail(key, `Invalid '${key}': decimal above maximum value. Expected a value <= ${max}, but got ${value} instead.`, "decimal_above_max_value")
  return value
}

export const positiveInt = (body: Readonly<Record<string, unknown>>, key: string): number | undefined => {
  const value = body[key]
  if (!present(value)) return undefined
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 1) {
    return fail(key, `Invalid '${key}': expected a positive integer, got ${shown(value)}.`, "invalid_value")
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

export const missing = (param: string): never => fail(param, `Missing required parameter: '${param}'.`, "missing_required_parameter")

/**
 * Where a function tool keeps its name: chat completions nests it
 * (`{type, function: {name, ...}}`); OpenResponses puts it on the tool
 * (`{type, name, ...}`) and also takes OpenClaw's older nested shape.
 */
export type ToolShape = "nested" | "flat-or-nested"

export const parseTools = (value: unknown, shape: ToolShape): ReadonlyArray<ClientTool> => {
  if (!present(value)) return []
  if (!Array.isArray(value)) return fail("tools", "Invalid 'tools': expected an array of function tools.", "invalid_type")
  const names = new Set<string>()
  return value.map((tool: unknown, i): ClientTool => {
    const at = `tools[${i}]`
    if (!Predicate.isObject(tool)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    if (tool.type !== "function") return fail(`${at}.type`, `Invalid '${at}.type': only "function" tools are supported, got ${shown(tool.type)}.`, "invalid_value")
    const nested = Predicate.isObject(tool.function)
    if (!nested && shape === "nested") return missing(`${at}.function`)
    const fn = Predicate.isObject(tool.function) ? tool.function : tool
    const base = nested ? `${at}.function` : at
    const name = fn.name
    if (typeof name !== "string" || name === "") return missing(`${base}.name`)
    if (!TOOL_NAME.test(name)) return fail(`${base}.name`, `Invalid '${base}.name': ${shown(name)} must match ${TOOL_NAME}.`, "invalid_value")
    if (names.has(name)) return fail(`${base}.name`, `Invalid '${base}.name': ${shown(name)} is declared twice.`, "invalid_value")
    names.add(name)
    if (present(fn.description) && typeof fn.description !== "string") return fail(`${base}.description`, `Invalid '${base}.description': expected a string.`, "invalid_type")
    if (present(fn.parameters) && !Predicate.isObject(fn.parameters)) return fail(`${base}.parameters`, `Invalid '${base}.parameters': expected a JSON Schema object.`, "invalid_type")
    return {
      name,
      description: typeof fn.description === "string" ? fn.description : undefined,
      parameters: Predicate.isObject(fn.parameters) ? fn.parameters : { type: "object", properties: {} }
    }
  })
}

export const parseToolChoice = (value: unknown, tools: ReadonlyArray<ClientTool>, shape: ToolShape): ToolChoice => {
  if (!present(value)) return { _tag: tools.length === 0 ? "none" : "auto" }
  if (value === "auto" || value === "none") return { _tag: value }
  if (value === "required") {
    if (tools.length === 0) return fail("tool_choice", "Invalid 'tool_choice': \"required\" needs at least one tool in 'tools'.", "invalid_value")
    return { _tag: "required" }
  }
  if (Predicate.isObject(value) && value.type === "function") {
    const nested = Predicate.isObject(value.function) || shape === "nested"
    const name = Predicate.isObject(value.function) ? value.function.name : nested ? undefined : value.name
    const param = nested ? "tool_choice.function.name" : "tool_choice.name"
    if (typeof name !== "string" || name === "") return missing(param)
    if (!tools.some((tool) => tool.name === name)) return fail(param, `Invalid '${param}': ${shown(name)} is not one of the tools in 'tools'.`, "invalid_value")
    return { _tag: "function", name }
  }
  const variant = Predicate.isObject(value) ? shown(value.type) : shown(value)
  const example = shape === "nested" ? `{"type":"function","function":{"name":...}}` : `{"type":"function","name":...}`
  return fail("tool_choice", `Invalid 'tool_choice': ${variant} is not supported; use "auto", "none", "required" or ${example}.`, "invalid_value")
}

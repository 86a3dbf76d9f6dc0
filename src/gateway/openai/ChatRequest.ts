/**
 * The body of POST /v1/chat/completions, checked field by field so every
 * refusal names its `param` the way OpenAI's own 400s do. Fields BeamClaw does
 * not use (logprobs, response_format, metadata...) are accepted and ignored,
 * as OpenClaw does, because common clients always send some of them.
 */
import { Predicate, Result } from "effect"
import { fail, numberIn, parseToolChoice, parseTools, parseWith, positiveInt, present, shown } from "./FieldChecks.ts"
import type { OpenAiError } from "./OpenAiError.ts"

export interface ClientTool {
  readonly name: string
  readonly description?: string | undefined
  readonly parameters: Readonly<Record<string, unknown>>
}

export type ToolChoice =
  | { readonly _tag: "auto" }
  | { readonly _tag: "none" }
  | { readonly _tag: "required" }
  | { readonly _tag: "function"; readonly name: string }

export interface Sampling {
  readonly temperature?: number | undefined
  readonly topP?: number | undefined
  readonly maxTokens?: number | undefined
  readonly frequencyPenalty?: number | undefined
  readonly presencePenalty?: number | undefined
  readonly seed?: number | undefined
  readonly stop?: ReadonlyArray<string> | undefined
}

export interface ToolCall {
  readonly id: string
  readonly name: string
  readonly arguments: string
}

export type ChatRole = "system" | "developer" | "user" | "assistant" | "tool"

export interface ChatMessage {
  readonly role: ChatRole
  readonly text: string
  readonly imageUrls: ReadonlyArray<string>
  /** Where each of `imageUrls` sits in the request body, to name it in an error (an image by URL that cannot be fetched). */
  readonly imageParams?: ReadonlyArray<string> | undefined
  readonly toolCalls: ReadonlyArray<ToolCall>
  /** For tool results: the call they answer and the tool's name (resolved from the call). */
  readonly toolCallId?: string | undefined
  readonly name?: string | undefined
}

export interface ChatRequest {
  /** The raw `model` string, echoed back in responses; undefined means the default agent. */
  readonly model: string | undefined
  readonly messages: ReadonlyArray<ChatMessage>
  readonly stream: boolean
  readonly includeUsage: boolean
  readonly user: string | undefined
  readonly tools: ReadonlyArray<ClientTool>
  readonly toolChoice: ToolChoice
  readonly sampling: Sampling
}


const ROLES = new Set(["system", "developer", "user", "assistant", "tool", "function"])

/** Text of a content field; image_url parts are collected separately. */
const parseContent = (
  content: unknown,
  param: string,
  options: { readonly allowImages: boolean; readonly allowNull: boolean }
): { readonly text: string; readonly imageUrls: ReadonlyArray<string>; readonly imageParams: ReadonlyArray<string> } => {
  if (content === undefined || content === null) {
    return options.allowNull ? { text: "", imageUrls: [], imageParams: [] } : fail(param, `Missing required parameter: '${param}'.`, "missing_required_parameter")
  }
  if (typeof content === "string") return { text: content, imageUrls: [], imageParams: [] }
  if (!Array.isArray(content)) return fail(param, `Invalid '${param}': expected a string or an array of content parts.`, "invalid_type")
  const texts: Array<string> = []
  const imageUrls: Array<string> = []
  const imageParams: Array<string> = []
  content.forEach((part: unknown, j) => {
    const at = `${param}[${j}]`
    if (!Predicate.isObject(part)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    const type = part.type
    if (type === "text" || type === "input_text" || type === "refusal") {
      const text = type === "refusal" ? part.refusal : part.text
      if (typeof text !== "string") return fail(`${at}.${type === "refusal" ? "refusal" : "text"}`, `Invalid '${at}': a ${String(type)} part needs a string.`, "invalid_type")
      texts.push(text)
      return
    }
    if (type === "image_url") {
      if (!options.allowImages) return fail(`${at}.type`, `Invalid '${at}.type': image_url parts are only allowed in user messages.`, "invalid_value")
      const image = part.image_url
      const url = typeof image === "string" ? image : Predicate.isObject(image) && typeof image.url === "string" ? image.url : undefined
      if (url === undefined || url.trim() === "") return fail(`${at}.image_url.url`, `Invalid '${at}.image_url': expected an object with a non-empty 'url'.`, "invalid_value")
      imageUrls.push(url.trim())
      imageParams.push(typeof image === "string" ? `${at}.image_url` : `${at}.image_url.url`)
      return
    }
    return fail(`${at}.type`, `Invalid '${at}.type': content parts of type ${shown(type)} are not supported; use 'text' or 'image_url'.`, "invalid_value")
  })
  return { text: texts.join("\n"), imageUrls, imageParams }
}

const parseToolCalls = (value: unknown, param: string): ReadonlyArray<ToolCall> => {
  if (!present(value)) return []
  if (!Array.isArray(value)) return fail(param, `Invalid '${param}': expected an array.`, "invalid_type")
  return value.map((call: unknown, k): ToolCall => {
    const at = `${param}[${k}]`
    if (!Predicate.isObject(call) || !Predicate.isObject(call.function)) return fail(at, `Invalid '${at}': expected {id, type: "function", function: {name, arguments}}.`, "invalid_type")
    if (call.type !== undefined && call.type !== "function") return fail(`${at}.type`, `Invalid '${at}.type': only "function" tool calls are supported.`, "invalid_value")
    const id = call.id
    const name = call.function.name
    const args = call.function.arguments
    if (typeof id !== "string" || id === "") return fail(`${at}.id`, `Missing required parameter: '${at}.id'.`, "missing_required_parameter")
    if (typeof name !== "string" || name === "") return fail(`${at}.function.name`, `Missing required parameter: '${at}.function.name'.`, "missing_required_parameter")
    return { id, name, arguments: typeof args === "string" ? args : JSON.stringify(args ?? {}) }
  })
}

const parseMessages = (value: unknown): ReadonlyArray<ChatMessage> => {
  if (!present(value)) return fail("messages", "Missing required parameter: 'messages'.", "missing_required_parameter")
  if (!Array.isArray(value)) return fail("messages", "Invalid 'messages': expected an array.", "invalid_type")
  if (value.length === 0) return fail("messages", "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.", "empty_array")
  const calls = new Map<string, string>()
  return value.map((raw: unknown, i): ChatMessage => {
    const at = `messages[${i}]`
    if (!Predicate.isObject(raw)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    const role = raw.role
    if (typeof role !== "string" || !ROLES.has(role)) {
      return fail(`${at}.role`, `Invalid '${at}.role': expected one of 'system', 'developer', 'user', 'assistant', 'tool', got ${shown(role)}.`, "invalid_value")
    }
    const name = typeof raw.name === "string" && raw.name.trim() !== "" ? raw.name.trim() : undefined
    switch (role) {
      case "system":
      case "developer": {
        const { text } = parseContent(raw.content, `${at}.content`, { allowImages: false, allowNull: false })
        return { role, text, imageUrls: [], toolCalls: [] }
      }
      case "user": {
        const { text, imageUrls, imageParams } = parseContent(raw.content, `${at}.content`, { allowImages: true, allowNull: false })
        return { role, text, imageUrls, imageParams, toolCalls: [], name }
      }
      case "assistant": {
        const toolCalls = parseToolCalls(raw.tool_calls, `${at}.tool_calls`)
        const { text } = parseContent(raw.content, `${at}.content`, { allowImages: false, allowNull: true })
        for (const call of toolCalls) calls.set(call.id, call.name)
        return { role, text, imageUrls: [], toolCalls }
      }
      default: {
        // `function` is the legacy spelling of a tool result, answered by name.
        const legacy = role === "function"
        const toolCallId = raw.tool_call_id
        if (!legacy) {
          if (typeof toolCallId !== "string" || toolCallId === "") {
            return fail(`${at}.tool_call_id`, `Missing required parameter: '${at}.tool_call_id'.`, "missing_required_parameter")
          }
          if (!calls.has(toolCallId)) {
            return fail(`${at}.tool_call_id`, `Invalid '${at}.tool_call_id': ${shown(toolCallId)} does not answer a tool call of an earlier assistant message. Messages with role 'tool' must follow an assistant message with 'tool_calls'.`, "invalid_value")
          }
        } else if (name === undefined) {
          return fail(`${at}.name`, `Missing required parameter: '${at}.name' (a 'function' message names the function it answers).`, "missing_required_parameter")
        }
        const { text } = parseContent(raw.content, `${at}.content`, { allowImages: false, allowNull: legacy })
        const id = typeof toolCallId === "string" ? toolCallId : undefined
        return { role: "tool", text, imageUrls: [], toolCalls: [], toolCallId: id, name: name ?? (id === undefined ? undefined : calls.get(id)) }
      }
    }
  })
}



const parseStop = (value: unknown): ReadonlyArray<string> | undefined => {
  if (!present(value)) return undefined
  const list: ReadonlyArray<unknown> = typeof value === "string" ? [value] : Array.isArray(value) ? value : fail("stop", "Invalid 'stop': expected a string or an array of strings.", "invalid_type")
  if (list.length > 4) return fail("stop", `Invalid 'stop': at most 4 stop sequences, got ${list.length}.`, "array_above_max_length")
  return list.map((entry, i) => typeof entry === "string" && entry !== "" ? entry : fail(`stop[${i}]`, `Invalid 'stop[${i}]': expected a non-empty string.`, "invalid_value"))
}

const parse = (body: unknown): ChatRequest => {
  if (!Predicate.isObject(body)) return fail("", "The request body must be a JSON object.", "invalid_type")
  const model = body.model
  if (present(model) && (typeof model !== "string" || model.trim() === "")) return fail("model", "Invalid 'model': expected a non-empty string.", "invalid_type")
  const stream = body.stream
  if (present(stream) && typeof stream !== "boolean") return fail("stream", "Invalid 'stream': expected a boolean.", "invalid_type")
  const streamOptions = body.stream_options
  if (present(streamOptions)) {
    if (stream !== true) return fail("stream_options", "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "invalid_value")
    if (!Predicate.isObject(streamOptions)) return fail("stream_options", "Invalid 'stream_options': expected an object.", "invalid_type")
    if (present(streamOptions.include_usage) && typeof streamOptions.include_usage !== "boolean") {
      return fail("stream_options.include_usage", "Invalid 'stream_options.include_usage': expected a boolean.", "invalid_type")
    }
  }
  const n = body.n
  if (present(n) && n !== 1) return fail("n", `Invalid 'n': only n=1 is supported (one agent, one answer), got ${shown(n)}.`, "invalid_value")
  const user = body.user
  if (present(user) && typeof user !== "string") return fail("user", "Invalid 'user': expected a string.", "invalid_type")
  const seed = body.seed
  if (present(seed) && (typeof seed !== "number" || !Number.isSafeInteger(seed))) return fail("seed", `Invalid 'seed': expected an integer, got ${shown(seed)}.`, "invalid_type")
  const maxCompletion = positiveInt(body, "max_completion_tokens")
  const maxTokens = positiveInt(body, "max_tokens")
  const sampling: Sampling = {
    temperature: numberIn(body, "temperature", 0, 2),
    topP: numberIn(body, "top_p", 0, 1),
    frequencyPenalty: numberIn(body, "frequency_penalty", -2, 2),
    presencePenalty: numberIn(body, "presence_penalty", -2, 2),
    maxTokens: maxCompletion ?? maxTokens,
    seed: typeof seed === "number" ? seed : undefined,
    stop: parseStop(body.stop)
  }
  const tools = parseTools(body.tools, "nested")
  const toolChoice = parseToolChoice(body.tool_choice, tools, "nested")
  const messages = parseMessages(body.messages)
  return {
    model: typeof model === "string" ? model.trim() : undefined,
    messages,
    stream: stream === true,
    includeUsage: Predicate.isObject(streamOptions) && streamOptions.include_usage === true,
    user: typeof user === "string" && user.trim() !== "" ? user.trim() : undefined,
    tools,
    toolChoice,
    sampling
  }
}

export const parseChatRequest = (body: unknown): Result.Result<ChatRequest, OpenAiError> => {
  return parseWith(() => parse(body))
}

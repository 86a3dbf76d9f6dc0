/**
 * The body of POST /v1/responses (OpenResponses), checked field by field so
 * every refusal names its `param`, as the chat completions parser does. The
 * `input` items become the same ChatMessage list the chat endpoint builds, so
 * one prompt builder (Prompt.ts) renders both. Fields OpenClaw accepts and
 * ignores (max_tool_calls, reasoning, metadata, store, truncation, and any
 * the parser does not know) are accepted and ignored.
 *
 * `input_file` parts of user messages are collected (InputFiles.ts reads
 * them). Files and images by URL are kept as URLs here, for the route to
 * fetch (UrlSources.ts). Not built: files and images by id, PDFs (OpenClaw
 * extracts them). They are refused with a 400 naming the part.
 */
import { Predicate, Result } from "effect"
import type { ChatMessage, ClientTool, Sampling, ToolCall, ToolChoice } from "../openai/ChatRequest.ts"
import { fail, missing, numberIn, parseToolChoice, parseTools, parseWith, positiveInt, present, shown } from "../openai/FieldChecks.ts"
import type { OpenAiError } from "../openai/OpenAiError.ts"
import { type InputFile, parseInputFile, partUrl } from "./InputFiles.ts"

export interface ResponsesRequest {
  /** The raw `model` string, echoed back; undefined means the default agent. */
  readonly model: string | undefined
  /** `instructions` first (as a system message), then the input items in order. */
  readonly messages: ReadonlyArray<ChatMessage>
  readonly instructions: string | undefined
  readonly stream: boolean
  readonly user: string | undefined
  readonly tools: ReadonlyArray<ClientTool>
  readonly toolChoice: ToolChoice
  readonly sampling: Sampling
  readonly maxOutputTokens: number | undefined
  /** `metadata` as sent (string values only, as OpenAI allows), echoed in the response. */
  readonly metadata: Readonly<Record<string, string>>
  /** The response this one continues: its session is reused when the request is in that response's scope. */
  readonly previousResponseId: string | undefined
  /** The input_file parts of the last user message, in order: for this turn's system prompt, not its history. */
  readonly files: ReadonlyArray<InputFile>
}



const string = (value: unknown, param: string): string => typeof value === "string" ? value : fail(param, `Invalid '${param}': expected a string.`, "invalid_type")

/**
 * An input_image part as a data: URI or an http(s) URL to fetch, with where it
 * sits in the body; OpenResponses' `source` and OpenAI's `image_url` spellings both work.
 */
const imageUrl = (part: Readonly<Record<string, unknown>>, at: string): { readonly at: string; readonly url: string } => {
  const source = part.source
  if (present(source)) {
    if (!Predicate.isObject(source)) return fail(`${at}.source`, `Invalid '${at}.source': expected an object.`, "invalid_type")
    if (source.type === "url") return { at: `${at}.source.url`, url: partUrl(source.url, `${at}.source.url`) }
    if (source.type !== "base64") return fail(`${at}.source.type`, `Invalid '${at}.source.type': expected "base64" or "url", got ${shown(source.type)}.`, "invalid_value")
    const mediaType = source.media_type
    const data = source.data
    if (typeof mediaType !== "string" || mediaType.trim() === "") return missing(`${at}.source.media_type`)
    if (typeof data !== "string" || data.trim() === "") return missing(`${at}.source.data`)
    return { at, url: `data:${mediaType.trim()};base64,${data}` }
  }
  const url = part.image_url
  if (typeof url === "string" && url.trim() !== "") {
    return { at: `${at}.image_url`, url: /^data:/i.test(url.trim()) ? url.trim() : partUrl(url, `${at}.image_url`) }
  }
  if (present(part.file_id)) {
    return fail(`${at}.file_id`, `Invalid '${at}.file_id': BeamClaw keeps no uploaded files; send the image inline as base64 (source {type: "base64", media_type, data} or a data: URI) or by URL.`, "unsupported_image_source")
  }
  return fail(at, `Invalid '${at}': an input_image needs a 'source' ({type: "base64", media_type, data} or {type: "url", url}) or a data: or http(s) URL in 'image_url'.`, "missing_required_parameter")
}

/** Text of a message's content, with the data: URIs of its images (user messages only). */
const parseContent = (
  content: unknown,
  param: string,
  allowImages: boolean,
  files: Array<InputFile>
): { readonly text: string; readonly imageUrls: ReadonlyArray<string>; readonly imageParams: ReadonlyArray<string> } => {
  if (!present(content)) return missing(param)
  if (typeof content === "string") return { text: content, imageUrls: [], imageParams: [] }
  if (!Array.isArray(content)) return fail(param, `Invalid '${param}': expected a string or an array of content parts.`, "invalid_type")
  const texts: Array<string> = []
  const imageUrls: Array<string> = []
  const imageParams: Array<string> = []
  content.forEach((part: unknown, j) => {
    const at = `${param}[${j}]`
    if (!Predicate.isObject(part)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    switch (part.type) {
      case "input_text":
      case "output_text":
      case "text":
        texts.push(string(part.text, `${at}.text`))
        return
      case "refusal":
        texts.push(string(part.refusal, `${at}.refusal`))
        return
      case "input_image":
        if (!allowImages) return fail(`${at}.type`, `Invalid '${at}.type': input_image parts are only allowed in user messages.`, "invalid_value")
        {
          const image = imageUrl(part, at)
          imageUrls.push(image.url)
          imageParams.push(image.at)
        }
        return
      case "input_file":
        if (!allowImages) return fail(`${at}.type`, `Invalid '${at}.type': input_file parts are only allowed in user messages.`, "invalid_value")
        files.push(parseInputFile(part, at))
        return
      default:
        return fail(`${at}.type`, `Invalid '${at}.type': content parts of type ${shown(part.type)} are not supported; use 'input_text', 'output_text' or 'input_image'.`, "invalid_value")
    }
  })
  return { text: texts.join("\n"), imageUrls, imageParams }
}

/** A function_call_output's `output`: a string, or input_text parts. */
const parseOutput = (output: unknown, param: string): string => {
  if (typeof output === "string") return output
  if (!Array.isArray(output)) return present(output) ? fail(param, `Invalid '${param}': expected a string or an array of input_text parts.`, "invalid_type") : missing(param)
  return output.map((part: unknown, j) => {
    const at = `${param}[${j}]`
    if (!Predicate.isObject(part)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    if (part.type !== "input_text") return fail(`${at}.type`, `Invalid '${at}.type': only input_text parts are supported in a function_call_output, got ${shown(part.type)}.`, "invalid_value")
    return string(part.text, `${at}.text`)
  }).join("\n")
}

const parseInput = (value: unknown, files: Array<InputFile>): ReadonlyArray<ChatMessage> => {
  if (!present(value)) return missing("input")
  if (typeof value === "string") {
    if (value.trim() === "") return fail("input", "Invalid 'input': the string is empty.", "invalid_value")
    return [{ role: "user", text: value, imageUrls: [], toolCalls: [] }]
  }
  if (!Array.isArray(value)) return fail("input", "Invalid 'input': expected a string or an array of input items.", "invalid_type")
  if (value.length === 0) return fail("input", "Invalid 'input': empty array. Expected an array with minimum length 1, but got an empty array instead.", "empty_array")
  const calls = new Map<string, string>()
  const messages: Array<ChatMessage> = []
  value.forEach((raw: unknown, i) => {
    const at = `input[${i}]`
    if (!Predicate.isObject(raw)) return fail(at, `Invalid '${at}': expected an object.`, "invalid_type")
    // OpenAI's "easy" input message has a role and no type.
    const type = raw.type ?? (present(raw.role) ? "message" : undefined)
    switch (type) {
      case "message": {
        const role = raw.role
        if (role !== "system" && role !== "developer" && role !== "user" && role !== "assistant") {
          return fail(`${at}.role`, `Invalid '${at}.role': expected one of 'system', 'developer', 'user', 'assistant', got ${shown(role)}.`, "invalid_value")
        }
        // Files are read from the current user message only (as images are, and as OpenClaw does): a newer one replaces them.
        if (role === "user") files.length = 0
        const { text, imageUrls, imageParams } = parseContent(raw.content, `${at}.content`, role === "user", files)
        messages.push({ role, text, imageUrls, imageParams, toolCalls: [] })
        return
      }
      case "function_call": {
        const callId = raw.call_id
        const name = raw.name
        const args = raw.arguments
        if (typeof callId !== "string" || callId === "") return missing(`${at}.call_id`)
        if (typeof name !== "string" || name === "") return missing(`${at}.name`)
        if (present(args) && typeof args !== "string") return fail(`${at}.arguments`, `Invalid '${at}.arguments': expected a JSON string.`, "invalid_type")
        const call: ToolCall = { id: callId, name, arguments: typeof args === "string" ? args : "{}" }
        calls.set(callId, name)
        // The calls of one model reply follow its message: keep them on that assistant entry.
        const previous = messages.at(-1)
        if (previous !== undefined && previous.role === "assistant") {
          messages[messages.length - 1] = { ...previous, toolCalls: [...previous.toolCalls, call] }
        } else {
          messages.push({ role: "assistant", text: "", imageUrls: [], toolCalls: [call] })
        }
        return
      }
      case "function_call_output": {
        const callId = raw.call_id
        if (typeof callId !== "string" || callId === "") return missing(`${at}.call_id`)
        const output = parseOutput(raw.output, `${at}.output`)
        // A continuation may carry only the result (its call is in the session's own transcript),
        // so the call id stands in for the tool's name, as OpenClaw labels it.
        messages.push({ role: "tool", text: output, imageUrls: [], toolCalls: [], toolCallId: callId, name: calls.get(callId) ?? callId })
        return
      }
      case "reasoning":
      case "item_reference":
        return
      case "input_file":
        return fail(`${at}.type`, `Invalid '${at}.type': an input_file goes in a user message's content, not directly in 'input'.`, "invalid_value")
      default:
        return fail(`${at}.type`, `Invalid '${at}.type': input items of type ${shown(type)} are not supported; use 'message', 'function_call' or 'function_call_output'.`, "invalid_value")
    }
  })
  return messages
}



const parseMetadata = (value: unknown): Readonly<Record<string, string>> => {
  if (!present(value)) return {}
  if (!Predicate.isObject(value) || Array.isArray(value)) return fail("metadata", "Invalid 'metadata': expected an object of strings.", "invalid_type")
  const entries: Array<[string, string]> = []
  for (const [key, entry] of Object.entries(value)) {
    if (typeof entry !== "string") return fail(`metadata.${key}`, `Invalid 'metadata.${key}': expected a string.`, "invalid_type")
    entries.push([key, entry])
  }
  return Object.fromEntries(entries)
}

const parse = (body: unknown): ResponsesRequest => {
  if (!Predicate.isObject(body) || Array.isArray(body)) return fail("", "The request body must be a JSON object.", "invalid_type")
  const model = body.model
  if (present(model) && (typeof model !== "string" || model.trim() === "")) return fail("model", "Invalid 'model': expected a non-empty string.", "invalid_type")
  const stream = body.stream
  if (present(stream) && typeof stream !== "boolean") return fail("stream", "Invalid 'stream': expected a boolean.", "invalid_type")
  const user = body.user
  if (present(user) && typeof user !== "string") return fail("user", "Invalid 'user': expected a string.", "invalid_type")
  const instructions = body.instructions
  if (present(instructions) && typeof instructions !== "string") return fail("instructions", "Invalid 'instructions': expected a string.", "invalid_type")
  const previous = body.previous_response_id
  if (present(previous) && typeof previous !== "string") return fail("previous_response_id", "Invalid 'previous_response_id': expected a string.", "invalid_type")
  if (present(body.background) && body.background !== false) return fail("background", "Invalid 'background': background responses are not supported.", "invalid_value")
  positiveInt(body, "max_tool_calls")
  const maxOutputTokens = positiveInt(body, "max_output_tokens")
  const sampling: Sampling = {
    temperature: numberIn(body, "temperature", 0, 2),
    topP: numberIn(body, "top_p", 0, 1),
    maxTokens: maxOutputTokens
  }
  const metadata = parseMetadata(body.metadata)
  const tools = parseTools(body.tools, "flat-or-nested")
  const toolChoice = parseToolChoice(body.tool_choice, tools, "flat-or-nested")
  const files: Array<InputFile> = []
  const input = parseInput(body.input, files)
  const system: ReadonlyArray<ChatMessage> = typeof instructions === "string" && instructions.trim() !== ""
    ? [{ role: "system", text: instructions, imageUrls: [], toolCalls: [] }]
    : []
  return {
    model: typeof model === "string" ? model.trim() : undefined,
    messages: [...system, ...input],
    instructions: typeof instructions === "string" ? instructions : undefined,
    stream: stream === true,
    user: typeof user === "string" && user.trim() !== "" ? user.trim() : undefined,
    tools,
    toolChoice,
    sampling,
    maxOutputTokens,
    metadata,
    previousResponseId: typeof previous === "string" && previous.trim() !== "" ? previous.trim() : undefined,
    files
  }
}

export const parseResponsesRequest = (body: unknown): Result.Result<ResponsesRequest, OpenAiError> => {
  return parseWith(() => parse(body))
}

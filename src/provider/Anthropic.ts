/**
 * Anthropic Messages API provider on top of the official SDK. The SDK's own
 * retries are off (`maxRetries: 0`): retry and failover belong to ModelRouter,
 * which knows whether text has already been streamed to the user.
 *
 * The SDK (1.4 MB of code) and undici, its transport (UndiciFetch.ts), are
 * imported on the first request, not at start-up: the gateway answers /health
 * without them.
 */
import type Anthropic from "@anthropic-ai/sdk"
import type {
  Base64ImageSource,
  ContentBlockParam,
  ImageBlockParam,
  MessageCreateParamsStreaming,
  MessageParam,
  RawMessageStreamEvent,
  TextBlockParam,
  ThinkingConfigParam,
  Tool,
  ToolResultBlockParam
} from "@anthropic-ai/sdk/resources/messages"
import { Array as Arr, Cause, Clock, Effect, type Pull, Redacted, Stream } from "effect"
import { Sse } from "effect/encoding"
import type {
  AssistantMessage,
  ImagePart,
  Message,
  StopReason,
  TextPart,
  ThinkingPart,
  ToolCallPart,
  Usage
} from "../agent/Message.ts"
import { isContextOverflowMessage, parseRetryAfterMs, reasonForStatus } from "./HttpErrors.ts"
import { importUndici, makeFetch } from "./UndiciFetch.ts"
import {
  type Provider,
  ProviderError,
  type ProviderErrorReason,
  type ProviderEvent,
  type ProviderRequest,
  type ThinkingLevel
} from "./Provider.ts"

export interface AnthropicProviderOptions {
  /** The configured provider id (`anthropic` unless renamed in config). */
  readonly id: string
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** Defaults to the SDK's choice: `ANTHROPIC_BASE_URL`, else https://api.anthropic.com. */
  readonly baseUrl?: string | undefined
  readonly headers?: Record<string, string> | undefined
  /** Time allowed until the response headers arrive; the SDK default is 10 minutes. */
  readonly requestTimeoutMs?: number | undefined
}

/** Extended-thinking budgets per level, in tokens. */
export const thinkingBudgets: Record<Exclude<ThinkingLevel, "off">, number> = {
  minimal: 1024,
  low: 2048,
  medium: 8192,
  high: 16384,
  xhigh: 32000
}

/** The SDK module; one import shared by every provider instance. */
export type AnthropicSdk = typeof import("@anthropic-ai/sdk")

interface SdkModules {
  readonly sdk: AnthropicSdk
  /** The SDK's transport (UndiciFetch.ts), one connection pool shared by every provider instance. */
  readonly fetch: typeof fetch
}

let sdkImport: Promise<SdkModules> | undefined
/** The modules once loaded: every call after the first takes them without awaiting a promise. */
let sdkLoaded: SdkModules | undefined
const importSdk = (): Promise<SdkModules> => {
  if (sdkImport === undefined) {
    const loading = Promise.all([import("@anthropic-ai/sdk"), importUndici()]).then(([sdk, undici]) => (sdkLoaded = { sdk, fetch: makeFetch(undici) }))
    sdkImport = loading
    // A failed import is not kept, so a later request tries again.
    loading.catch(() => {
      if (sdkImport === loading) sdkImport = undefined
    })
  }
  return sdkImport
}

/**
 * The SDK's OpenTelemetry spans, as its own default would have them, when
 * someone can see them: an OpenTelemetry tracer provider registered in this
 * process (OpenTelemetry's global, under its API's major version), or the
 * SDK's ANTHROPIC_OPEN_TELEMETRY variables set. Otherwise off: every call
 * would start and drop a span nobody records (a few µs per model call).
 */
export const sdkTelemetry = (env: NodeJS.ProcessEnv = process.env): false | undefined => {
  if (Object.keys(env).some((name) => name.startsWith("ANTHROPIC_OPEN_TELEMETRY"))) return undefined
  const api: unknown = Reflect.get(globalThis, Symbol.for("opentelemetry.js.api.1"))
  return typeof api === "object" && api !== null && "trace" in api ? undefined : false
}

export const makeAnthropicProvider = (options: AnthropicProviderOptions): Provider => {
  const id = options.id
  const apiKey = options.apiKey
  let client: Anthropic | undefined

  const stream = (request: ProviderRequest): Stream.Stream<ProviderEvent, ProviderError> =>
    Stream.unwrap(Effect.gen(function*() {
      if (apiKey === undefined) {
        return yield* new ProviderError({
          provider: id,
          model: request.model,
          reason: "MissingApiKey",
          message:
            `No API key for provider "${id}". Set ANTHROPIC_API_KEY or models.providers.${id}.apiKey in the config.`
        })
      }
      const { sdk, fetch } = sdkLoaded ?? (yield* Effect.tryPromise({
        try: importSdk,
        catch: (cause) =>
          new ProviderError({
            provider: id,
            model: request.model,
            reason: "Unknown",
            message: `Could not load the Anthropic SDK: ${cause instanceof Error ? cause.message : String(cause)}`
          })
      }))
      client ??= new sdk.default({
        apiKey: Redacted.value(apiKey),
        baseURL: options.baseUrl,
        maxRetries: 0,
        timeout: options.requestTimeoutMs,
        defaultHeaders: options.headers,
        fetch,
        // Errors reach the caller as ProviderErrors; the SDK must not also log them to the console.
        logLevel: "off",
        openTelemetry: sdkTelemetry()
      })
      const api = client
      const toError = (cause: unknown) => toProviderError(cause, id, request.model, Date.now(), sdk)
      // Closing the stream's scope early (failure or interruption) aborts the HTTP request;
      // a completed response has nothing left to abort (and abort() costs a DOMException).
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (controller, exit) => exit._tag === "Success" ? Effect.void : Effect.sync(() => controller.abort())
      )
      const params = toAnthropicParams(request)
      // The SDK builds and sends the request (auth, headers, timeout, HTTP
      // errors); the body is read here. Its own SSE iterator costs two async
      // generators and a promise per event; this reads a network chunk at a
      // time and hands on everything that chunk completed as one batch.
      const response = yield* Effect.tryPromise({
        try: () => api.messages.create(params, { signal: controller.signal }).asResponse(),
        catch: toError
      })
      const broken = (cause: unknown) =>
        new ProviderError({
          provider: id,
          model: request.model,
          reason: "Connection",
          message: `The connection to the model API broke mid-answer: ${cause instanceof Error ? cause.message : String(cause)}`
        })
      return Stream.fromPull(Effect.succeed(readEvents(response, makeAssembler(id, request.model), broken)))
    }))

  return { id, stream }
}

// ---------------------------------------------------------------------------
// Request mapping

const imageMimeTypes = ["image/jpeg", "image/png", "image/gif", "image/webp"] as const
type ImageMimeType = Base64ImageSource["media_type"]
const isImageMimeType = (mime: string): mime is ImageMimeType =>
  imageMimeTypes.some((allowed) => allowed === mime)

const imageBlock = (part: ImagePart): ImageBlockParam | TextBlockParam =>
  isImageMimeType(part.mimeType)
    ? { type: "image", source: { type: "base64", media_type: part.mimeType, data: part.data } }
    : { type: "text", text: `[image omitted: ${part.mimeType} is not supported by Anthropic]` }

/** Anthropic tool ids must match ^[a-zA-Z0-9_-]+$; ids from other providers may not. */
const toolId = (id: string): string => id.replace(/[^a-zA-Z0-9_-]/g, "_")

const userContent = (
  parts: ReadonlyArray<TextPart | ImagePart>
): Array<TextBlockParam | ImageBlockParam> => {
  const blocks: Array<TextBlockParam | ImageBlockParam> = []
  for (const part of parts) {
    if (part.type === "text") {
      // The API rejects empty text blocks.
      if (part.text.length > 0) blocks.push({ type: "text", text: part.text })
    } else {
      blocks.push(imageBlock(part))
    }
  }
  return blocks
}

const assistantContent = (
  parts: ReadonlyArray<TextPart | ThinkingPart | ToolCallPart>
): Array<ContentBlockParam> => {
  const blocks: Array<ContentBlockParam> = []
  for (const part of parts) {
    switch (part.type) {
      case "text":
        if (part.text.length > 0) blocks.push({ type: "text", text: part.text })
        break
      case "thinking":
        // Unsigned thinking (from another provider, or an aborted turn) would be rejected.
        if (part.thinkingSignature !== undefined && part.thinkingSignature.length > 0) {
          blocks.push({ type: "thinking", thinking: part.thinking, signature: part.thinkingSignature })
        }
        break
      case "toolCall":
        blocks.push({ type: "tool_use", id: toolId(part.id), name: part.name, input: part.arguments ?? {} })
        break
    }
  }
  return blocks
}

/** One message's blocks in the API's shape, with the role it is sent under. */
interface ConvertedMessage {
  readonly role: "user" | "assistant"
  /** Shared by every request that sends the message: never appended to. */
  readonly blocks: Array<ContentBlockParam>
}

const convertMessage = (message: Message): ConvertedMessage => {
  switch (message.role) {
    case "user":
      return {
        role: "user",
        blocks: typeof message.content === "string"
          ? (message.content.length > 0 ? [{ type: "text", text: message.content }] : [])
          : userContent(message.content)
      }
    case "assistant":
      return { role: "assistant", blocks: assistantContent(message.content) }
    case "toolResult": {
      const content = userContent(message.content)
      const block: ToolResultBlockParam = {
        type: "tool_result",
        tool_use_id: toolId(message.toolCallId),
        ...(content.length > 0 ? { content } : {}),
        ...(message.isError ? { is_error: true } : {})
      }
      return { role: "user", blocks: [block] }
    }
  }
}

/**
 * Messages are immutable and a session sends the same ones again on every
 * turn, so each is converted once; a turn then only strings them together.
 */
const converted = new WeakMap<Message, ConvertedMessage>()

const toMessageParams = (messages: ReadonlyArray<Message>): Array<MessageParam> => {
  const out: Array<{ role: "user" | "assistant"; content: Array<ContentBlockParam> }> = []
  for (const message of messages) {
    let conversion = converted.get(message)
    if (conversion === undefined) {
      conversion = convertMessage(message)
      converted.set(message, conversion)
    }
    if (conversion.blocks.length === 0) continue
    // The API requires alternating roles, so consecutive same-role messages
    // (tool results followed by a user message, say) share one API message;
    // the cached block arrays are never appended to.
    const last = out[out.length - 1]
    if (last !== undefined && last.role === conversion.role) last.content = [...last.content, ...conversion.blocks]
    else out.push({ role: conversion.role, content: conversion.blocks })
  }
  return out
}

const toAnthropicTool = (tool: ProviderRequest["tools"][number]): Tool => ({
  name: tool.name,
  description: tool.description,
  input_schema: { ...tool.inputSchema, type: "object" }
})

export const toAnthropicParams = (request: ProviderRequest): MessageCreateParamsStreaming => {
  const level = request.thinking
  const budget = level === undefined || level === "off" ? undefined : thinkingBudgets[level]
  const thinking: ThinkingConfigParam | undefined = budget === undefined
    ? undefined
    : { type: "enabled", budget_tokens: budget }
  // max_tokens must exceed the thinking budget; when it does not, the caller's
  // maxTokens becomes the answer's share on top of the budget.
  const maxTokens = budget === undefined || request.maxTokens > budget ? request.maxTokens : budget + request.maxTokens
  return {
    model: request.model,
    max_tokens: maxTokens,
    messages: toMessageParams(request.messages),
    stream: true,
    ...(request.system.length > 0 ? { system: request.system } : {}),
    ...(request.tools.length > 0 ? { tools: request.tools.map(toAnthropicTool) } : {}),
    // request.temperature and topP are not sent: the Messages API deprecated
    // sampling parameters and SDK 1.x no longer has fields for them.
    ...(request.stopSequences !== undefined && request.stopSequences.length > 0 ? { stop_sequences: [...request.stopSequences] } : {}),
    ...(thinking !== undefined ? { thinking } : {}),
    // The API refuses a forced tool call while extended thinking is on; the turn's instructions still ask for it then.
    ...(request.toolChoice !== undefined && thinking === undefined && request.tools.length > 0
      ? { tool_choice: request.toolChoice._tag === "any" ? { type: "any" } : { type: "tool", name: request.toolChoice.name } }
      : {})
  }
}

// ---------------------------------------------------------------------------
// Stream assembly

type Block =
  | { readonly kind: "text"; text: string }
  | { readonly kind: "thinking"; thinking: string; signature: string }
  | { readonly kind: "toolCall"; readonly id: string; readonly name: string; json: string; args: unknown }
  | { readonly kind: "ignored" }

const mapStopReason = (reason: string | null, hasToolCalls: boolean): StopReason => {
  switch (reason) {
    case "tool_use":
      return "toolUse"
    case "max_tokens":
    case "model_context_window_exceeded":
      return "length"
    case "end_turn":
    case "stop_sequence":
    case "refusal":
    case "pause_turn":
      return "stop"
    default:
      return hasToolCalls ? "toolUse" : "stop"
  }
}

interface UsageFields {
  readonly input_tokens?: number | null | undefined
  readonly output_tokens?: number | null | undefined
  readonly cache_read_input_tokens?: number | null | undefined
  readonly cache_creation_input_tokens?: number | null | undefined
}

const startedEvents: ReadonlyArray<ProviderEvent> = [{ _tag: "Started" }]

const makeAssembler = (provider: string, model: string) => {
  const blocks = new Map<number, Block>()
  let started = false
  let stopped = false
  let stopReason: string | null = null
  let input = 0
  let output = 0
  let cacheRead = 0
  let cacheWrite = 0

  const malformed = (message: string) =>
    new ProviderError({ provider, model, reason: "MalformedStream", message })

  // message_delta carries cumulative counts, so later non-null values replace earlier ones.
  const takeUsage = (usage: UsageFields) => {
    if (typeof usage.input_tokens === "number") input = usage.input_tokens
    if (typeof usage.output_tokens === "number") output = usage.output_tokens
    if (typeof usage.cache_read_input_tokens === "number") cacheRead = usage.cache_read_input_tokens
    if (typeof usage.cache_creation_input_tokens === "number") cacheWrite = usage.cache_creation_input_tokens
  }

  /** One SSE event in; what it tells the caller out, or why the stream is broken. */
  const push = (event: RawMessageStreamEvent): ReadonlyArray<ProviderEvent> | ProviderError => {
    if (stopped) return []
    if (!started && event.type !== "message_start") {
      return malformed(`Stream began with "${event.type}" instead of message_start`)
    }
    switch (event.type) {
      case "message_start":
        started = true
        takeUsage(event.message.usage)
        return startedEvents
      case "content_block_start": {
        const block = event.content_block
        switch (block.type) {
          case "text":
            blocks.set(event.index, { kind: "text", text: block.text })
            return block.text.length > 0 ? [{ _tag: "TextDelta", text: block.text }] : []
          case "thinking":
            blocks.set(event.index, { kind: "thinking", thinking: block.thinking, signature: block.signature })
            return block.thinking.length > 0 ? [{ _tag: "ThinkingDelta", thinking: block.thinking }] : []
          case "tool_use":
            blocks.set(event.index, { kind: "toolCall", id: block.id, name: block.name, json: "", args: undefined })
            return [{ _tag: "ToolCallStart", id: block.id, name: block.name }]
          default:
            // Redacted thinking and server-side tool blocks have no place in our transcript.
            blocks.set(event.index, { kind: "ignored" })
            return []
        }
      }
      case "content_block_delta": {
        const block = blocks.get(event.index)
        if (block === undefined) {
          return malformed(`content_block_delta for unknown block ${event.index}`)
        }
        const delta = event.delta
        if (delta.type === "text_delta" && block.kind === "text") {
          block.text += delta.text
          return [{ _tag: "TextDelta", text: delta.text }]
        }
        if (delta.type === "thinking_delta" && block.kind === "thinking") {
          block.thinking += delta.thinking
          return [{ _tag: "ThinkingDelta", thinking: delta.thinking }]
        }
        if (delta.type === "signature_delta" && block.kind === "thinking") {
          block.signature += delta.signature
          return []
        }
        if (delta.type === "input_json_delta" && block.kind === "toolCall") {
          block.json += delta.partial_json
          return []
        }
        if (block.kind === "ignored" || delta.type === "citations_delta") return []
        return malformed(`${delta.type} does not fit content block ${event.index} (${block.kind})`)
      }
      case "content_block_stop": {
        const block = blocks.get(event.index)
        if (block === undefined) return malformed(`content_block_stop for unknown block ${event.index}`)
        if (block.kind === "toolCall") {
          if (block.json.trim() === "") {
            block.args = {}
          } else {
            try {
              block.args = JSON.parse(block.json)
            } catch {
              return malformed(`Tool call ${block.name} has invalid JSON arguments: ${block.json}`)
            }
          }
        }
        return []
      }
      case "message_delta":
        stopReason = event.delta.stop_reason
        takeUsage(event.usage)
        return []
      case "message_stop":
        stopped = true
        return []
      default:
        return []
    }
  }

  const finish: Effect.Effect<ProviderEvent, ProviderError> = Effect.gen(function*() {
    if (!stopped) return yield* malformed("The stream ended before message_stop")
    const content: Array<TextPart | ThinkingPart | ToolCallPart> = []
    const indices = [...blocks.keys()].sort((a, b) => a - b)
    for (const index of indices) {
      const block = blocks.get(index)
      if (block === undefined) continue
      switch (block.kind) {
        case "text":
          content.push({ type: "text", text: block.text })
          break
        case "thinking":
          content.push(
            block.signature.length > 0
              ? { type: "thinking", thinking: block.thinking, thinkingSignature: block.signature }
              : { type: "thinking", thinking: block.thinking }
          )
          break
        case "toolCall":
          content.push({
            type: "toolCall",
            id: block.id,
            name: block.name,
            arguments: block.args === undefined ? parseLenient(block.json) : block.args
          })
          break
        case "ignored":
          break
      }
    }
    const usage: Usage = {
      input,
      output,
      cacheRead,
      cacheWrite,
      totalTokens: input + output + cacheRead + cacheWrite
    }
    const mapped = mapStopReason(stopReason, content.some((part) => part.type === "toolCall"))
    const message: AssistantMessage = {
      role: "assistant",
      content,
      provider,
      model,
      usage,
      stopReason: mapped,
      timestamp: yield* Clock.currentTimeMillis
    }
    return { _tag: "Done", message, stopReason: mapped, usage }
  })

  /** An event type this code does not know: skipped, as the SDK's own reader did, once the message has started. */
  const skip = (type: string): ReadonlyArray<ProviderEvent> | ProviderError =>
    stopped || started ? [] : malformed(`Stream began with "${type}" instead of message_start`)

  const streamError = (type: string | undefined, message: string) =>
    new ProviderError({ provider, model, reason: (type === undefined ? undefined : reasonForErrorType(type, message)) ?? "Unknown", message })

  return { push, skip, finish, malformed, streamError }
}

// ---------------------------------------------------------------------------
// Reading the SSE body

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null
const isString = (value: unknown): value is string => typeof value === "string"
const isOptionalString = (value: unknown): boolean => value === undefined || value === null || typeof value === "string"

/**
 * Checks the fields the assembler reads, so a well-formed JSON line with the
 * wrong shape is a MalformedStream error rather than a crash. Cheaper than a
 * Schema decode, which would cost more per event than the rest of the path.
 */
const isStreamEvent = (value: Record<string, unknown>): value is RawMessageStreamEvent & Record<string, unknown> => {
  switch (value["type"]) {
    case "message_start":
      return isRecord(value["message"]) && isRecord(value["message"]["usage"])
    case "content_block_start": {
      const block = value["content_block"]
      if (typeof value["index"] !== "number" || !isRecord(block)) return false
      switch (block["type"]) {
        case "text":
          return isString(block["text"])
        case "thinking":
          return isString(block["thinking"]) && isString(block["signature"])
        case "tool_use":
          return isString(block["id"]) && isString(block["name"])
        default:
          return isString(block["type"])
      }
    }
    case "content_block_delta": {
      const delta = value["delta"]
      if (typeof value["index"] !== "number" || !isRecord(delta)) return false
      switch (delta["type"]) {
        case "text_delta":
          return isString(delta["text"])
        case "thinking_delta":
          return isString(delta["thinking"])
        case "signature_delta":
          return isString(delta["signature"])
        case "input_json_delta":
          return isString(delta["partial_json"])
        default:
          return isString(delta["type"])
      }
    }
    case "content_block_stop":
      return typeof value["index"] === "number"
    case "message_delta":
      return isRecord(value["delta"]) && isOptionalString(value["delta"]["stop_reason"]) && isRecord(value["usage"])
    case "message_stop":
      return true
    default:
      return false
  }
}

const knownEventTypes: ReadonlySet<string> = new Set([
  "message_start",
  "content_block_start",
  "content_block_delta",
  "content_block_stop",
  "message_delta",
  "message_stop"
])

type Assembler = ReturnType<typeof makeAssembler>

/**
 * The provider's stream as a pull: each pull reads network chunks until the
 * events they complete give at least one ProviderEvent, and returns them as
 * one batch. Ends with `Done` after message_stop and the end of the body.
 */
const readEvents = (
  response: Response,
  assembler: Assembler,
  /** A read of the body failed: the connection broke (or the request was aborted, when nobody listens any more). */
  broken: (cause: unknown) => ProviderError
): Pull.Pull<Arr.NonEmptyReadonlyArray<ProviderEvent>, ProviderError> => {
  const body = response.body
  if (body === null) return Effect.fail(assembler.malformed("The response has no body"))
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let batch: Array<ProviderEvent> = []
  let failure: ProviderError | undefined
  let ended = false

  const onEvent = (event: Sse.Event): ProviderError | undefined => {
    if (event.event === "ping") return undefined
    let value: unknown
    try {
      value = JSON.parse(event.data)
    } catch (cause) {
      if (event.event === "error") return assembler.streamError(undefined, event.data)
      return assembler.malformed(`Unparseable stream data: ${cause instanceof Error ? cause.message : String(cause)}`)
    }
    if (event.event === "error") {
      // An error in an otherwise successful response (overloaded mid-stream, say).
      const error = isRecord(value) && isRecord(value["error"]) ? value["error"] : undefined
      return assembler.streamError(isString(error?.["type"]) ? error["type"] : undefined, isString(error?.["message"]) ? error["message"] : JSON.stringify(value))
    }
    if (!isRecord(value) || !isString(value["type"])) return assembler.malformed(`Stream data is not an event: ${event.data.slice(0, 200)}`)
    const type = value["type"]
    if (!isStreamEvent(value)) {
      if (knownEventTypes.has(type)) return assembler.malformed(`A ${type} event without the fields it needs: ${event.data.slice(0, 200)}`)
      const skipped = assembler.skip(type)
      return skipped instanceof ProviderError ? skipped : undefined
    }
    const out = assembler.push(value)
    if (out instanceof ProviderError) return out
    for (const item of out) batch.push(item)
    return undefined
  }
  const parser = Sse.makeParser((event) => {
    if (failure === undefined && event._tag === "Event") failure = onEvent(event)
  })
  const feed = (text: string) => {
    const tooLarge = parser.feed(text)
    if (tooLarge !== undefined && failure === undefined) failure = assembler.malformed(tooLarge.message)
  }

  const pull: Pull.Pull<Arr.NonEmptyReadonlyArray<ProviderEvent>, ProviderError> = Effect.suspend(() => {
    // Events already parsed go out before a failure that came after them, as the API sent them.
    if (Arr.isArrayNonEmpty(batch)) {
      const out = batch
      batch = []
      return Effect.succeed(out)
    }
    if (failure !== undefined) return Effect.fail(failure)
    if (ended) return Cause.done()
    return Effect.tryPromise({ try: () => reader.read(), catch: broken }).pipe(
      Effect.flatMap((result) => {
        if (!result.done) {
          feed(decoder.decode(result.value, { stream: true }))
          return pull
        }
        // An event cut off by the end of the body is dropped (WHATWG), as the SDK's reader did.
        feed(decoder.decode())
        ended = true
        if (failure !== undefined) return pull
        return assembler.finish.pipe(Effect.flatMap((done) => {
          batch.push(done)
          return pull
        }))
      })
    )
  })
  return pull
}

/** For a tool block that never got its content_block_stop; arguments default to an empty object. */
const parseLenient = (json: string): unknown => {
  try {
    return json.trim() === "" ? {} : JSON.parse(json)
  } catch {
    return {}
  }
}

// ---------------------------------------------------------------------------
// Errors

const reasonForErrorType = (type: string | null, message: string): ProviderErrorReason | undefined => {
  switch (type) {
    case "invalid_request_error":
      return isContextOverflowMessage(message) ? "ContextOverflow" : "BadRequest"
    case "request_too_large":
      return "ContextOverflow"
    case "authentication_error":
    case "permission_error":
    case "billing_error":
      return "Auth"
    case "not_found_error":
      return "NotFound"
    case "rate_limit_error":
      return "RateLimited"
    case "overloaded_error":
      return "Overloaded"
    case "api_error":
      return "ServerError"
    case "timeout_error":
      return "Timeout"
    default:
      return undefined
  }
}

/** The SDK's error classes, from the loaded SDK module. */
export type AnthropicSdkErrors = Pick<AnthropicSdk, "APIConnectionError" | "APIConnectionTimeoutError" | "APIError" | "APIUserAbortError">

export const toProviderError = (
  cause: unknown,
  provider: string,
  model: string,
  nowMs: number,
  sdk: AnthropicSdkErrors
): ProviderError => {
  const { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } = sdk
  if (cause instanceof ProviderError) return cause
  const make = (reason: ProviderErrorReason, message: string, extra?: { status?: number; retryAfterMs?: number }) =>
    new ProviderError({ provider, model, reason, message, ...extra })
  if (cause instanceof APIUserAbortError) return make("Unknown", "The request was aborted")
  if (cause instanceof APIConnectionTimeoutError) return make("Timeout", "The request to the model timed out")
  if (cause instanceof APIConnectionError) {
    const detail = cause.cause instanceof Error ? `: ${cause.cause.message}` : ""
    return make("Connection", `Could not reach the model API${detail}`)
  }
  if (cause instanceof APIError) {
    const message = cause.apiMessage ?? cause.message
    const typeReason = reasonForErrorType(cause.type, message)
    if (cause.status === undefined) {
      // An SSE `error` event in an otherwise successful response.
      return make(typeReason ?? "Unknown", message)
    }
    const reason = cause.type === "overloaded_error" ? "Overloaded" : reasonForStatus(cause.status, message)
    const retryAfterMs = parseRetryAfterMs(cause.headers, nowMs)
    return make(reason, message, {
      status: cause.status,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
    })
  }
  if (cause instanceof SyntaxError) return make("MalformedStream", `Unparseable stream data: ${cause.message}`)
  // undici reports dropped sockets and refused connections as TypeErrors ("terminated", "fetch failed").
  if (cause instanceof TypeError) {
    const inner = cause.cause instanceof Error ? ` (${cause.cause.message})` : ""
    return make("Connection", `Connection to the model API failed: ${cause.message}${inner}`)
  }
  if (cause instanceof Error) return make("Unknown", cause.message)
  return make("Unknown", String(cause))
}

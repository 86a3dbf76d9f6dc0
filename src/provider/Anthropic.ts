/**
 * Anthropic Messages API provider on top of the official SDK. The SDK's own
 * retries are off (`maxRetries: 0`): retry and failover belong to ModelRouter,
 * which knows whether text has already been streamed to the user.
 *
 * The SDK (with undici-backed fetch and its 1.4 MB of code) is imported on the
 * first request, not at start-up: the gateway answers /health without it.
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
import { Clock, Effect, Redacted, Stream } from "effect"
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

let sdkImport: Promise<AnthropicSdk> | undefined
const importSdk = (): Promise<AnthropicSdk> => {
  if (sdkImport === undefined) {
    const loading = import("@anthropic-ai/sdk")
    sdkImport = loading
    // A failed import is not kept, so a later request tries again.
    loading.catch(() => {
      if (sdkImport === loading) sdkImport = undefined
    })
  }
  return sdkImport
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
      const sdk = yield* Effect.tryPromise({
        try: importSdk,
        catch: (cause) =>
          new ProviderError({
            provider: id,
            model: request.model,
            reason: "Unknown",
            message: `Could not load the Anthropic SDK: ${cause instanceof Error ? cause.message : String(cause)}`
          })
      })
      client ??= new sdk.default({
        apiKey: Redacted.value(apiKey),
        baseURL: options.baseUrl,
        maxRetries: 0,
        timeout: options.requestTimeoutMs,
        defaultHeaders: options.headers,
        // The SDK logs unparseable SSE chunks to the console; we report them as MalformedStream instead.
        logLevel: "off"
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
      const events = yield* Effect.tryPromise({
        try: () => api.messages.create(params, { signal: controller.signal }),
        catch: toError
      })
      const assembler = makeAssembler(id, request.model)
      return Stream.fromAsyncIterable(events, toError).pipe(
        Stream.mapEffect(assembler.push),
        Stream.flattenIterable,
        Stream.concat(Stream.fromEffect(assembler.finish))
      )
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

const toMessageParams = (messages: ReadonlyArray<Message>): Array<MessageParam> => {
  const out: Array<{ role: "user" | "assistant"; content: Array<ContentBlockParam> }> = []
  // The API requires alternating roles, so consecutive same-role messages
  // (tool results followed by a user message, say) share one API message.
  const append = (role: "user" | "assistant", blocks: Array<ContentBlockParam>) => {
    if (blocks.length === 0) return
    const last = out[out.length - 1]
    if (last !== undefined && last.role === role) last.content.push(...blocks)
    else out.push({ role, content: blocks })
  }
  for (const message of messages) {
    switch (message.role) {
      case "user":
        append(
          "user",
          typeof message.content === "string"
            ? (message.content.length > 0 ? [{ type: "text", text: message.content }] : [])
            : userContent(message.content)
        )
        break
      case "assistant":
        append("assistant", assistantContent(message.content))
        break
      case "toolResult": {
        const content = userContent(message.content)
        const block: ToolResultBlockParam = {
          type: "tool_result",
          tool_use_id: toolId(message.toolCallId),
          ...(content.length > 0 ? { content } : {}),
          ...(message.isError ? { is_error: true } : {})
        }
        append("user", [block])
        break
      }
    }
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
    ...(thinking !== undefined ? { thinking } : {})
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

  const push = (event: RawMessageStreamEvent): Effect.Effect<ReadonlyArray<ProviderEvent>, ProviderError> => {
    if (stopped) return Effect.succeed([])
    if (!started && event.type !== "message_start") {
      return Effect.fail(malformed(`Stream began with "${event.type}" instead of message_start`))
    }
    switch (event.type) {
      case "message_start":
        started = true
        takeUsage(event.message.usage)
        return Effect.succeed([])
      case "content_block_start": {
        const block = event.content_block
        switch (block.type) {
          case "text":
            blocks.set(event.index, { kind: "text", text: block.text })
            return Effect.succeed(block.text.length > 0 ? [{ _tag: "TextDelta", text: block.text }] : [])
          case "thinking":
            blocks.set(event.index, { kind: "thinking", thinking: block.thinking, signature: block.signature })
            return Effect.succeed(block.thinking.length > 0 ? [{ _tag: "ThinkingDelta", thinking: block.thinking }] : [])
          case "tool_use":
            blocks.set(event.index, { kind: "toolCall", id: block.id, name: block.name, json: "", args: undefined })
            return Effect.succeed([{ _tag: "ToolCallStart", id: block.id, name: block.name }])
          default:
            // Redacted thinking and server-side tool blocks have no place in our transcript.
            blocks.set(event.index, { kind: "ignored" })
            return Effect.succeed([])
        }
      }
      case "content_block_delta": {
        const block = blocks.get(event.index)
        if (block === undefined) {
          return Effect.fail(malformed(`content_block_delta for unknown block ${event.index}`))
        }
        const delta = event.delta
        if (delta.type === "text_delta" && block.kind === "text") {
          block.text += delta.text
          return Effect.succeed([{ _tag: "TextDelta", text: delta.text }])
        }
        if (delta.type === "thinking_delta" && block.kind === "thinking") {
          block.thinking += delta.thinking
          return Effect.succeed([{ _tag: "ThinkingDelta", thinking: delta.thinking }])
        }
        if (delta.type === "signature_delta" && block.kind === "thinking") {
          block.signature += delta.signature
          return Effect.succeed([])
        }
        if (delta.type === "input_json_delta" && block.kind === "toolCall") {
          block.json += delta.partial_json
          return Effect.succeed([])
        }
        if (block.kind === "ignored" || delta.type === "citations_delta") return Effect.succeed([])
        return Effect.fail(malformed(`${delta.type} does not fit content block ${event.index} (${block.kind})`))
      }
      case "content_block_stop": {
        const block = blocks.get(event.index)
        if (block === undefined) return Effect.fail(malformed(`content_block_stop for unknown block ${event.index}`))
        if (block.kind === "toolCall") {
          if (block.json.trim() === "") {
            block.args = {}
          } else {
            try {
              block.args = JSON.parse(block.json)
            } catch {
              return Effect.fail(malformed(`Tool call ${block.name} has invalid JSON arguments: ${block.json}`))
            }
          }
        }
        return Effect.succeed([])
      }
      case "message_delta":
        stopReason = event.delta.stop_reason
        takeUsage(event.usage)
        return Effect.succeed([])
      case "message_stop":
        stopped = true
        return Effect.succeed([])
      default:
        return Effect.succeed([])
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

  return { push, finish }
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

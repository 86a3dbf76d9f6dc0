/**
 * Provider for OpenAI-compatible chat completions servers (OpenAI, Ollama,
 * vLLM, llama.cpp, LM Studio, OpenRouter) over plain fetch and effect's SSE
 * decoder, so no SDK is needed at runtime.
 */
import { Clock, Effect, Redacted, Result, Schema, Stream } from "effect"
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
import {
  type Provider,
  ProviderError,
  type ProviderErrorReason,
  type ProviderEvent,
  type ProviderRequest
} from "./Provider.ts"

export interface OpenAiCompatProviderOptions {
  readonly id: string
  /** Optional: local servers (Ollama, llama.cpp) need none. */
  readonly apiKey: Redacted.Redacted<string> | undefined
  /** Up to and including the version segment, e.g. `http://127.0.0.1:11434/v1`. */
  readonly baseUrl: string
  readonly headers?: Record<string, string> | undefined
  /** Time allowed until the response headers arrive. */
  readonly requestTimeoutMs?: number | undefined
}

// ---------------------------------------------------------------------------
// Request mapping

type ChatContentPart =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "image_url"; readonly image_url: { readonly url: string } }

type ChatMessage =
  | { readonly role: "system"; readonly content: string }
  | { readonly role: "user"; readonly content: string | ReadonlyArray<ChatContentPart> }
  | {
    readonly role: "assistant"
    readonly content: string | null
    readonly tool_calls?: ReadonlyArray<{
      readonly id: string
      readonly type: "function"
      readonly function: { readonly name: string; readonly arguments: string }
    }>
  }
  | { readonly role: "tool"; readonly tool_call_id: string; readonly content: string }

const userContent = (parts: ReadonlyArray<TextPart | ImagePart>): string | ReadonlyArray<ChatContentPart> => {
  if (parts.every((part) => part.type === "text")) return parts.map((part) => part.type === "text" ? part.text : "").join("")
  return parts.map((part): ChatContentPart =>
    part.type === "text"
      ? { type: "text", text: part.text }
      : { type: "image_url", image_url: { url: `data:${part.mimeType};base64,${part.data}` } }
  )
}

const toChatMessages = (system: string, messages: ReadonlyArray<Message>): Array<ChatMessage> => {
  const out: Array<ChatMessage> = system.length > 0 ? [{ role: "system", content: system }] : []
  for (const message of messages) {
    switch (message.role) {
      case "user":
        out.push({
          role: "user",
          content: typeof message.content === "string" ? message.content : userContent(message.content)
        })
        break
      case "assistant": {
        // Thinking is not sent back: chat completions has no field for it.
        const text = message.content.map((part) => part.type === "text" ? part.text : "").join("")
        const calls = message.content.filter((part): part is ToolCallPart => part.type === "toolCall").map((part) => ({
          id: part.id,
          type: "function" as const,
          function: {
            name: part.name,
            arguments: typeof part.arguments === "string" ? part.arguments : JSON.stringify(part.arguments ?? {})
          }
        }))
        if (text.length === 0 && calls.length === 0) break
        out.push({
          role: "assistant",
          content: text.length > 0 ? text : null,
          ...(calls.length > 0 ? { tool_calls: calls } : {})
        })
        break
      }
      case "toolResult": {
        const text = message.content.map((part) =>
          part.type === "text" ? part.text : `[image ${part.mimeType} omitted]`
        ).join("\n")
        out.push({ role: "tool", tool_call_id: message.toolCallId, content: text })
        break
      }
    }
  }
  return out
}

const reasoningEffort = { minimal: "minimal", low: "low", medium: "medium", high: "high", xhigh: "high" } as const

export const toChatCompletionsBody = (request: ProviderRequest): Record<string, unknown> => ({
  model: request.model,
  messages: toChatMessages(request.system, request.messages),
  max_tokens: request.maxTokens,
  stream: true,
  stream_options: { include_usage: true },
  ...(request.tools.length > 0
    ? {
      tools: request.tools.map((tool) => ({
        type: "function",
        function: { name: tool.name, description: tool.description, parameters: tool.inputSchema }
      }))
    }
    : {}),
  ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
  ...(request.topP !== undefined ? { top_p: request.topP } : {}),
  ...(request.stopSequences !== undefined && request.stopSequences.length > 0 ? { stop: [...request.stopSequences] } : {}),
  ...(request.thinking !== undefined && request.thinking !== "off"
    ? { reasoning_effort: reasoningEffort[request.thinking] }
    : {}),
  ...(request.toolChoice !== undefined && request.tools.length > 0
    ? { tool_choice: request.toolChoice._tag === "any" ? "required" : { type: "function", function: { name: request.toolChoice.name } } }
    : {})
})

// ---------------------------------------------------------------------------
// Wire schemas

const NullableString = Schema.optionalKey(Schema.NullOr(Schema.String))

const ErrorBody = Schema.Struct({
  error: Schema.Union([
    Schema.String,
    Schema.Struct({
      message: Schema.optionalKey(Schema.String),
      type: NullableString,
      code: Schema.optionalKey(Schema.NullOr(Schema.Union([Schema.String, Schema.Number])))
    })
  ])
})

const Chunk = Schema.Struct({
  choices: Schema.optionalKey(Schema.Array(Schema.Struct({
    delta: Schema.optionalKey(Schema.NullOr(Schema.Struct({
      content: NullableString,
      // vLLM, llama.cpp and DeepSeek use reasoning_content; Ollama and OpenRouter use reasoning.
      reasoning_content: NullableString,
      reasoning: NullableString,
      tool_calls: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Struct({
        index: Schema.optionalKey(Schema.Number),
        id: NullableString,
        function: Schema.optionalKey(Schema.NullOr(Schema.Struct({
          name: NullableString,
          arguments: NullableString
        })))
      }))))
    }))),
    finish_reason: NullableString
  }))),
  usage: Schema.optionalKey(Schema.NullOr(Schema.Struct({
    prompt_tokens: Schema.optionalKey(Schema.Number),
    completion_tokens: Schema.optionalKey(Schema.Number),
    prompt_tokens_details: Schema.optionalKey(Schema.NullOr(Schema.Struct({
      cached_tokens: Schema.optionalKey(Schema.NullOr(Schema.Number))
    })))
  }))),
  error: Schema.optionalKey(ErrorBody.fields.error)
})
type Chunk = typeof Chunk.Type

const decodeChunk = Schema.decodeUnknownResult(Schema.fromJsonString(Chunk))
const decodeErrorBody = Schema.decodeUnknownResult(Schema.fromJsonString(ErrorBody))

const errorMessageOf = (text: string): { message: string; code: string | number | undefined } => {
  const decoded = decodeErrorBody(text)
  if (Result.isSuccess(decoded)) {
    const error = decoded.success.error
    if (typeof error === "string") return { message: error, code: undefined }
    return { message: error.message ?? text.slice(0, 500), code: error.code ?? undefined }
  }
  return { message: text.trim().slice(0, 500), code: undefined }
}

// ---------------------------------------------------------------------------
// Provider

export const makeOpenAiCompatProvider = (options: OpenAiCompatProviderOptions): Provider => {
  const id = options.id
  const url = `${options.baseUrl.replace(/\/+$/, "")}/chat/completions`

  const stream = (request: ProviderRequest): Stream.Stream<ProviderEvent, ProviderError> =>
    Stream.unwrap(Effect.gen(function*() {
      const fail = (reason: ProviderErrorReason, message: string, extra?: { status?: number; retryAfterMs?: number }) =>
        new ProviderError({ provider: id, model: request.model, reason, message, ...extra })
      const connectionError = (cause: unknown) =>
        cause instanceof ProviderError ? cause : fail(
          "Connection",
          `Could not reach ${url}: ${cause instanceof Error ? cause.message : String(cause)}${
            cause instanceof Error && cause.cause instanceof Error ? ` (${cause.cause.message})` : ""
          }`
        )
      // Closing the stream's scope (completion, failure or interruption) aborts the HTTP request.
      const controller = yield* Effect.acquireRelease(
        Effect.sync(() => new AbortController()),
        (controller) => Effect.sync(() => controller.abort())
      )
      const headers: Record<string, string> = {
        "content-type": "application/json",
        accept: "text/event-stream",
        ...(options.apiKey !== undefined ? { authorization: `Bearer ${Redacted.value(options.apiKey)}` } : {}),
        ...options.headers
      }
      const send = Effect.tryPromise({
        try: () =>
          fetch(url, {
            method: "POST",
            headers,
            body: JSON.stringify(toChatCompletionsBody(request)),
            signal: controller.signal
          }),
        catch: connectionError
      })
      const response = yield* options.requestTimeoutMs === undefined ? send : send.pipe(
        Effect.timeoutOrElse({
          duration: options.requestTimeoutMs,
          orElse: () => Effect.fail(fail("Timeout", `No response from ${url} within ${options.requestTimeoutMs} ms`))
        })
      )
      if (!response.ok) {
        const text = yield* Effect.tryPromise({ try: () => response.text(), catch: connectionError }).pipe(
          Effect.orElseSucceed(() => "")
        )
        const { code, message } = errorMessageOf(text)
        const detail = message.length > 0 ? message : `HTTP ${response.status}`
        const reason = code === "context_length_exceeded" ? "ContextOverflow" : reasonForStatus(response.status, detail)
        const retryAfterMs = parseRetryAfterMs(response.headers, yield* Clock.currentTimeMillis)
        return yield* fail(reason, detail, {
          status: response.status,
          ...(retryAfterMs !== undefined ? { retryAfterMs } : {})
        })
      }
      const body = response.body
      if (body === null) return yield* fail("MalformedStream", "The response has no body")
      const assembler = makeAssembler(id, request.model)
      return Stream.fromReadableStream({ evaluate: () => body, onError: connectionError }).pipe(
        Stream.decodeText,
        Stream.pipeThroughChannel(Sse.decode()),
        Stream.mapError((error) =>
          error instanceof ProviderError ? error : fail("MalformedStream", `Invalid SSE stream: ${error._tag}`)
        ),
        Stream.takeWhile(() => !assembler.isDone()),
        Stream.mapEffect((event) => assembler.push(event.data)),
        Stream.flattenIterable,
        Stream.concat(Stream.fromEffect(assembler.finish))
      )
    }))

  return { id, stream }
}

// ---------------------------------------------------------------------------
// Stream assembly

interface PendingCall {
  id: string
  name: string
  args: string
  announced: boolean
}

const mapFinishReason = (reason: string | undefined, hasToolCalls: boolean): StopReason => {
  switch (reason) {
    case "tool_calls":
    case "function_call":
      return "toolUse"
    case "length":
      return "length"
    case "stop":
    case "content_filter":
      return hasToolCalls ? "toolUse" : "stop"
    default:
      return hasToolCalls ? "toolUse" : "stop"
  }
}

const makeAssembler = (provider: string, model: string) => {
  let done = false
  let finishReason: string | undefined
  let thinking = ""
  let text = ""
  let usage: Usage = { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 }
  const calls: Array<PendingCall> = []
  // Position in `calls` of the call currently streaming at each wire index.
  const byIndex = new Map<number, number>()
  const fail = (reason: ProviderErrorReason, message: string) =>
    new ProviderError({ provider, model, reason, message })

  let started = false
  const onChunk = (chunk: Chunk): Array<ProviderEvent> => {
    const events: Array<ProviderEvent> = []
    if (!started) {
      started = true
      events.push({ _tag: "Started" })
    }
    for (const choice of chunk.choices ?? []) {
      const delta = choice.delta
      if (delta !== undefined && delta !== null) {
        const reasoning = delta.reasoning_content ?? delta.reasoning
        if (reasoning !== undefined && reasoning !== null && reasoning.length > 0) {
          thinking += reasoning
          events.push({ _tag: "ThinkingDelta", thinking: reasoning })
        }
        if (delta.content !== undefined && delta.content !== null && delta.content.length > 0) {
          text += delta.content
          events.push({ _tag: "TextDelta", text: delta.content })
        }
        for (const call of delta.tool_calls ?? []) {
          const index = call.index ?? 0
          const position = byIndex.get(index)
          let pending = position === undefined ? undefined : calls[position]
          // Some servers reuse index 0 for every call; a new id means a new call.
          if (pending === undefined || (call.id && pending.id !== "" && call.id !== pending.id)) {
            pending = { id: call.id ?? "", name: "", args: "", announced: false }
            byIndex.set(index, calls.length)
            calls.push(pending)
          }
          if (call.id && pending.id === "") pending.id = call.id
          if (call.function?.name) pending.name += call.function.name
          if (call.function?.arguments) pending.args += call.function.arguments
          if (!pending.announced && pending.name.length > 0) {
            if (pending.id === "") pending.id = `call_${calls.length}_${Date.now().toString(36)}`
            pending.announced = true
            events.push({ _tag: "ToolCallStart", id: pending.id, name: pending.name })
          }
        }
      }
      if (choice.finish_reason !== undefined && choice.finish_reason !== null) finishReason = choice.finish_reason
    }
    if (chunk.usage !== undefined && chunk.usage !== null) {
      const prompt = chunk.usage.prompt_tokens ?? 0
      const output = chunk.usage.completion_tokens ?? 0
      const cached = chunk.usage.prompt_tokens_details?.cached_tokens ?? 0
      // prompt_tokens includes cached tokens; ours keeps them apart as Anthropic does.
      usage = {
        input: prompt - cached,
        output,
        cacheRead: cached,
        cacheWrite: 0,
        totalTokens: prompt + output
      }
    }
    return events
  }

  const push = (data: string): Effect.Effect<ReadonlyArray<ProviderEvent>, ProviderError> => {
    if (done) return Effect.succeed([])
    if (data.trim() === "[DONE]") {
      done = true
      return Effect.succeed([])
    }
    const decoded = decodeChunk(data)
    if (Result.isFailure(decoded)) {
      return Effect.fail(fail("MalformedStream", `Unparseable stream chunk: ${data.slice(0, 200)}`))
    }
    const chunk = decoded.success
    if (chunk.error !== undefined) {
      const error = chunk.error
      const message = typeof error === "string" ? error : error.message ?? "error event in stream"
      const code = typeof error === "string" ? undefined : error.code
      const reason: ProviderErrorReason = typeof code === "number"
        ? reasonForStatus(code, message)
        : code === "context_length_exceeded" || isContextOverflowMessage(message)
        ? "ContextOverflow"
        : "ServerError"
      return Effect.fail(fail(reason, message))
    }
    return Effect.succeed(onChunk(chunk))
  }

  const finish: Effect.Effect<ProviderEvent, ProviderError> = Effect.gen(function*() {
    // Servers that forget [DONE] still finished the turn if they sent a finish_reason.
    if (!done && finishReason === undefined) {
      return yield* fail("MalformedStream", "The stream ended before [DONE]")
    }
    const content: Array<TextPart | ThinkingPart | ToolCallPart> = []
    if (thinking.length > 0) content.push({ type: "thinking", thinking })
    if (text.length > 0) content.push({ type: "text", text })
    for (const call of calls) {
      if (call.name.length === 0) return yield* fail("MalformedStream", "A tool call arrived without a function name")
      content.push({ type: "toolCall", id: call.id, name: call.name, arguments: parseArguments(call.args) })
    }
    const stopReason = mapFinishReason(finishReason, calls.length > 0)
    const message: AssistantMessage = {
      role: "assistant",
      content,
      provider,
      model,
      usage,
      stopReason,
      timestamp: yield* Clock.currentTimeMillis
    }
    return { _tag: "Done", message, stopReason, usage }
  })

  return { push, finish, isDone: () => done }
}

/**
 * Local models do emit invalid JSON arguments; the raw string is kept so the
 * tool's input validation can tell the model what went wrong instead of the
 * whole turn failing.
 */
const parseArguments = (args: string): unknown => {
  if (args.trim() === "") return {}
  try {
    return JSON.parse(args)
  } catch {
    return args
  }
}

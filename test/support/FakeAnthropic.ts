/**
 * A protocol-faithful fake of the Anthropic Messages API (POST /v1/messages)
 * on node:http, bound to 127.0.0.1 on a free port. It speaks the real SSE
 * event sequence and error JSON, validates requests the way the API does
 * (alternating roles, tool_use answered by tool_result, non-empty text,
 * thinking budget below max_tokens), records every request, and answers
 * instantly unless a script says otherwise.
 *
 * Plain async: `const fake = await startFakeAnthropic([...replies])`, then
 * point `ANTHROPIC_BASE_URL` (or the provider's baseUrl) at `fake.url`.
 * Effect: `yield* FakeAnthropic.make([...replies])` inside a Scope.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Result, Schema, type Scope } from "effect"

export type FakeBlock =
  | { readonly type: "text"; readonly text: string }
  | { readonly type: "thinking"; readonly thinking: string; readonly signature: string }
  | { readonly type: "tool_use"; readonly id?: string; readonly name: string; readonly input: unknown }

export interface FakeUsage {
  readonly input_tokens?: number
  readonly output_tokens?: number
  readonly cache_read_input_tokens?: number
  readonly cache_creation_input_tokens?: number
}

export interface StreamShape {
  /** Pause between SSE events, in ms. */
  readonly delayMs?: number
  /** Characters per text/thinking/json delta; by default text is split per word. */
  readonly chunkSize?: number
  /** Wait before the response headers, as the API does until the model starts its answer, in ms. */
  readonly firstByteDelayMs?: number
}

export type FakeAnthropicReply =
  | ({
    readonly kind: "message"
    readonly content: ReadonlyArray<FakeBlock>
    readonly stopReason?: string
    readonly usage?: FakeUsage
  } & StreamShape)
  /** An HTTP error in Anthropic's error JSON shape. */
  | {
    readonly kind: "error"
    readonly status: number
    readonly type: string
    readonly message: string
    readonly headers?: Record<string, string>
  }
  /** A 200 stream that emits `content` and then an SSE `event: error`. */
  | ({ readonly kind: "streamError"; readonly type: string; readonly message: string; readonly content?: ReadonlyArray<FakeBlock> } & StreamShape)
  /** Emits `content` (blocks left open) and then destroys the socket. */
  | ({ readonly kind: "drop"; readonly content?: ReadonlyArray<FakeBlock> } & StreamShape)
  /** Emits `content` and ends the response cleanly without message_delta/message_stop. */
  | ({ readonly kind: "truncate"; readonly content?: ReadonlyArray<FakeBlock> } & StreamShape)
  /** message_start followed by a data line that is not JSON. */
  | { readonly kind: "malformed" }
  /** Sends headers and message_start, then nothing until the client goes away. */
  | { readonly kind: "hang" }

export type FakeAnthropicScript =
  | ReadonlyArray<FakeAnthropicReply>
  | ((request: RecordedAnthropicRequest) => FakeAnthropicReply | undefined)

export interface RecordedAnthropicRequest {
  readonly index: number
  readonly method: string
  readonly path: string
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>
  /** From `x-api-key` or `Authorization: Bearer`. */
  readonly apiKey: string | undefined
  /** The parsed JSON body as sent. */
  readonly raw: unknown
  /** The body decoded with the fake's request schema; undefined when it did not decode. */
  readonly body: AnthropicRequestBody | undefined
  /** Resolves when the response is over: "completed", or "aborted" when the client closed it first. */
  readonly closed: Promise<"completed" | "aborted">
}

export interface FakeAnthropicHandle {
  /** Base URL without trailing slash, e.g. http://127.0.0.1:40123 */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedAnthropicRequest>
  /** Queue more replies (used after an array script runs out, before the default echo). */
  readonly push: (...replies: ReadonlyArray<FakeAnthropicReply>) => void
  readonly close: () => Promise<void>
}

// ---------------------------------------------------------------------------
// Request schema

const Block = Schema.Record(Schema.String, Schema.Unknown)

export const AnthropicRequestBody = Schema.Struct({
  model: Schema.String,
  max_tokens: Schema.Number,
  messages: Schema.Array(Schema.Struct({
    role: Schema.Literals(["user", "assistant"]),
    content: Schema.Union([Schema.String, Schema.Array(Block)])
  })),
  system: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Block)])),
  stream: Schema.optionalKey(Schema.Boolean),
  temperature: Schema.optionalKey(Schema.Number),
  tools: Schema.optionalKey(Schema.Array(Schema.Struct({
    name: Schema.String,
    description: Schema.optionalKey(Schema.String),
    input_schema: Block
  }))),
  thinking: Schema.optionalKey(Schema.Struct({
    type: Schema.String,
    budget_tokens: Schema.optionalKey(Schema.Number)
  })),
  tool_choice: Schema.optionalKey(Schema.Union([
    Schema.Struct({ type: Schema.Literals(["auto", "any", "none"]), disable_parallel_tool_use: Schema.optionalKey(Schema.Boolean) }),
    Schema.Struct({ type: Schema.Literal("tool"), name: Schema.String, disable_parallel_tool_use: Schema.optionalKey(Schema.Boolean) })
  ]))
})
export type AnthropicRequestBody = typeof AnthropicRequestBody.Type

const decodeBody = Schema.decodeUnknownResult(AnthropicRequestBody)

const blocksOf = (content: string | ReadonlyArray<Record<string, unknown>>): ReadonlyArray<Record<string, unknown>> =>
  typeof content === "string" ? [{ type: "text", text: content }] : content

/** The checks the real API makes that our provider could plausibly get wrong. */
const validate = (body: AnthropicRequestBody): string | undefined => {
  if (body.messages.length === 0) return "messages: at least one message is required"
  if (body.messages[0]?.role !== "user") return "messages: first message must use the \"user\" role"
  for (let i = 0; i < body.messages.length; i++) {
    const message = body.messages[i]
    if (message === undefined) continue
    if (i > 0 && body.messages[i - 1]?.role === message.role) {
      return `messages: roles must alternate between "user" and "assistant", but found multiple "${message.role}" roles in a row`
    }
    if (typeof message.content !== "string" && message.content.length === 0) {
      return `messages.${i}: content must be non-empty`
    }
    for (const block of blocksOf(message.content)) {
      if (block.type === "text" && (typeof block.text !== "string" || block.text.length === 0)) {
        return `messages.${i}: text content blocks must be non-empty`
      }
      if (block.type === "tool_result" && message.role !== "user") {
        return `messages.${i}: tool_result blocks are only allowed in user messages`
      }
      if ((block.type === "tool_use" || block.type === "thinking") && message.role !== "assistant") {
        return `messages.${i}: ${block.type} blocks are only allowed in assistant messages`
      }
      if (block.type === "thinking" && typeof block.signature !== "string") {
        return `messages.${i}: thinking blocks need a signature`
      }
    }
    const toolUseIds = blocksOf(message.content).filter((b) => b.type === "tool_use").map((b) => b.id)
    if (toolUseIds.length > 0) {
      const next = body.messages[i + 1]
      const answered = next === undefined
        ? []
        : blocksOf(next.content).filter((b) => b.type === "tool_result").map((b) => b.tool_use_id)
      for (const id of toolUseIds) {
        if (next !== undefined && !answered.includes(id)) {
          return `messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${String(id)}`
        }
      }
    }
  }
  const toolUseIds = body.messages.flatMap((message) => blocksOf(message.content).filter((b) => b.type === "tool_use").map((b) => String(b.id)))
  const repeated = toolUseIds.find((id, i) => toolUseIds.indexOf(id) !== i)
  if (repeated !== undefined) return `messages: \`tool_use\` ids must be unique (${repeated} appears more than once)`
  const choice = body.tool_choice
  if (choice !== undefined && (choice.type === "any" || choice.type === "tool")) {
    if ((body.tools ?? []).length === 0) return "tool_choice: a forced tool choice needs `tools`"
    if (choice.type === "tool" && !(body.tools ?? []).some((tool) => tool.name === choice.name)) {
      return `tool_choice.name: tool ${JSON.stringify(choice.name)} is not in \`tools\``
    }
    if (body.thinking?.type === "enabled") return "Thinking may not be enabled when tool_choice forces tool use."
  }
  if (body.thinking?.type === "enabled") {
    const budget = body.thinking.budget_tokens ?? 0
    if (budget < 1024) return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    if (budget >= body.max_tokens) return "`max_tokens` must be greater than `thinking.budget_tokens`"
    if (body.temperature !== undefined && body.temperature !== 1) {
      return "`temperature` may only be set to 1 when thinking is enabled"
    }
  }
  return undefined
}

// ---------------------------------------------------------------------------
// Replies

const resultText = (content: unknown): string => {
  if (typeof content === "string") return content
  if (!Array.isArray(content)) return ""
  return content.map((b: unknown) =>
    typeof b === "object" && b !== null && "text" in b && typeof b.text === "string" ? b.text : ""
  ).join("")
}

/** The system prompt of a recorded request, as text. */
export const systemText = (request: RecordedAnthropicRequest | undefined): string => {
  const system = request?.body?.system
  if (system === undefined) return ""
  return typeof system === "string" ? system : system.map((b) => typeof b["text"] === "string" ? b["text"] : "").join("")
}

/** The messages of a recorded request, as JSON, for `include` checks. */
export const messagesJson = (request: RecordedAnthropicRequest | undefined): string => JSON.stringify(request?.body?.messages ?? [])

/** Whether a recorded request is the compaction's summary request (src/agent/Compaction.ts prompt). */
/** The text of each user message the request carried, in order. */
export const userTexts = (request: RecordedAnthropicRequest): Array<string> =>
  (request.body?.messages ?? []).filter((m) => m.role === "user").map((m) =>
    typeof m.content === "string" ? m.content : m.content.map((b) => typeof b.text === "string" ? b.text : "").join("")
  )

/** The last request the fake received; throws when it has seen none. */
export const lastRequestOf = (fake: { readonly requests: ReadonlyArray<RecordedAnthropicRequest> }): RecordedAnthropicRequest => {
  const request = fake.requests.at(-1)
  if (request === undefined) throw new Error("the fake saw no request")
  return request
}

export const isSummaryRequest = (request: RecordedAnthropicRequest): boolean => systemText(request).includes("working memory of a long conversation")

/** `echo: <text of the last user message>`, or of its tool results when it has no text. */
export const echoText = (body: AnthropicRequestBody | undefined): string => {
  const last = body?.messages.filter((m) => m.role === "user").at(-1)
  if (last === undefined) return "echo: "
  const blocks = blocksOf(last.content)
  const text = blocks.filter((b) => b.type === "text").map((b) => resultText([b])).join("")
  if (text.length > 0) return `echo: ${text}`
  return `echo: ${blocks.filter((b) => b.type === "tool_result").map((b) => resultText(b.content)).join("\n")}`
}

export const textReply = (text: string, shape?: StreamShape): FakeAnthropicReply => ({
  kind: "message",
  content: [{ type: "text", text }],
  ...shape
})

export const errorReply = (
  status: number,
  type: string,
  message: string,
  headers?: Record<string, string>
): FakeAnthropicReply => ({ kind: "error", status, type, message, ...(headers ? { headers } : {}) })

export const overloaded = (): FakeAnthropicReply => errorReply(529, "overloaded_error", "Overloaded")
export const rateLimited = (retryAfterSeconds: number): FakeAnthropicReply =>
  errorReply(429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit", {
    "retry-after": String(retryAfterSeconds)
  })

// ---------------------------------------------------------------------------
// Server

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const chunksOf = (text: string, size: number | undefined): Array<string> => {
  if (text.length === 0) return []
  if (size !== undefined && size > 0) {
    const out: Array<string> = []
    for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size))
    return out
  }
  return text.match(/\s*\S+\s*/g) ?? [text]
}

const estimateTokens = (text: string) => Math.max(1, Math.ceil(text.length / 4))

export const startFakeAnthropic = async (script?: FakeAnthropicScript): Promise<FakeAnthropicHandle> => {
  const requests: Array<RecordedAnthropicRequest> = []
  const queue: Array<FakeAnthropicReply> = Array.isArray(script) ? [...script] : []
  const scriptFn = typeof script === "function" ? script : undefined
  const open = new Set<ServerResponse>()
  let ids = 0

  const nextReply = (request: RecordedAnthropicRequest): FakeAnthropicReply => {
    const scripted = scriptFn?.(request) ?? queue.shift()
    if (scripted !== undefined) return scripted
    // Unscripted, the fake answers as a model must when tool_choice forces a call: with a call (empty input).
    const choice = request.body?.tool_choice
    const forced = choice?.type === "tool" ? choice.name : choice?.type === "any" ? request.body?.tools?.[0]?.name : undefined
    if (forced !== undefined) return { kind: "message", content: [{ type: "tool_use", name: forced, input: {} }], stopReason: "tool_use" }
    return textReply(echoText(request.body))
  }

  const sendError = (res: ServerResponse, status: number, type: string, message: string, headers?: Record<string, string>) => {
    const body = JSON.stringify({ type: "error", error: { type, message }, request_id: `req_fake_${++ids}` })
    res.writeHead(status, { "content-type": "application/json", "request-id": `req_fake_${ids}`, ...headers })
    res.end(body)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
    const text = Buffer.concat(chunks).toString("utf8")
    const headers: Record<string, string> = {}
    for (const [key, value] of Object.entries(req.headers)) {
      if (typeof value === "string") headers[key] = value
      else if (Array.isArray(value)) headers[key] = value.join(", ")
    }
    const bearer = headers["authorization"]?.replace(/^Bearer\s+/i, "")
    let raw: unknown = undefined
    try {
      raw = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      raw = text
    }
    const decoded = decodeBody(raw)
    const body = Result.isSuccess(decoded) ? decoded.success : undefined
    let settle: (how: "completed" | "aborted") => void = () => {}
    const closed = new Promise<"completed" | "aborted">((resolve) => {
      settle = resolve
    })
    res.on("close", () => {
      open.delete(res)
      settle(res.writableFinished ? "completed" : "aborted")
    })
    open.add(res)
    const recorded: RecordedAnthropicRequest = {
      index: requests.length,
      method: req.method ?? "",
      path: req.url ?? "",
      headers,
      apiKey: headers["x-api-key"] ?? bearer,
      raw,
      body,
      closed
    }
    requests.push(recorded)

    const path = (req.url ?? "").split("?")[0]
    if (req.method !== "POST" || path !== "/v1/messages") {
      return sendError(res, 404, "not_found_error", `Not found: ${req.method} ${req.url}`)
    }
    if (recorded.apiKey === undefined || recorded.apiKey.length === 0) {
      return sendError(res, 401, "authentication_error", "x-api-key header is required")
    }
    if (body === undefined) {
      const message = Result.isFailure(decoded) ? String(decoded.failure) : "invalid body"
      return sendError(res, 400, "invalid_request_error", `Invalid request body: ${message}`)
    }
    const invalid = validate(body)
    if (invalid !== undefined) return sendError(res, 400, "invalid_request_error", invalid)

    const reply = nextReply(recorded)
    if (reply.kind === "error") return sendError(res, reply.status, reply.type, reply.message, reply.headers)

    const messageId = `msg_fake_${++ids}`
    const inputTokens = estimateTokens(JSON.stringify(body.messages) + JSON.stringify(body.system ?? ""))
    const content = (reply.kind === "malformed" || reply.kind === "hang" ? [] : reply.content ?? []).map((block) =>
      block.type === "tool_use" ? { ...block, id: block.id ?? `toolu_fake_${++ids}` } : block
    )
    const outputText = content.map((b) =>
      b.type === "text" ? b.text : b.type === "thinking" ? b.thinking : JSON.stringify(b.input)
    ).join("")
    const usage = {
      input_tokens: inputTokens,
      output_tokens: estimateTokens(outputText),
      cache_read_input_tokens: 0,
      cache_creation_input_tokens: 0,
      ...(reply.kind === "message" ? reply.usage : undefined)
    }
    const stopReason = reply.kind === "message" && reply.stopReason !== undefined
      ? reply.stopReason
      : content.some((b) => b.type === "tool_use") ? "tool_use" : "end_turn"

    if (body.stream !== true) {
      if (reply.kind !== "message") {
        return sendError(res, 500, "api_error", `The fake cannot send "${reply.kind}" without streaming`)
      }
      res.writeHead(200, { "content-type": "application/json", "request-id": `req_fake_${ids}` })
      res.end(JSON.stringify({
        id: messageId,
        type: "message",
        role: "assistant",
        model: body.model,
        content,
        stop_reason: stopReason,
        stop_sequence: null,
        usage
      }))
      return
    }

    const firstByteDelayMs = "firstByteDelayMs" in reply ? reply.firstByteDelayMs ?? 0 : 0
    if (firstByteDelayMs > 0) await sleep(firstByteDelayMs)
    res.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "request-id": `req_fake_${ids}`
    })
    const delayMs = "delayMs" in reply ? reply.delayMs ?? 0 : 0
    const chunkSize = "chunkSize" in reply ? reply.chunkSize : undefined
    const send = async (event: string, data: unknown) => {
      if (res.destroyed || res.writableEnded) return
      res.write(`event: ${event}\ndata: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`)
      if (delayMs > 0) await sleep(delayMs)
    }

    await send("message_start", {
      type: "message_start",
      message: {
        id: messageId,
        type: "message",
        role: "assistant",
        model: body.model,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: {
          input_tokens: usage.input_tokens,
          cache_creation_input_tokens: usage.cache_creation_input_tokens,
          cache_read_input_tokens: usage.cache_read_input_tokens,
          output_tokens: 1
        }
      }
    })
    if (reply.kind === "hang") return
    if (reply.kind === "malformed") {
      res.write("event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_bl\n\n")
      res.end()
      return
    }
    const closeBlocks = reply.kind !== "drop"
    for (let index = 0; index < content.length; index++) {
      const block = content[index]
      if (block === undefined) continue
      const start = block.type === "text"
        ? { type: "text", text: "" }
        : block.type === "thinking"
        ? { type: "thinking", thinking: "", signature: "" }
        : { type: "tool_use", id: block.id, name: block.name, input: {} }
      await send("content_block_start", { type: "content_block_start", index, content_block: start })
      if (index === 0) await send("ping", { type: "ping" })
      if (block.type === "text") {
        for (const piece of chunksOf(block.text, chunkSize)) {
          await send("content_block_delta", { type: "content_block_delta", index, delta: { type: "text_delta", text: piece } })
        }
      } else if (block.type === "thinking") {
        for (const piece of chunksOf(block.thinking, chunkSize)) {
          await send("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "thinking_delta", thinking: piece }
          })
        }
        await send("content_block_delta", {
          type: "content_block_delta",
          index,
          delta: { type: "signature_delta", signature: block.signature }
        })
      } else {
        await send("content_block_delta", {
          type: "content_block_delta",
          index,
          delta: { type: "input_json_delta", partial_json: "" }
        })
        for (const piece of chunksOf(JSON.stringify(block.input), chunkSize ?? 12)) {
          await send("content_block_delta", {
            type: "content_block_delta",
            index,
            delta: { type: "input_json_delta", partial_json: piece }
          })
        }
      }
      if (closeBlocks) await send("content_block_stop", { type: "content_block_stop", index })
    }
    switch (reply.kind) {
      case "drop":
        res.socket?.destroy()
        return
      case "truncate":
        res.end()
        return
      case "streamError":
        await send("error", { type: "error", error: { type: reply.type, message: reply.message } })
        res.end()
        return
      case "message":
        await send("message_delta", {
          type: "message_delta",
          delta: { stop_reason: stopReason, stop_sequence: null },
          usage: {
            output_tokens: usage.output_tokens,
            input_tokens: usage.input_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens
          }
        })
        await send("message_stop", { type: "message_stop" })
        res.end()
        return
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, "api_error", `fake failure: ${String(error)}`)
      else res.destroy()
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => resolve())
  })
  const address: AddressInfo | string | null = server.address()
  const port = typeof address === "object" && address !== null ? address.port : 0

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    push: (...replies) => {
      queue.push(...replies)
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of open) res.destroy()
        server.closeAllConnections()
        server.close(() => resolve())
      })
  }
}

/** The fake as a scoped Effect resource: closed when the Scope closes. */
export const make = (script?: FakeAnthropicScript): Effect.Effect<FakeAnthropicHandle, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise(() => startFakeAnthropic(script)).pipe(Effect.orDie),
    (handle) => Effect.promise(() => handle.close())
  )

export const FakeAnthropic = { make, start: startFakeAnthropic }

/**
 * A protocol-faithful fake of an OpenAI chat completions server
 * (POST /v1/chat/completions) on node:http, bound to 127.0.0.1 on a free
 * port: the real `chat.completion.chunk` shapes, tool_calls deltas by index,
 * a usage chunk when `stream_options.include_usage` is set, and `data: [DONE]`.
 *
 * Plain async: `const fake = await startFakeOpenAi([...replies])`, base URL `${fake.url}/v1`.
 * Effect: `yield* FakeOpenAi.make([...replies])` inside a Scope.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { AddressInfo } from "node:net"
import { Effect, Result, Schema, type Scope } from "effect"

export interface FakeToolCall {
  readonly id?: string
  readonly name: string
  /** An object is JSON-encoded; a string is sent verbatim (to fake invalid JSON). */
  readonly arguments: unknown
}

export interface FakeOpenAiUsage {
  readonly prompt_tokens?: number
  readonly completion_tokens?: number
  readonly cached_tokens?: number
}

export interface StreamShape {
  readonly delayMs?: number
  /** Characters per content/arguments delta; by default text is split per word. */
  readonly chunkSize?: number
}

export type FakeOpenAiReply =
  | ({
    readonly kind: "message"
    readonly text?: string
    /** Streamed as `delta.reasoning_content`. */
    readonly reasoning?: string
    readonly toolCalls?: ReadonlyArray<FakeToolCall>
    readonly finishReason?: string
    readonly usage?: FakeOpenAiUsage
  } & StreamShape)
  | {
    readonly kind: "error"
    readonly status: number
    readonly message: string
    readonly type?: string
    readonly code?: string
    readonly headers?: Record<string, string>
  }
  /** Some content, then a `data: {"error": {...}}` chunk. */
  | { readonly kind: "streamError"; readonly message: string; readonly code?: string | number; readonly text?: string }
  /** Some content, then the socket is destroyed. */
  | { readonly kind: "drop"; readonly text?: string }
  /** Some content, then a clean end without finish_reason or [DONE]. */
  | { readonly kind: "truncate"; readonly text?: string }
  | { readonly kind: "malformed" }
  | { readonly kind: "hang" }

export type FakeOpenAiScript =
  | ReadonlyArray<FakeOpenAiReply>
  | ((request: RecordedOpenAiRequest) => FakeOpenAiReply | undefined)

export interface FakeOpenAiOptions {
  /** When set, requests without `Authorization: Bearer <key>` get 401. */
  readonly requireApiKey?: string
}

export const OpenAiRequestBody = Schema.Struct({
  model: Schema.String,
  messages: Schema.Array(Schema.Struct({
    role: Schema.Literals(["system", "developer", "user", "assistant", "tool"]),
    content: Schema.optionalKey(Schema.NullOr(Schema.Union([
      Schema.String,
      Schema.Array(Schema.Record(Schema.String, Schema.Unknown))
    ]))),
    tool_calls: Schema.optionalKey(Schema.Array(Schema.Struct({
      id: Schema.String,
      type: Schema.Literal("function"),
      function: Schema.Struct({ name: Schema.String, arguments: Schema.String })
    }))),
    tool_call_id: Schema.optionalKey(Schema.String)
  })),
  stream: Schema.optionalKey(Schema.Boolean),
  stream_options: Schema.optionalKey(Schema.Struct({ include_usage: Schema.optionalKey(Schema.Boolean) })),
  max_tokens: Schema.optionalKey(Schema.Number),
  temperature: Schema.optionalKey(Schema.Number),
  reasoning_effort: Schema.optionalKey(Schema.String),
  tools: Schema.optionalKey(Schema.Array(Schema.Struct({
    type: Schema.Literal("function"),
    function: Schema.Struct({
      name: Schema.String,
      description: Schema.optionalKey(Schema.String),
      parameters: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
    })
  })))
})
export type OpenAiRequestBody = typeof OpenAiRequestBody.Type

const decodeBody = Schema.decodeUnknownResult(OpenAiRequestBody)

export interface RecordedOpenAiRequest {
  readonly index: number
  readonly method: string
  readonly path: string
  readonly headers: Readonly<Record<string, string>>
  readonly apiKey: string | undefined
  readonly raw: unknown
  readonly body: OpenAiRequestBody | undefined
  readonly closed: Promise<"completed" | "aborted">
}

export interface FakeOpenAiHandle {
  /** Server root without trailing slash; the provider's baseUrl is `${url}/v1`. */
  readonly url: string
  readonly requests: ReadonlyArray<RecordedOpenAiRequest>
  readonly push: (...replies: ReadonlyArray<FakeOpenAiReply>) => void
  readonly close: () => Promise<void>
}

/** The checks a real server makes that a client could plausibly get wrong. */
const validate = (body: OpenAiRequestBody): string | undefined => {
  if (body.messages.length === 0) return "'messages' must contain at least one message"
  const answered = new Set<string>()
  const open = new Set<string>()
  for (const [i, message] of body.messages.entries()) {
    if (message.role === "tool") {
      if (message.tool_call_id === undefined || !open.has(message.tool_call_id)) {
        return `messages[${i}]: messages with role 'tool' must be a response to a preceding message with 'tool_calls'`
      }
      answered.add(message.tool_call_id)
    } else {
      for (const id of open) {
        if (!answered.has(id)) {
          return `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. Missing: ${id}`
        }
      }
      open.clear()
      answered.clear()
    }
    for (const call of message.tool_calls ?? []) open.add(call.id)
  }
  return undefined
}

const textOfContent = (content: OpenAiRequestBody["messages"][number]["content"]): string => {
  if (content === undefined || content === null) return ""
  if (typeof content === "string") return content
  return content.map((part) => part.type === "text" && typeof part.text === "string" ? part.text : "").join("")
}

/** `echo: <text of the last user or tool message>`. */
export const echoText = (body: OpenAiRequestBody | undefined): string => {
  const last = body?.messages.filter((m) => m.role === "user" || m.role === "tool").at(-1)
  return `echo: ${last === undefined ? "" : textOfContent(last.content)}`
}

export const textReply = (text: string, shape?: StreamShape): FakeOpenAiReply => ({ kind: "message", text, ...shape })

export const errorReply = (
  status: number,
  message: string,
  extra?: { readonly type?: string; readonly code?: string; readonly headers?: Record<string, string> }
): FakeOpenAiReply => ({ kind: "error", status, message, ...extra })

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

export const startFakeOpenAi = async (
  script?: FakeOpenAiScript,
  options?: FakeOpenAiOptions
): Promise<FakeOpenAiHandle> => {
  const requests: Array<RecordedOpenAiRequest> = []
  const queue: Array<FakeOpenAiReply> = Array.isArray(script) ? [...script] : []
  const scriptFn = typeof script === "function" ? script : undefined
  const open = new Set<ServerResponse>()
  let ids = 0

  const sendError = (
    res: ServerResponse,
    status: number,
    message: string,
    type = "invalid_request_error",
    code: string | null = null,
    headers?: Record<string, string>
  ) => {
    res.writeHead(status, { "content-type": "application/json", ...headers })
    res.end(JSON.stringify({ error: { message, type, param: null, code } }))
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
    const recorded: RecordedOpenAiRequest = {
      index: requests.length,
      method: req.method ?? "",
      path: req.url ?? "",
      headers,
      apiKey: headers["authorization"]?.replace(/^Bearer\s+/i, ""),
      raw,
      body,
      closed
    }
    requests.push(recorded)

    if (req.method !== "POST" || (req.url ?? "").split("?")[0] !== "/v1/chat/completions") {
      return sendError(res, 404, `Unknown path ${req.method} ${req.url}`, "invalid_request_error", "unknown_url")
    }
    if (options?.requireApiKey !== undefined && recorded.apiKey !== options.requireApiKey) {
      return sendError(res, 401, "Incorrect API key provided", "invalid_request_error", "invalid_api_key")
    }
    if (body === undefined) {
      return sendError(res, 400, `Invalid body: ${Result.isFailure(decoded) ? String(decoded.failure) : "?"}`)
    }
    const invalid = validate(body)
    if (invalid !== undefined) return sendError(res, 400, invalid)

    const reply = scriptFn?.(recorded) ?? queue.shift() ?? textReply(echoText(body))
    if (reply.kind === "error") {
      return sendError(res, reply.status, reply.message, reply.type ?? "invalid_request_error", reply.code ?? null, reply.headers)
    }

    const id = `chatcmpl-fake${++ids}`
    const created = Math.floor(Date.now() / 1000)
    const message = reply.kind === "message" ? reply : undefined
    const toolCalls = (message?.toolCalls ?? []).map((call) => ({
      id: call.id ?? `call_fake_${++ids}`,
      name: call.name,
      arguments: typeof call.arguments === "string" ? call.arguments : JSON.stringify(call.arguments)
    }))
    const outText = reply.kind === "message" || reply.kind === "drop" || reply.kind === "truncate" ||
        reply.kind === "streamError"
      ? reply.text ?? ""
      : ""
    const promptTokens = message?.usage?.prompt_tokens ?? estimateTokens(JSON.stringify(body.messages))
    const completionTokens = message?.usage?.completion_tokens ??
      estimateTokens(outText + (message?.reasoning ?? "") + toolCalls.map((c) => c.arguments).join(""))
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: message?.usage?.cached_tokens ?? 0 }
    }
    const finishReason = message?.finishReason ?? (toolCalls.length > 0 ? "tool_calls" : "stop")

    if (body.stream !== true) {
      if (message === undefined) return sendError(res, 500, `The fake cannot send "${reply.kind}" without streaming`)
      res.writeHead(200, { "content-type": "application/json" })
      res.end(JSON.stringify({
        id,
        object: "chat.completion",
        created,
        model: body.model,
        choices: [{
          index: 0,
          message: {
            role: "assistant",
            content: outText.length > 0 ? outText : null,
            ...(toolCalls.length > 0
              ? {
                tool_calls: toolCalls.map((c) => ({
                  id: c.id,
                  type: "function",
                  function: { name: c.name, arguments: c.arguments }
                }))
              }
              : {})
          },
          logprobs: null,
          finish_reason: finishReason
        }],
        usage
      }))
      return
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" })
    const delayMs = message?.delayMs ?? 0
    const chunkSize = message?.chunkSize
    const write = async (data: string) => {
      if (res.destroyed || res.writableEnded) return
      res.write(`data: ${data}\n\n`)
      if (delayMs > 0) await sleep(delayMs)
    }
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
      write(JSON.stringify({
        id,
        object: "chat.completion.chunk",
        created,
        model: body.model,
        system_fingerprint: null,
        choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }]
      }))

    await chunk({ role: "assistant", content: "" })
    if (reply.kind === "hang") return
    if (reply.kind === "malformed") {
      await write("{\"id\":\"chatcmpl-broken\",\"choices\":[{\"delta\":")
      res.end()
      return
    }
    for (const piece of chunksOf(message?.reasoning ?? "", chunkSize)) await chunk({ reasoning_content: piece })
    for (const piece of chunksOf(outText, chunkSize)) await chunk({ content: piece })
    for (const [index, call] of toolCalls.entries()) {
      await chunk({
        tool_calls: [{ index, id: call.id, type: "function", function: { name: call.name, arguments: "" } }]
      })
      for (const piece of chunksOf(call.arguments, chunkSize ?? 10)) {
        await chunk({ tool_calls: [{ index, function: { arguments: piece } }] })
      }
    }
    switch (reply.kind) {
      case "drop":
        res.socket?.destroy()
        return
      case "truncate":
        res.end()
        return
      case "streamError":
        await write(JSON.stringify({ error: { message: reply.message, type: "server_error", code: reply.code ?? null } }))
        res.end()
        return
      case "message":
        await chunk({}, finishReason)
        if (body.stream_options?.include_usage === true) {
          await write(JSON.stringify({
            id,
            object: "chat.completion.chunk",
            created,
            model: body.model,
            system_fingerprint: null,
            choices: [],
            usage
          }))
        }
        await write("[DONE]")
        res.end()
        return
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) sendError(res, 500, `fake failure: ${String(error)}`, "server_error")
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
export const make = (
  script?: FakeOpenAiScript,
  options?: FakeOpenAiOptions
): Effect.Effect<FakeOpenAiHandle, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise(() => startFakeOpenAi(script, options)).pipe(Effect.orDie),
    (handle) => Effect.promise(() => handle.close())
  )

export const FakeOpenAi = { make, start: startFakeOpenAi }

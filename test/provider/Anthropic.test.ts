import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Stream } from "effect"
import type { AssistantMessage, Message } from "../../src/agent/Message.ts"
import { makeAnthropicProvider, sdkTelemetry, toAnthropicParams } from "../../src/provider/Anthropic.ts"
import type { ProviderEvent, ProviderRequest } from "../../src/provider/Provider.ts"
import * as FakeAnthropic from "../support/FakeAnthropic.ts"

const key = Redacted.make("sk-ant-test-key")

const baseRequest = (messages: ReadonlyArray<Message>, extra?: Partial<ProviderRequest>): ProviderRequest => ({
  model: "claude-test-1",
  system: "You are a test.",
  messages,
  tools: [],
  maxTokens: 1024,
  ...extra
})

const user = (text: string): Message => ({ role: "user", content: text, timestamp: 1 })

const providerFor = (fake: FakeAnthropic.FakeAnthropicHandle) =>
  makeAnthropicProvider({ id: "anthropic", apiKey: key, baseUrl: fake.url })

const doneOf = (events: ReadonlyArray<ProviderEvent>): AssistantMessage => {
  const last = events.at(-1)
  if (last?._tag !== "Done") throw new Error(`expected Done last, got ${JSON.stringify(last)}`)
  return last.message
}

const textOf = (events: ReadonlyArray<ProviderEvent>) =>
  events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")

const requestAt = (fake: FakeAnthropic.FakeAnthropicHandle, index: number) => {
  const request = fake.requests[index]
  if (request === undefined) throw new Error(`fake received only ${fake.requests.length} requests`)
  return request
}

const bodyAt = (fake: FakeAnthropic.FakeAnthropicHandle, index: number) => {
  const body = requestAt(fake, index).body
  if (body === undefined) throw new Error(`request ${index} did not decode: ${JSON.stringify(requestAt(fake, index).raw)}`)
  return body
}

const failureOf = (fake: FakeAnthropic.FakeAnthropicHandle, request: ProviderRequest = baseRequest([user("hi")])) =>
  Stream.runCollect(providerFor(fake).stream(request)).pipe(Effect.flip)

describe("Anthropic provider", () => {
  it.live("streams text deltas and ends with Done carrying the assembled message", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([FakeAnthropic.textReply("Hello from the fake model")])
      const events = yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")])))
      assert.strictEqual(events[0]?._tag, "Started", "message_start is the answer beginning")
      assert.strictEqual(events.filter((e) => e._tag === "Started").length, 1)
      assert.isAbove(events.filter((e) => e._tag === "TextDelta").length, 1)
      assert.strictEqual(textOf(events), "Hello from the fake model")
      const message = doneOf(events)
      assert.deepStrictEqual(message.content, [{ type: "text", text: "Hello from the fake model" }])
      assert.strictEqual(message.stopReason, "stop")
      assert.strictEqual(message.provider, "anthropic")
      assert.strictEqual(message.model, "claude-test-1")
      const request = requestAt(fake, 0)
      assert.strictEqual(request.path, "/v1/messages")
      assert.strictEqual(request.apiKey, "sk-ant-test-key")
      const body = bodyAt(fake, 0)
      assert.strictEqual(body.model, "claude-test-1")
      assert.strictEqual(body.stream, true)
      assert.strictEqual(body.max_tokens, 1024)
      assert.strictEqual(body.system, "You are a test.")
      assert.deepStrictEqual(body.messages, [{ role: "user", content: [{ type: "text", text: "hi" }] }])
      assert.isUndefined(body.thinking)
    }))

  it.live("records the SDK's OpenTelemetry span when a tracer provider is registered, and starts none otherwise", () =>
    Effect.scoped(Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const started: Array<string> = []
      let ended = 0
      // The smallest tracer provider the SDK calls, registered where OpenTelemetry's API keeps its globals.
      const span = {
        isRecording: () => true,
        spanContext: () => ({ traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331", traceFlags: 1 }),
        setAttribute: () => span,
        setAttributes: () => span,
        addEvent: () => span,
        addLink: () => span,
        addLinks: () => span,
        setStatus: () => span,
        updateName: () => span,
        recordException: () => undefined,
        end: () => {
          ended++
        }
      }
      const provider = { getTracer: () => ({ startSpan: (name: string) => (started.push(name), span), startActiveSpan: () => undefined }) }
      const globalKey = Symbol.for("opentelemetry.js.api.1")
      yield* Effect.acquireRelease(
        Effect.sync(() => Reflect.set(globalThis, globalKey, { version: "1.10.0", trace: provider })),
        () => Effect.sync(() => Reflect.deleteProperty(globalThis, globalKey))
      )
      yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("traced")])))
      assert.deepStrictEqual(started, ["anthropic.messages.create"])
      assert.strictEqual(ended, 1)
      // The decision itself: the SDK's spans stay on with a provider or its variables, and are off otherwise.
      assert.isUndefined(sdkTelemetry({}))
      yield* Effect.sync(() => Reflect.deleteProperty(globalThis, globalKey))
      assert.isFalse(sdkTelemetry({}), "without a tracer provider the SDK is told to start no span")
      assert.isUndefined(sdkTelemetry({ ANTHROPIC_OPEN_TELEMETRY: "true" }), "the SDK's own variables decide when set")
    })))

  it.live("answers with an echo of the last user message when unscripted", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const events = yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("ping 42")])))
      assert.strictEqual(textOf(events), "echo: ping 42")
    }))

  it.live("maps usage including cache tokens, totalTokens being their sum", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([{
        kind: "message",
        content: [{ type: "text", text: "ok" }],
        usage: { input_tokens: 100, output_tokens: 50, cache_read_input_tokens: 30, cache_creation_input_tokens: 20 }
      }])
      const events = yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")])))
      const done = events.at(-1)
      assert.strictEqual(done?._tag, "Done")
      const expected = { input: 100, output: 50, cacheRead: 30, cacheWrite: 20, totalTokens: 200 }
      assert.deepStrictEqual(doneOf(events).usage, expected)
      if (done?._tag === "Done") assert.deepStrictEqual(done.usage, expected)
    }))

  it.live("enables thinking with the level's budget and round-trips the signature", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        {
          kind: "message",
          content: [
            { type: "thinking", thinking: "Let me weigh this carefully.", signature: "sig-abc-123" },
            { type: "text", text: "Forty-two." }
          ]
        },
        FakeAnthropic.textReply("Still forty-two.")
      ])
      const provider = providerFor(fake)
      const first = yield* Stream.runCollect(
        provider.stream(baseRequest([user("meaning?")], { thinking: "medium", maxTokens: 4096, temperature: 0.2 }))
      )
      const body = bodyAt(fake, 0)
      assert.deepStrictEqual(body.thinking, { type: "enabled", budget_tokens: 8192 })
      assert.isAbove(body.max_tokens, 8192)
      assert.isUndefined(body.temperature, "temperature is never sent")
      assert.strictEqual(
        first.filter((e) => e._tag === "ThinkingDelta").map((e) => e._tag === "ThinkingDelta" ? e.thinking : "").join(""),
        "Let me weigh this carefully."
      )
      const assistant = doneOf(first)
      assert.deepStrictEqual(assistant.content, [
        { type: "thinking", thinking: "Let me weigh this carefully.", thinkingSignature: "sig-abc-123" },
        { type: "text", text: "Forty-two." }
      ])

      yield* Stream.runCollect(provider.stream(baseRequest([user("meaning?"), assistant, user("sure?")], { thinking: "medium" })))
      assert.deepStrictEqual(bodyAt(fake, 1).messages[1], {
        role: "assistant",
        content: [
          { type: "thinking", thinking: "Let me weigh this carefully.", signature: "sig-abc-123" },
          { type: "text", text: "Forty-two." }
        ]
      })
    }))

  it("maps every thinking level to its budget and keeps max_tokens above it", () => {
    const expected = { minimal: 1024, low: 2048, medium: 8192, high: 16384, xhigh: 32000 } as const
    const levels = ["minimal", "low", "medium", "high", "xhigh"] as const
    for (const [level, budget] of Object.entries(expected)) {
      const thinking = levels.find((l) => l === level)
      const params = toAnthropicParams(baseRequest([user("x")], { thinking, maxTokens: 2000 }))
      assert.deepStrictEqual(params.thinking, { type: "enabled", budget_tokens: budget }, level)
      assert.isAbove(params.max_tokens, budget, level)
    }
    assert.isUndefined(toAnthropicParams(baseRequest([user("x")], { thinking: "off" })).thinking)
    assert.notProperty(toAnthropicParams(baseRequest([user("x")], { temperature: 0.3 })), "temperature")
  })

  it("forces a tool as the API spells it, never with extended thinking (the API refuses both at once) or without tools", () => {
    const tools = [{ name: "get_weather", description: "d", inputSchema: { type: "object" } }]
    assert.deepStrictEqual(toAnthropicParams(baseRequest([user("x")], { tools, toolChoice: { _tag: "any" } })).tool_choice, { type: "any" })
    assert.deepStrictEqual(toAnthropicParams(baseRequest([user("x")], { tools, toolChoice: { _tag: "tool", name: "get_weather" } })).tool_choice, { type: "tool", name: "get_weather" })
    assert.notProperty(toAnthropicParams(baseRequest([user("x")], { tools, toolChoice: { _tag: "any" }, thinking: "low", maxTokens: 4000 })), "tool_choice")
    assert.notProperty(toAnthropicParams(baseRequest([user("x")], { toolChoice: { _tag: "any" } })), "tool_choice")
    assert.notProperty(toAnthropicParams(baseRequest([user("x")], { tools })), "tool_choice")
  })

  it.live("streams a tool_use turn, then sends the toolResult follow-up in the API's shape", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        {
          kind: "message",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris", days: [1, 2] } }
          ]
        },
        FakeAnthropic.textReply("It is sunny.")
      ])
      const provider = providerFor(fake)
      const tools = [{
        name: "get_weather",
        description: "Weather by city",
        inputSchema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      }]
      const first = yield* Stream.runCollect(provider.stream(baseRequest([user("weather?")], { tools })))
      assert.deepStrictEqual(first.filter((e) => e._tag === "ToolCallStart"), [
        { _tag: "ToolCallStart", id: "toolu_01", name: "get_weather" }
      ])
      const assistant = doneOf(first)
      assert.strictEqual(assistant.stopReason, "toolUse")
      assert.deepStrictEqual(assistant.content, [
        { type: "text", text: "Checking." },
        { type: "toolCall", id: "toolu_01", name: "get_weather", arguments: { city: "Paris", days: [1, 2] } }
      ])
      assert.deepStrictEqual(bodyAt(fake, 0).tools, [{
        name: "get_weather",
        description: "Weather by city",
        input_schema: { type: "object", properties: { city: { type: "string" } }, required: ["city"] }
      }])

      const history: Array<Message> = [
        user("weather?"),
        assistant,
        {
          role: "toolResult",
          toolCallId: "toolu_01",
          toolName: "get_weather",
          content: [{ type: "text", text: "sunny, 21C" }],
          isError: false,
          timestamp: 2
        }
      ]
      const second = yield* Stream.runCollect(provider.stream(baseRequest(history, { tools })))
      assert.strictEqual(textOf(second), "It is sunny.")
      assert.deepStrictEqual(bodyAt(fake, 1).messages, [
        { role: "user", content: [{ type: "text", text: "weather?" }] },
        {
          role: "assistant",
          content: [
            { type: "text", text: "Checking." },
            { type: "tool_use", id: "toolu_01", name: "get_weather", input: { city: "Paris", days: [1, 2] } }
          ]
        },
        {
          role: "user",
          content: [{ type: "tool_result", tool_use_id: "toolu_01", content: [{ type: "text", text: "sunny, 21C" }] }]
        }
      ])
    }))

  it.live("merges consecutive same-role messages and sends images as base64 blocks", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const history: Array<Message> = [
        user("first"),
        { role: "user", content: [{ type: "image", data: "aGVsbG8=", mimeType: "image/png" }], timestamp: 1 },
        {
          role: "assistant",
          content: [{ type: "toolCall", id: "call:1", name: "ls", arguments: {} }],
          provider: "openai",
          model: "gpt",
          usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 },
          stopReason: "toolUse",
          timestamp: 1
        },
        { role: "toolResult", toolCallId: "call:1", toolName: "ls", content: [], isError: true, timestamp: 1 },
        user("and now?")
      ]
      yield* Stream.runCollect(providerFor(fake).stream(baseRequest(history)))
      assert.deepStrictEqual(bodyAt(fake, 0).messages, [
        {
          role: "user",
          content: [
            { type: "text", text: "first" },
            { type: "image", source: { type: "base64", media_type: "image/png", data: "aGVsbG8=" } }
          ]
        },
        { role: "assistant", content: [{ type: "tool_use", id: "call_1", name: "ls", input: {} }] },
        {
          role: "user",
          content: [
            { type: "tool_result", tool_use_id: "call_1", is_error: true },
            { type: "text", text: "and now?" }
          ]
        }
      ])
    }))

  it("sends a history the same way every time it is sent, merged or not", () => {
    const call: Message = {
      role: "assistant",
      content: [{ type: "toolCall", id: "call_1", name: "ls", arguments: {} }],
      provider: "anthropic",
      model: "m",
      usage: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0 },
      stopReason: "toolUse",
      timestamp: 1
    }
    const result: Message = { role: "toolResult", toolCallId: "call_1", toolName: "ls", content: [{ type: "text", text: "a b" }], isError: false, timestamp: 1 }
    const history = [user("first"), user("second"), call, result, user("next")]
    const once = JSON.stringify(toAnthropicParams(baseRequest(history)).messages)
    const twice = JSON.stringify(toAnthropicParams(baseRequest(history)).messages)
    const longer = toAnthropicParams(baseRequest([...history, user("more")])).messages
    assert.strictEqual(twice, once, "merging did not change the converted messages kept for the next turn")
    assert.strictEqual(JSON.stringify(toAnthropicParams(baseRequest(history)).messages), once)
    assert.deepStrictEqual(longer.map((m) => Array.isArray(m.content) ? m.content.length : 1), [2, 1, 3])
    assert.deepStrictEqual(JSON.parse(once).map((m: { content: Array<unknown> }) => m.content.length), [2, 1, 2])
  })

  it.live("reports a stream with garbage data as MalformedStream", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([{ kind: "malformed" }])
      const error = yield* failureOf(fake)
      assert.strictEqual(error.reason, "MalformedStream")
      assert.isTrue(error.retryable)
    }))

  it.live("reports a stream that ends without message_stop as MalformedStream, after the text it got", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([{ kind: "truncate", content: [{ type: "text", text: "partial answer" }] }])
      const seen: Array<ProviderEvent> = []
      const error = yield* Stream.runForEach(providerFor(fake).stream(baseRequest([user("hi")])), (e) =>
        Effect.sync(() => {
          seen.push(e)
        })).pipe(Effect.flip)
      assert.strictEqual(error.reason, "MalformedStream")
      assert.match(error.message, /message_stop/)
      assert.strictEqual(textOf(seen), "partial answer")
    }))

  it.live("reports a connection dropped mid-stream as a retryable Connection error", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([{ kind: "drop", content: [{ type: "text", text: "half of it" }] }])
      const error = yield* failureOf(fake)
      assert.strictEqual(error.reason, "Connection")
      assert.isTrue(error.retryable)
    }))

  it.live("maps an SSE error event by its type", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        { kind: "streamError", type: "overloaded_error", message: "Overloaded" },
        { kind: "streamError", type: "api_error", message: "Internal server error", content: [{ type: "text", text: "a" }] }
      ])
      const overloaded = yield* failureOf(fake)
      assert.strictEqual(overloaded.reason, "Overloaded")
      assert.strictEqual(overloaded.message, "Overloaded")
      const server = yield* failureOf(fake)
      assert.strictEqual(server.reason, "ServerError")
    }))

  it.live("maps HTTP error statuses and headers to ProviderError reasons", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([
        FakeAnthropic.errorReply(401, "authentication_error", "invalid x-api-key"),
        FakeAnthropic.errorReply(403, "permission_error", "no access"),
        FakeAnthropic.errorReply(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        FakeAnthropic.errorReply(400, "invalid_request_error", "messages.0.content: field required"),
        FakeAnthropic.errorReply(404, "not_found_error", "model: claude-nope"),
        FakeAnthropic.rateLimited(7),
        FakeAnthropic.errorReply(429, "rate_limit_error", "slow down", { "retry-after-ms": "1500", "retry-after": "9" }),
        FakeAnthropic.errorReply(429, "rate_limit_error", "slow down", {
          "retry-after": new Date(Date.now() + 30_000).toUTCString()
        }),
        FakeAnthropic.overloaded(),
        FakeAnthropic.errorReply(500, "api_error", "Internal server error"),
        FakeAnthropic.errorReply(500, "overloaded_error", "Overloaded")
      ])
      const errors = []
      for (let i = 0; i < 11; i++) errors.push(yield* failureOf(fake))
      assert.deepStrictEqual(errors.map((e) => e.reason), [
        "Auth",
        "Auth",
        "ContextOverflow",
        "BadRequest",
        "NotFound",
        "RateLimited",
        "RateLimited",
        "RateLimited",
        "Overloaded",
        "ServerError",
        "Overloaded"
      ])
      assert.deepStrictEqual(errors.map((e) => e.status), [401, 403, 400, 400, 404, 429, 429, 429, 529, 500, 500])
      assert.strictEqual(errors[2]?.message, "prompt is too long: 210000 tokens > 200000 maximum")
      assert.strictEqual(errors[5]?.retryAfterMs, 7000)
      assert.strictEqual(errors[6]?.retryAfterMs, 1500)
      const fromDate = errors[7]?.retryAfterMs ?? 0
      assert.isTrue(fromDate > 25_000 && fromDate <= 30_000, `retry-after date gave ${fromDate}`)
      assert.isFalse(errors[3]?.retryable)
      assert.isFalse(errors[3]?.failover)
      assert.strictEqual(fake.requests.length, 11, "the SDK must not retry on its own")
    }))

  it.live("reports an unreachable server as a Connection error", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.promise(() => FakeAnthropic.startFakeAnthropic())
      yield* Effect.promise(() => fake.close())
      const error = yield* failureOf(fake)
      assert.strictEqual(error.reason, "Connection")
    }))

  it.live("interrupting the stream aborts the upstream HTTP request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make([{ kind: "hang" }])
      const fiber = yield* Effect.forkChild(Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")]))))
      while (fake.requests.length === 0) yield* Effect.sleep("5 millis")
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(fiber)
      const closed = yield* Effect.promise(() => requestAt(fake, 0).closed).pipe(Effect.timeoutOption("3 seconds"))
      assert.deepStrictEqual(closed, Option.some("aborted"))
    }))

  it.live("without an API key, fails only when called, with a message naming both settings", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const provider = makeAnthropicProvider({ id: "claude", apiKey: undefined, baseUrl: fake.url })
      assert.strictEqual(provider.id, "claude")
      const error = yield* Stream.runCollect(provider.stream(baseRequest([user("hi")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "MissingApiKey")
      assert.include(error.message, "ANTHROPIC_API_KEY")
      assert.include(error.message, "models.providers.claude.apiKey")
      assert.strictEqual(fake.requests.length, 0)
    }))

  it.live("sends configured extra headers", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const provider = makeAnthropicProvider({ id: "anthropic", apiKey: key, baseUrl: fake.url, headers: { "x-team": "beam" } })
      yield* Stream.runCollect(provider.stream(baseRequest([user("hi")])))
      assert.strictEqual(requestAt(fake, 0).headers["x-team"], "beam")
    }))
})

describe("FakeAnthropic", () => {
  it.live("rejects requests the real API would reject", () =>
    Effect.gen(function*() {
      const fake = yield* FakeAnthropic.make()
      const post = (body: unknown) =>
        Effect.promise(() =>
          fetch(`${fake.url}/v1/messages`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-api-key": "k" },
            body: JSON.stringify(body)
          }).then(async (r) => ({ status: r.status, body: await r.text() }))
        )
      const twoUsers = yield* post({
        model: "m",
        max_tokens: 10,
        messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }]
      })
      assert.strictEqual(twoUsers.status, 400)
      assert.include(twoUsers.body, "invalid_request_error")
      const unanswered = yield* post({
        model: "m",
        max_tokens: 10,
        messages: [
          { role: "user", content: "a" },
          { role: "assistant", content: [{ type: "tool_use", id: "t1", name: "x", input: {} }] },
          { role: "user", content: "b" }
        ]
      })
      assert.strictEqual(unanswered.status, 400)
      const json = yield* post({ model: "m", max_tokens: 10, messages: [{ role: "user", content: "hello" }] })
      assert.strictEqual(json.status, 200)
      assert.include(json.body, "\"stop_reason\":\"end_turn\"")
      assert.include(json.body, "echo: hello")
    }))
})

describe("Anthropic provider timeouts", () => {
  it.live("maps requestTimeoutMs expiry to Timeout", () =>
    Effect.gen(function*() {
      const net = yield* Effect.promise(() => import("node:net"))
      const sockets: Array<import("node:net").Socket> = []
      const server = net.createServer((socket) => {
        sockets.push(socket)
      })
      yield* Effect.acquireRelease(
        Effect.promise(() => new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))),
        () =>
          Effect.promise(() =>
            new Promise<void>((resolve) => {
              for (const s of sockets) s.destroy()
              server.close(() => resolve())
            })
          )
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const provider = makeAnthropicProvider({
        id: "anthropic",
        apiKey: key,
        baseUrl: `http://127.0.0.1:${port}`,
        requestTimeoutMs: 100
      })
      const error = yield* Stream.runCollect(provider.stream(baseRequest([user("x")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Timeout")
    }))
})

/**
 * A server that answers POST /v1/messages with the given SSE body, cut into
 * the given pieces (bytes), each written after a pause so each arrives as a
 * network chunk of its own.
 */
const scriptedSse = (pieces: ReadonlyArray<Uint8Array | string>) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const http = await import("node:http")
      const server = http.createServer((req, res) => {
        req.resume()
        req.on("end", async () => {
          res.writeHead(200, { "content-type": "text/event-stream" })
          for (const piece of pieces) {
            res.write(piece)
            await new Promise((resolve) => setTimeout(resolve, 15))
          }
          res.end()
        })
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()))
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      return { server, url: `http://127.0.0.1:${port}` }
    }),
    ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
  )

const sseEvent = (payload: { readonly type: string } & Record<string, unknown>) => `event: ${payload.type}\ndata: ${JSON.stringify(payload)}\n\n`
const messageStart = sseEvent({ type: "message_start", message: { id: "msg_1", type: "message", role: "assistant", content: [], model: "claude-test-1", stop_reason: null, usage: { input_tokens: 3, output_tokens: 1 } } })
const textBlock = (text: string) => sseEvent({ type: "content_block_start", index: 0, content_block: { type: "text", text: "" } }) +
  sseEvent({ type: "content_block_delta", index: 0, delta: { type: "text_delta", text } }) +
  sseEvent({ type: "content_block_stop", index: 0 })
const messageEnd = sseEvent({ type: "message_delta", delta: { stop_reason: "end_turn", stop_sequence: null }, usage: { output_tokens: 2 } }) + sseEvent({ type: "message_stop" })

const scriptedProvider = (url: string) => makeAnthropicProvider({ id: "anthropic", apiKey: key, baseUrl: url })

describe("Anthropic provider reading the event stream", () => {
  it.live("reassembles events and characters cut across network chunks", () =>
    Effect.scoped(Effect.gen(function*() {
      const text = messageStart + textBlock("héllo ✓ wörld") + messageEnd
      const bytes = new TextEncoder().encode(text)
      // Cut inside the delta's data line, then between the bytes of "✓" (e2 9c 93).
      const inLine = new TextEncoder().encode(text.slice(0, text.indexOf("text_delta"))).length
      const inChar = bytes.indexOf(0xe2) + 1
      const pieces = [bytes.slice(0, inLine), bytes.slice(inLine, inChar), bytes.slice(inChar)]
      const { url } = yield* scriptedSse(pieces)
      const events = [...yield* Stream.runCollect(scriptedProvider(url).stream(baseRequest([user("hi")])))]
      assert.strictEqual(textOf(events), "héllo ✓ wörld")
      assert.strictEqual(doneOf(events).stopReason, "stop")
      assert.strictEqual(doneOf(events).usage.output, 2)
    })))

  it.live("hands on what one network chunk completed as one batch", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* scriptedSse([messageStart + textBlock("one") + messageEnd])
      const batches = [...yield* Stream.runCollect(Stream.chunks(scriptedProvider(url).stream(baseRequest([user("hi")]))))]
      assert.deepStrictEqual(batches.map((batch) => batch.map((e) => e._tag)), [["Started", "TextDelta"], ["Done"]])
    })))

  it.live("reports well-formed JSON of the wrong shape as MalformedStream", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* scriptedSse([messageStart + sseEvent({ type: "content_block_delta", index: 0, delta: "not an object" }) + textBlock("after") + messageEnd])
      const error = yield* Stream.runCollect(scriptedProvider(url).stream(baseRequest([user("hi")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "MalformedStream")
      assert.include(error.message, "content_block_delta event without the fields")
    })))

  it.live("skips event types it does not know once the message has started, and refuses them before", () =>
    Effect.scoped(Effect.gen(function*() {
      const later = yield* scriptedSse([messageStart + sseEvent({ type: "future_event", detail: 1 }) + textBlock("fine") + messageEnd])
      const events = [...yield* Stream.runCollect(scriptedProvider(later.url).stream(baseRequest([user("hi")])))]
      assert.strictEqual(textOf(events), "fine")
      const first = yield* scriptedSse([sseEvent({ type: "future_event" }) + messageStart + textBlock("no") + messageEnd])
      const error = yield* Stream.runCollect(scriptedProvider(first.url).stream(baseRequest([user("hi")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "MalformedStream")
      assert.include(error.message, "future_event")
    })))

  it.live("an error event whose data is not JSON keeps its text", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* scriptedSse([messageStart + "event: error\ndata: upstream fell over\n\n"])
      const error = yield* Stream.runCollect(scriptedProvider(url).stream(baseRequest([user("hi")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Unknown")
      assert.strictEqual(error.message, "upstream fell over")
    })))
})

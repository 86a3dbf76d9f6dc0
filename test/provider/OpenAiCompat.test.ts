import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Option, Redacted, Stream } from "effect"
import type { AssistantMessage, Message } from "../../src/agent/Message.ts"
import { makeOpenAiCompatProvider, toChatCompletionsBody } from "../../src/provider/OpenAiCompat.ts"
import type { ProviderEvent, ProviderRequest } from "../../src/provider/Provider.ts"
import * as FakeOpenAi from "../support/FakeOpenAi.ts"

const user = (text: string): Message => ({ role: "user", content: text, timestamp: 1 })

const baseRequest = (messages: ReadonlyArray<Message>, extra?: Partial<ProviderRequest>): ProviderRequest => ({
  model: "llama3.1:8b",
  system: "Be brief.",
  messages,
  tools: [],
  maxTokens: 512,
  ...extra
})

const providerFor = (fake: FakeOpenAi.FakeOpenAiHandle, apiKey?: string) =>
  makeOpenAiCompatProvider({
    id: "ollama",
    apiKey: apiKey === undefined ? undefined : Redacted.make(apiKey),
    baseUrl: `${fake.url}/v1/`
  })

const doneOf = (events: ReadonlyArray<ProviderEvent>): AssistantMessage => {
  const last = events.at(-1)
  if (last?._tag !== "Done") throw new Error(`expected Done last, got ${JSON.stringify(last)}`)
  return last.message
}

const textOf = (events: ReadonlyArray<ProviderEvent>) =>
  events.map((e) => (e._tag === "TextDelta" ? e.text : "")).join("")

const requestAt = (fake: FakeOpenAi.FakeOpenAiHandle, index: number) => {
  const request = fake.requests[index]
  if (request === undefined) throw new Error(`fake received only ${fake.requests.length} requests`)
  return request
}

const bodyAt = (fake: FakeOpenAi.FakeOpenAiHandle, index: number) => {
  const body = requestAt(fake, index).body
  if (body === undefined) throw new Error(`request ${index} did not decode: ${JSON.stringify(requestAt(fake, index).raw)}`)
  return body
}

const failureOf = (fake: FakeOpenAi.FakeOpenAiHandle) =>
  Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")]))).pipe(Effect.flip)

describe("OpenAI-compatible provider", () => {
  it("forces a tool as the chat completions API spells it, and only with tools", () => {
    const base = { model: "m", system: "", messages: [], maxTokens: 10, tools: [{ name: "get_weather", description: "d", inputSchema: { type: "object" } }] }
    assert.strictEqual(toChatCompletionsBody({ ...base, toolChoice: { _tag: "any" } })["tool_choice"], "required")
    assert.deepStrictEqual(toChatCompletionsBody({ ...base, toolChoice: { _tag: "tool", name: "get_weather" } })["tool_choice"], { type: "function", function: { name: "get_weather" } })
    assert.notProperty(toChatCompletionsBody({ ...base, tools: [], toolChoice: { _tag: "any" } }), "tool_choice")
    assert.notProperty(toChatCompletionsBody(base), "tool_choice")
  })

  it.live("streams text and maps usage, keeping cached prompt tokens apart", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([{
        kind: "message",
        text: "Hello there, friend",
        usage: { prompt_tokens: 120, completion_tokens: 7, cached_tokens: 100 }
      }])
      const events = yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")])))
      assert.strictEqual(events[0]?._tag, "Started", "the first chunk is the answer beginning")
      assert.strictEqual(events.filter((e) => e._tag === "Started").length, 1)
      assert.isAbove(events.filter((e) => e._tag === "TextDelta").length, 1)
      assert.strictEqual(textOf(events), "Hello there, friend")
      const message = doneOf(events)
      assert.deepStrictEqual(message.content, [{ type: "text", text: "Hello there, friend" }])
      assert.strictEqual(message.stopReason, "stop")
      assert.strictEqual(message.provider, "ollama")
      assert.deepStrictEqual(message.usage, { input: 20, output: 7, cacheRead: 100, cacheWrite: 0, totalTokens: 127 })
      const request = requestAt(fake, 0)
      assert.strictEqual(request.path, "/v1/chat/completions")
      assert.isUndefined(request.headers["authorization"], "no key configured, no Authorization header")
      const body = bodyAt(fake, 0)
      assert.strictEqual(body.stream, true)
      assert.deepStrictEqual(body.stream_options, { include_usage: true })
      assert.strictEqual(body.max_tokens, 512)
      assert.deepStrictEqual(body.messages, [
        { role: "system", content: "Be brief." },
        { role: "user", content: "hi" }
      ])
    }))

  it.live("sends the API key as a bearer token when configured", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make(undefined, { requireApiKey: "sk-local" })
      const events = yield* Stream.runCollect(providerFor(fake, "sk-local").stream(baseRequest([user("yo")])))
      assert.strictEqual(textOf(events), "echo: yo")
      const error = yield* Stream.runCollect(providerFor(fake, "wrong").stream(baseRequest([user("yo")]))).pipe(
        Effect.flip
      )
      assert.strictEqual(error.reason, "Auth")
      assert.strictEqual(error.message, "Incorrect API key provided")
    }))

  it.live("assembles tool call deltas by index and sends results back as tool messages", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([
        {
          kind: "message",
          text: "Let me look.",
          toolCalls: [
            { id: "call_a", name: "read", arguments: { path: "/etc/hosts" } },
            { id: "call_b", name: "exec", arguments: { command: "ls -la /tmp" } }
          ]
        },
        FakeOpenAi.textReply("Done.")
      ])
      const tools = [{ name: "read", description: "Read a file", inputSchema: { type: "object", properties: {} } }]
      const provider = providerFor(fake)
      const first = yield* Stream.runCollect(provider.stream(baseRequest([user("look")], { tools })))
      assert.deepStrictEqual(first.filter((e) => e._tag === "ToolCallStart"), [
        { _tag: "ToolCallStart", id: "call_a", name: "read" },
        { _tag: "ToolCallStart", id: "call_b", name: "exec" }
      ])
      const assistant = doneOf(first)
      assert.strictEqual(assistant.stopReason, "toolUse")
      assert.deepStrictEqual(assistant.content, [
        { type: "text", text: "Let me look." },
        { type: "toolCall", id: "call_a", name: "read", arguments: { path: "/etc/hosts" } },
        { type: "toolCall", id: "call_b", name: "exec", arguments: { command: "ls -la /tmp" } }
      ])
      assert.deepStrictEqual(bodyAt(fake, 0).tools, [{
        type: "function",
        function: { name: "read", description: "Read a file", parameters: { type: "object", properties: {} } }
      }])

      const history: Array<Message> = [
        user("look"),
        assistant,
        {
          role: "toolResult",
          toolCallId: "call_a",
          toolName: "read",
          content: [{ type: "text", text: "127.0.0.1 localhost" }],
          isError: false,
          timestamp: 2
        },
        {
          role: "toolResult",
          toolCallId: "call_b",
          toolName: "exec",
          content: [{ type: "text", text: "total 0" }],
          isError: false,
          timestamp: 2
        }
      ]
      const second = yield* Stream.runCollect(provider.stream(baseRequest(history, { tools })))
      assert.strictEqual(textOf(second), "Done.")
      assert.deepStrictEqual(bodyAt(fake, 1).messages.slice(1), [
        { role: "user", content: "look" },
        {
          role: "assistant",
          content: "Let me look.",
          tool_calls: [
            { id: "call_a", type: "function", function: { name: "read", arguments: "{\"path\":\"/etc/hosts\"}" } },
            { id: "call_b", type: "function", function: { name: "exec", arguments: "{\"command\":\"ls -la /tmp\"}" } }
          ]
        },
        { role: "tool", tool_call_id: "call_a", content: "127.0.0.1 localhost" },
        { role: "tool", tool_call_id: "call_b", content: "total 0" }
      ])
    }))

  it.live("keeps invalid JSON tool arguments as the raw string", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([{ kind: "message", toolCalls: [{ id: "c1", name: "read", arguments: "{path: oops" }] }])
      const events = yield* Stream.runCollect(providerFor(fake).stream(baseRequest([user("x")])))
      assert.deepStrictEqual(doneOf(events).content, [{ type: "toolCall", id: "c1", name: "read", arguments: "{path: oops" }])
    }))

  it.live("streams reasoning_content as thinking and maps finish_reason length", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([
        { kind: "message", reasoning: "think think", text: "answer", finishReason: "length" }
      ])
      const events = yield* Stream.runCollect(
        providerFor(fake).stream(baseRequest([user("x")], { thinking: "xhigh", temperature: 0.5 }))
      )
      assert.deepStrictEqual(events.filter((e) => e._tag === "ThinkingDelta").map((e) => e._tag === "ThinkingDelta" ? e.thinking : ""), [
        "think ",
        "think"
      ])
      const message = doneOf(events)
      assert.deepStrictEqual(message.content, [{ type: "thinking", thinking: "think think" }, { type: "text", text: "answer" }])
      assert.strictEqual(message.stopReason, "length")
      assert.strictEqual(bodyAt(fake, 0).reasoning_effort, "high")
      assert.strictEqual(bodyAt(fake, 0).temperature, 0.5)
    }))

  it.live("maps HTTP error statuses to ProviderError reasons", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([
        FakeOpenAi.errorReply(401, "bad key"),
        FakeOpenAi.errorReply(404, "model 'nope' not found", { code: "model_not_found" }),
        FakeOpenAi.errorReply(429, "Rate limit reached", { type: "requests", headers: { "retry-after": "3" } }),
        FakeOpenAi.errorReply(400, "This model's maximum context length is 8192 tokens", {
          code: "context_length_exceeded"
        }),
        FakeOpenAi.errorReply(400, "Invalid 'messages[0].role'"),
        FakeOpenAi.errorReply(500, "The server had an error", { type: "server_error" }),
        FakeOpenAi.errorReply(503, "Service unavailable", { type: "server_error" })
      ])
      const errors = []
      for (let i = 0; i < 7; i++) errors.push(yield* failureOf(fake))
      assert.deepStrictEqual(errors.map((e) => e.reason), [
        "Auth",
        "NotFound",
        "RateLimited",
        "ContextOverflow",
        "BadRequest",
        "ServerError",
        "Overloaded"
      ])
      assert.deepStrictEqual(errors.map((e) => e.status), [401, 404, 429, 400, 400, 500, 503])
      assert.strictEqual(errors[2]?.retryAfterMs, 3000)
      assert.strictEqual(errors[4]?.message, "Invalid 'messages[0].role'")
    }))

  it.live("maps broken streams: garbage, truncation, dropped connection, error chunk", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([
        { kind: "malformed" },
        { kind: "truncate", text: "half" },
        { kind: "drop", text: "half" },
        { kind: "streamError", message: "CUDA out of memory", text: "a" }
      ])
      const reasons = []
      for (let i = 0; i < 4; i++) reasons.push((yield* failureOf(fake)).reason)
      assert.deepStrictEqual(reasons, ["MalformedStream", "MalformedStream", "Connection", "ServerError"])
    }))

  it.live("reports an unreachable server as a Connection error", () =>
    Effect.gen(function*() {
      const fake = yield* Effect.promise(() => FakeOpenAi.startFakeOpenAi())
      yield* Effect.promise(() => fake.close())
      const error = yield* failureOf(fake)
      assert.strictEqual(error.reason, "Connection")
    }))

  it.live("times out when the server does not answer within requestTimeoutMs", () =>
    Effect.gen(function*() {
      // A bare TCP listener that accepts and never answers.
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
      const provider = makeOpenAiCompatProvider({
        id: "slow",
        apiKey: undefined,
        baseUrl: `http://127.0.0.1:${port}/v1`,
        requestTimeoutMs: 100
      })
      const error = yield* Stream.runCollect(provider.stream(baseRequest([user("x")]))).pipe(Effect.flip)
      assert.strictEqual(error.reason, "Timeout")
    }))

  it.live("interrupting the stream aborts the upstream HTTP request", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make([{ kind: "hang" }])
      const fiber = yield* Effect.forkChild(Stream.runCollect(providerFor(fake).stream(baseRequest([user("hi")]))))
      while (fake.requests.length === 0) yield* Effect.sleep("5 millis")
      yield* Effect.sleep("20 millis")
      yield* Fiber.interrupt(fiber)
      const closed = yield* Effect.promise(() => requestAt(fake, 0).closed).pipe(Effect.timeoutOption("3 seconds"))
      assert.deepStrictEqual(closed, Option.some("aborted"))
    }))

  it.live("sends images as data URLs in content parts", () =>
    Effect.gen(function*() {
      const fake = yield* FakeOpenAi.make()
      yield* Stream.runCollect(providerFor(fake).stream(baseRequest([{
        role: "user",
        content: [{ type: "text", text: "what is this" }, { type: "image", data: "aGk=", mimeType: "image/jpeg" }],
        timestamp: 0
      }])))
      assert.deepStrictEqual(bodyAt(fake, 0).messages[1], {
        role: "user",
        content: [
          { type: "text", text: "what is this" },
          { type: "image_url", image_url: { url: "data:image/jpeg;base64,aGk=" } }
        ]
      })
    }))
})

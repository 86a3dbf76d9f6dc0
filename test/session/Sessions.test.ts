import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Schema, Stream } from "effect"
import { type Tool, ToolError } from "../../src/agent/Tool.ts"
import type { TurnEvent } from "../../src/agent/TurnEvent.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import * as Transcript from "../../src/session/Transcript.ts"
import { errorReply, FakeAnthropic, messagesJson, type RecordedAnthropicRequest, lastRequestOf, systemText, userTexts } from "../support/FakeAnthropic.ts"
import { FakeOpenAi } from "../support/FakeOpenAi.ts"
import * as TestApp from "../support/TestApp.ts"
import { waitUntil } from "../support/WaitUntil.ts"

const AddInput = Schema.Struct({ a: Schema.Number, b: Schema.Number })
const addTool: Tool = {
  name: "add",
  summary: "Add two numbers",
  description: "Adds a and b",
  inputSchema: { type: "object", properties: { a: { type: "number" }, b: { type: "number" } }, required: ["a", "b"] },
  run: (input) =>
    Schema.decodeUnknownEffect(AddInput)(input).pipe(
      Effect.map(({ a, b }) => ({ content: [{ type: "text" as const, text: String(a + b) }] })),
      Effect.mapError((error) => new ToolError({ tool: "add", message: error.message }))
    )
}
/** A tool with a bug: it dies, which must crash (and restart) only its own session. */
const crashTool: Tool = {
  name: "crash",
  summary: "Crash",
  description: "Has a bug",
  inputSchema: { type: "object", properties: {} },
  run: () => Effect.die(new Error("bug in crash tool"))
}

const lastUserText = (request: RecordedAnthropicRequest): string => {
  const last = request.body?.messages.filter((m) => m.role === "user").at(-1)
  if (last === undefined) return ""
  if (typeof last.content === "string") return last.content
  return last.content.map((b) => typeof b["text"] === "string" ? b["text"] : "").join("")
}

const collect = (stream: Stream.Stream<TurnEvent, { readonly _tag: string; readonly message: string }>) => Stream.runCollect(stream).pipe(Effect.map((chunk) => [...chunk]))
const completed = (events: ReadonlyArray<TurnEvent>) => events.find((e): e is Extract<TurnEvent, { _tag: "TurnCompleted" }> => e._tag === "TurnCompleted")
const turn = (text: string) => ({ runId: crypto.randomUUID(), text })

const readTranscript = (home: string, sessionId: string) =>
  Effect.promise(() => fs.readFile(path.join(home, "agents", "main", "sessions", `${sessionId}.jsonl`), "utf8")).pipe(Effect.map(Transcript.parse))

describe("Sessions", () => {
  it.live("runs a turn end to end through the official SDK and persists it", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const events = yield* collect(sessions.send("agent:main:main", turn("hello there")))
        assert.strictEqual(events[0]?._tag, "TurnStarted")
        assert.isTrue(events.some((e) => e._tag === "TextDelta"))
        assert.strictEqual(completed(events)?.text, "echo: hello there")
        assert.strictEqual(fake.requests[0]?.apiKey, "sk-test")
        const system = systemText(fake.requests[0])
        assert.include(system, "You are a personal assistant running inside BeamClaw.")
        assert.include(system, "## AGENTS.md", "workspace files are injected")
        const [row] = yield* sessions.list()
        assert.strictEqual(row?.key, "agent:main:main")
        assert.isAbove(row?.entry.totalTokens ?? 0, 0, "usage is accounted per session")
        const transcript = yield* readTranscript(home, row?.entry.sessionId ?? "")
        assert.strictEqual(transcript.header?.key, "agent:main:main")
        assert.deepStrictEqual(transcript.entries.map((e) => e.type === "message" ? e.message.role : e.type), ["user", "assistant"])
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("runs tool calls through the registry until the model stops", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make([
        { kind: "message", content: [{ type: "text", text: "Let me add." }, { type: "tool_use", id: "toolu_1", name: "add", input: { a: 2, b: 3 } }], stopReason: "tool_use" }
      ])
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const events = yield* collect(sessions.send("agent:main:main", turn("what is 2+3?")))
        const finished = events.find((e) => e._tag === "ToolFinished")
        assert.deepStrictEqual(finished, { _tag: "ToolFinished", id: "toolu_1", name: "add", isError: false, output: "5" })
        assert.strictEqual(completed(events)?.text, "echo: 5", "the second model call saw the tool result")
        assert.strictEqual(fake.requests.length, 2)
        assert.deepStrictEqual(fake.requests[0]?.body?.tools?.map((t) => t.name), ["add"])
        assert.include(messagesJson(fake.requests[1]), `"tool_use_id":"toolu_1"`)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, tools: [addTool] })))
    })))

  it.live("a crash in one session restarts it from its transcript while another session's turn completes", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) => {
        const text = lastUserText(request)
        if (text === "boom") return { kind: "message", content: [{ type: "tool_use", id: "toolu_crash", name: "crash", input: {} }], stopReason: "tool_use" }
        if (text === "slow") return { kind: "message", content: [{ type: "text", text: "slow answer in several words" }], delayMs: 40 }
        return undefined
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:a", turn("first")))
        const other = yield* Effect.forkChild(collect(sessions.send("agent:main:b", turn("slow"))))
        const crashed = yield* collect(sessions.send("agent:main:a", turn("boom"))).pipe(Effect.flip)
        assert.strictEqual(crashed._tag, "SessionCrashed")
        const otherEvents = yield* Fiber.join(other)
        assert.strictEqual(completed(otherEvents)?.text, "slow answer in several words", "the other session did not notice")
        const after = yield* collect(sessions.send("agent:main:a", turn("after")))
        assert.strictEqual(completed(after)?.text, "echo: after")
        const history = messagesJson(fake.requests.at(-1))
        assert.include(history, "first", "the restarted session kept its history")
        assert.include(history, "echo: first")
        assert.include(history, "toolu_crash", "the interrupted tool call was closed with a result")
        const stats = yield* sessions.stats
        assert.strictEqual(stats.restarts, 1)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, tools: [crashTool] })))
    })))

  it.live("stops a session that keeps crashing, and a later message starts it again", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) =>
        lastUserText(request).startsWith("boom") ? { kind: "message", content: [{ type: "tool_use", id: `toolu_${request.index}`, name: "crash", input: {} }], stopReason: "tool_use" } : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("boom 1"))).pipe(Effect.flip)
        yield* collect(sessions.send("agent:main:main", turn("boom 2"))).pipe(Effect.flip)
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.gaveUp === 1)), "the supervisor to give up")
        const after = yield* collect(sessions.send("agent:main:main", turn("hello again")))
        assert.strictEqual(completed(after)?.text, "echo: hello again")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, tools: [crashTool], config: { session: { supervisor: { maxRestarts: 1, withinSeconds: 60, backoffMs: 5 } } } })))
    })))

  it.live("abort cancels the provider request and leaves a transcript the API accepts", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make([{ kind: "message", content: [{ type: "text", text: "one two three four five six seven eight nine ten" }], delayMs: 100 }])
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const events: Array<TurnEvent> = []
        const running = yield* Effect.forkChild(sessions.send("agent:main:main", turn("count")).pipe(
          Stream.runForEach((event) => Effect.sync(() => events.push(event)))
        ))
        yield* waitUntil(Effect.sync(() => events.some((e) => e._tag === "TextDelta")), "the first delta")
        assert.isTrue(yield* sessions.abort("agent:main:main"))
        const failure = yield* Fiber.join(running).pipe(Effect.flip)
        assert.strictEqual(failure._tag, "TurnAborted")
        assert.strictEqual(yield* Effect.promise(() => fake.requests[0]?.closed ?? Promise.resolve("none")), "aborted")
        const history = yield* sessions.history("agent:main:main")
        const last = history.at(-1)
        assert.isTrue(last?.type === "message" && last.message.role === "assistant" && last.message.stopReason === "aborted")
        const next = yield* collect(sessions.send("agent:main:main", turn("again")))
        assert.strictEqual(completed(next)?.text, "echo: again", "the fake validates the history; it accepted it")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("a caller that stops listening cancels its turn", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make([{ kind: "hang" }])
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const listening = yield* Effect.forkChild(sessions.send("agent:main:main", turn("hello")).pipe(Stream.runDrain))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 1), "the request")
        yield* Fiber.interrupt(listening)
        assert.strictEqual(yield* Effect.promise(() => fake.requests[0]?.closed ?? Promise.resolve("none")), "aborted")
        const next = yield* collect(sessions.send("agent:main:main", turn("still there?")))
        // The unanswered message stays in the history: it reaches the model with the next one.
        assert.strictEqual(completed(next)?.text, "echo: hellostill there?")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("a turn that exceeds its timeout is stopped with a clear error", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make([{ kind: "hang" }])
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const error = yield* collect(sessions.send("agent:main:main", turn("hello"))).pipe(Effect.flip)
        assert.strictEqual(error._tag, "TurnTimeout")
        assert.include(error.message, "longer than 1s")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { agents: { defaults: { timeoutSeconds: 1 } } } })))
    })))

  it.live("passivates idle sessions and revives them with their history", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("remember me")))
        assert.strictEqual((yield* sessions.stats).live, 1)
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0 && s.passivations === 1)), "passivation")
        const next = yield* collect(sessions.send("agent:main:main", turn("back")))
        assert.strictEqual(completed(next)?.text, "echo: back")
        assert.include(messagesJson(fake.requests.at(-1)), "remember me")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { session: { idle: { passivateAfterSeconds: 1 } } } })))
    })))

  it.live("passivates a one-shot session as soon as its turn ends, and revives it with its history if it is addressed again", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        // The default idle timeout is 5 minutes: only the one-shot flag can passivate within this test.
        yield* collect(sessions.send("agent:main:openai:one", { ...turn("only once"), oneShot: true }))
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0 && s.passivations === 1)), "the one-shot session to be passivated", 2000)
        // An ordinary session stays live.
        yield* collect(sessions.send("agent:main:kept", turn("stay")))
        yield* Effect.sleep("100 millis")
        assert.strictEqual((yield* sessions.stats).live, 1)
        const again = yield* collect(sessions.send("agent:main:openai:one", turn("again")))
        assert.strictEqual(completed(again)?.text, "echo: again")
        assert.include(messagesJson(fake.requests.at(-1)), "only once")
        assert.strictEqual((yield* sessions.stats).live, 2, "addressed again without the flag, it stays live")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("mail queued behind a one-shot turn is served, not lost; a one-shot turn cut by its caller leaves no live session", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make([{ kind: "message", content: [{ type: "text", text: "a slow answer of several words" }], delayMs: 50 }, { kind: "hang" }])
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const key = "agent:main:openai:queued"
        const running = yield* Effect.forkChild(collect(sessions.send(key, { ...turn("first"), oneShot: true })))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 1), "the request")
        const patched = yield* Effect.forkChild(sessions.patch(key, { label: "queued behind" }))
        const history = yield* Effect.forkChild(sessions.history(key))
        assert.strictEqual(completed(yield* Fiber.join(running))?.text, "a slow answer of several words")
        assert.strictEqual((yield* Fiber.join(patched)).label, "queued behind")
        assert.strictEqual((yield* Fiber.join(history)).length, 2)
        assert.strictEqual((yield* sessions.entry(key))?.label, "queued behind")
        const listed = (yield* sessions.list("main")).find((row) => row.key === key)
        assert.strictEqual(listed?.entry.label, "queued behind")

        const cut = "agent:main:openai:cut"
        const liveBefore = (yield* sessions.stats).live
        const listening = yield* Effect.forkChild(sessions.send(cut, { ...turn("hello"), oneShot: true }).pipe(Stream.runDrain))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 2), "the second request")
        assert.strictEqual((yield* sessions.stats).live, liveBefore + 1)
        yield* Fiber.interrupt(listening)
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === liveBefore && s.serving === 0)), "the cut one-shot session to be passivated", 2000)
        assert.isFalse((yield* sessions.list("main")).some((row) => row.key === cut && row.live))
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("rejects invalid session keys with a message naming the problem", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const error = yield* collect(sessions.send("agent:main:../../etc", turn("x"))).pipe(Effect.flip)
        assert.strictEqual(error._tag, "InvalidSessionKey")
        assert.include(error.message, "../../etc")
        assert.strictEqual(fake.requests.length, 0)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("compacts history into a summary entry when the context nears the window", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) => {
        if (systemText(request).includes("working memory of a long conversation")) return { kind: "message", content: [{ type: "text", text: "SUMMARY: user said one and two" }] }
        return { kind: "message", content: [{ type: "text", text: `echo: ${lastUserText(request)}` }], usage: { input_tokens: 1800, output_tokens: 10 } }
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("one")))
        const second = yield* collect(sessions.send("agent:main:main", turn("two")))
        const compacted = second.find((e) => e._tag === "Compacted")
        assert.isDefined(compacted)
        const history = yield* sessions.history("agent:main:main")
        assert.isTrue(history.some((e) => e.type === "compaction" && e.summary.startsWith("SUMMARY")))
        yield* collect(sessions.send("agent:main:main", turn("three")))
        const last = messagesJson(fake.requests.at(-1))
        assert.include(last, "SUMMARY: user said one and two")
        assert.notInclude(last, "\"one\"", "compacted messages are no longer sent")
        assert.strictEqual(history.filter((e) => e.type === "message").length, 4, "the transcript keeps every original message")
      }).pipe(Effect.provide(TestApp.layer({
        home,
        anthropicUrl: fake.url,
        config: { agents: { defaults: { contextTokens: 2000, maxTokens: 256, compaction: { reserveTokens: 500, keepRecentTokens: 4 } } } }
      })))
    })))

  it.live("reset starts a new session and archives the old transcript", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("old")))
        const before = (yield* sessions.list())[0]?.entry.sessionId
        const entry = yield* sessions.reset("agent:main:main")
        assert.notStrictEqual(entry.sessionId, before)
        assert.deepStrictEqual(yield* sessions.history("agent:main:main"), [])
        const names = yield* Effect.promise(() => fs.readdir(path.join(home, "agents", "main", "sessions")))
        assert.isTrue(names.some((n) => n.startsWith(`${before}.jsonl.reset.`)))
        yield* collect(sessions.send("agent:main:main", turn("new")))
        assert.notInclude(messagesJson(fake.requests.at(-1)), "old")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))
})

describe("reset triggers", () => {
  it.live("/new starts a new session and passes the rest of the message on", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("secret old topic")))
        const after = yield* collect(sessions.send("agent:main:main", turn("/new what is new?")))
        assert.strictEqual(completed(after)?.text, "echo: what is new?")
        assert.notInclude(messagesJson(fake.requests.at(-1)), "secret old topic")
        const alone = yield* collect(sessions.send("agent:main:main", turn("/reset")))
        assert.include(completed(alone)?.text ?? "", "A new session has just started")
        assert.strictEqual((yield* sessions.history("agent:main:main")).length, 2)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it("matches triggers exactly, not as prefixes of words", async () => {
    const { matchResetTrigger } = await import("../../src/session/SessionActor.ts")
    assert.deepStrictEqual(matchResetTrigger("/new", ["/new"]), { trigger: "/new", rest: "" })
    assert.deepStrictEqual(matchResetTrigger("  /reset  hi ", ["/new", "/reset"]), { trigger: "/reset", rest: "hi" })
    assert.isUndefined(matchResetTrigger("/newspaper", ["/new"]))
    assert.isUndefined(matchResetTrigger("please /new", ["/new"]))
  })
})

describe("model chains", () => {
  it.live("runs turns on an OpenAI-compatible server and fails over to it from Anthropic", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make((request) =>
        lastUserText(request) === "fail over" ? { kind: "error", status: 529, type: "overloaded_error", message: "Overloaded" } : undefined
      )
      const local = yield* FakeOpenAi.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const first = yield* collect(sessions.send("agent:main:main", turn("hello local")))
        assert.strictEqual(completed(first)?.text, "echo: hello local")
        assert.strictEqual(completed(first)?.model, "anthropic/claude-sonnet-5-5")
        const second = yield* collect(sessions.send("agent:main:main", turn("fail over")))
        assert.isTrue(second.some((e) => e._tag === "Failover"))
        assert.strictEqual(completed(second)?.text, "echo: fail over")
        assert.strictEqual(completed(second)?.model, "local/llama")
        assert.strictEqual(local.requests.length, 1)
        assert.include(JSON.stringify(local.requests[0]?.body?.messages), "echo: hello local", "the fallback saw the whole history")
      }).pipe(Effect.provide(TestApp.layer({
        home,
        anthropicUrl: anthropic.url,
        config: {
          models: { providers: { local: { api: "openai-completions", baseUrl: `${local.url}/v1` } } },
          agents: { defaults: { model: { primary: "anthropic/claude-sonnet-5-5", fallbacks: ["local/llama"] } } }
        }
      })))
    })))
})

describe("failures outside the model call", () => {
  it.live("a new session's first message is on disk after a model call that failed at once, and the next turn sends it", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      // The user's message goes to a transcript that is still being created while the model is called.
      const fake = yield* FakeAnthropic.make((request) =>
        lastUserText(request) === "first" ? errorReply(400, "invalid_request_error", "rejected at once") : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const failure = yield* collect(sessions.send("agent:main:fresh", turn("first"))).pipe(Effect.flip)
        assert.include(failure.message, "rejected at once")
        const [row] = yield* sessions.list()
        const transcript = yield* readTranscript(home, row?.entry.sessionId ?? "")
        assert.deepStrictEqual(transcript.entries.map((e) => e.type === "message" ? e.message.content : e.type), ["first"])
        assert.deepStrictEqual((yield* sessions.history("agent:main:fresh")).map((e) => e.type === "message" ? e.message.content : e.type), ["first"])
        assert.include(completed(yield* collect(sessions.send("agent:main:fresh", turn("second"))))?.text, "second")
        assert.include(messagesJson(fake.requests.at(-1)), "first", "the second turn's request carries the first message")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("the same message sent again after its turn failed (a client's retry) is kept once", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      let failures = 2
      const fake = yield* FakeAnthropic.make(() => failures-- > 0 ? errorReply(400, "invalid_request_error", "prompt is too long") : undefined)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        for (let attempt = 0; attempt < 2; attempt++) yield* collect(sessions.send("agent:main:retry", turn("hello"))).pipe(Effect.flip)
        assert.include(completed(yield* collect(sessions.send("agent:main:retry", turn("hello"))))?.text, "hello")
        const contents = (yield* sessions.history("agent:main:retry")).map((e) => e.type === "message" ? `${e.message.role}: ${typeof e.message.content === "string" ? e.message.content : "…"}` : e.type)
        assert.deepStrictEqual(contents.filter((line) => line.startsWith("user")), ["user: hello"])
        assert.deepStrictEqual(userTexts(lastRequestOf(fake)), ["hello"], "the model sees it once")
        // A different message after a failure is a new one, and the unanswered one stays (nothing accepted is lost).
        failures = 1
        yield* collect(sessions.send("agent:main:retry", turn("again"))).pipe(Effect.flip)
        yield* collect(sessions.send("agent:main:retry", turn("and again")))
        const users = (yield* sessions.history("agent:main:retry")).flatMap((e) => e.type === "message" && e.message.role === "user" && typeof e.message.content === "string" ? [e.message.content] : [])
        assert.deepStrictEqual(users, ["hello", "again", "and again"])
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("an index entry naming another session's transcript (edited by hand) starts a fresh session, never reads or writes the other's", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const aliceId = yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:dm-alice", turn("my PIN is 4711")))
        return (yield* sessions.entry("agent:main:dm-alice"))?.sessionId ?? ""
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
      const indexFile = path.join(home, "agents", "main", "sessions", "sessions.json")
      yield* Effect.promise(async () => {
        const index = JSON.parse(await fs.readFile(indexFile, "utf8")) as Record<string, unknown>
        index["agent:main:dm-bob"] = index["agent:main:dm-alice"]
        await fs.writeFile(indexFile, JSON.stringify(index))
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:dm-bob", turn("hello")))
        assert.notInclude(messagesJson(lastRequestOf(fake)), "4711", "bob never sees alice's conversation")
        const bob = yield* sessions.entry("agent:main:dm-bob")
        assert.notStrictEqual(bob?.sessionId, aliceId)
        const alice = yield* readTranscript(home, aliceId)
        assert.deepStrictEqual(alice.entries.map((e) => e.type === "message" ? e.message.content : e.type).filter((c) => typeof c === "string"), ["my PIN is 4711"], "alice's file has only her messages")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("a session whose transcript cannot be read can still be reset or deleted, without reading it", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        for (const key of ["agent:main:stuck-reset", "agent:main:stuck-delete"]) yield* collect(sessions.send(key, turn("hi")))
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0)), "passivation")
        // Unreadable: a directory where each transcript was.
        for (const key of ["agent:main:stuck-reset", "agent:main:stuck-delete"]) {
          const id = (yield* sessions.entry(key).pipe(Effect.orDie))?.sessionId ?? ""
          const file = path.join(home, "agents", "main", "sessions", `${id}.jsonl`)
          yield* Effect.promise(async () => {
            await fs.rm(file)
            await fs.mkdir(file)
          })
        }
        assert.strictEqual((yield* collect(sessions.send("agent:main:stuck-reset", turn("again"))).pipe(Effect.flip))._tag, "SessionUnavailable")
        const before = (yield* sessions.entry("agent:main:stuck-reset").pipe(Effect.orDie))?.sessionId
        const fresh = yield* sessions.reset("agent:main:stuck-reset")
        assert.notStrictEqual(fresh.sessionId, before)
        assert.include(completed(yield* collect(sessions.send("agent:main:stuck-reset", turn("after reset"))))?.text, "after reset")
        assert.deepStrictEqual(yield* sessions.delete("agent:main:stuck-delete"), { deleted: true })
        assert.isUndefined(yield* sessions.entry("agent:main:stuck-delete").pipe(Effect.orDie))
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { session: { idle: { passivateAfterSeconds: 1 } } } })))
    })))

  it.live("a transcript that cannot be read fails the turn at once with the reason", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("hi")))
        const [row] = yield* sessions.list()
        const file = path.join(home, "agents", "main", "sessions", `${row?.entry.sessionId}.jsonl`)
        // Passivate, then make the transcript unreadable (a directory in its place).
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0)), "passivation")
        yield* Effect.promise(() => fs.rename(file, `${file}.saved`))
        yield* Effect.promise(() => fs.mkdir(file))
        const started = Date.now()
        const error = yield* collect(sessions.send("agent:main:main", turn("again"))).pipe(Effect.flip)
        assert.isBelow(Date.now() - started, 1000, "no restart loop")
        assert.strictEqual(error._tag, "SessionUnavailable")
        assert.include(error.message, "EISDIR")
        yield* Effect.promise(() => fs.rmdir(file))
        yield* Effect.promise(() => fs.rename(`${file}.saved`, file))
        const after = yield* collect(sessions.send("agent:main:main", turn("restored")))
        assert.strictEqual(completed(after)?.text, "echo: restored")
        assert.include(messagesJson(fake.requests.at(-1)), "echo: hi", "history is back")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { session: { idle: { passivateAfterSeconds: 1 } } } })))
    })))

  it.live("a transcript holding only its header does not block the session", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("hi")))
        const [row] = yield* sessions.list()
        const file = path.join(home, "agents", "main", "sessions", `${row?.entry.sessionId}.jsonl`)
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0)), "passivation")
        const text = yield* Effect.promise(() => fs.readFile(file, "utf8"))
        yield* Effect.promise(() => fs.writeFile(file, `${text.split("\n")[0]}\n`))
        const after = yield* collect(sessions.send("agent:main:main", turn("still works")))
        assert.strictEqual(completed(after)?.text, "echo: still works")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: { session: { idle: { passivateAfterSeconds: 1 } } } })))
    })))

  it.live("a store failure while saving a tool result ends the turn and the next turn works", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      let transcript = ""
      const sabotage: Tool = {
        name: "sabotage",
        summary: "Breaks the disk",
        description: "Replaces the transcript with a directory",
        inputSchema: { type: "object", properties: {} },
        run: () => Effect.promise(async () => {
          await fs.rename(transcript, `${transcript}.saved`)
          await fs.mkdir(transcript)
          return { content: [{ type: "text" as const, text: "done" }] }
        })
      }
      const fake = yield* FakeAnthropic.make((request) =>
        lastUserText(request) === "break it" ? { kind: "message", content: [{ type: "tool_use", id: "toolu_s", name: "sabotage", input: {} }], stopReason: "tool_use" } : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("hi")))
        const [row] = yield* sessions.list()
        transcript = path.join(home, "agents", "main", "sessions", `${row?.entry.sessionId}.jsonl`)
        const error = yield* collect(sessions.send("agent:main:main", turn("break it"))).pipe(Effect.flip)
        assert.include(error.message, "EISDIR")
        // The actor reloads from disk after a failed turn; with the transcript still broken it stops.
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.live === 0)), "the broken session to stop")
        yield* Effect.promise(() => fs.rmdir(transcript))
        yield* Effect.promise(() => fs.rename(`${transcript}.saved`, transcript))
        const after = yield* collect(sessions.send("agent:main:main", turn("next")))
        assert.strictEqual(completed(after)?.text.startsWith("echo:"), true)
        assert.include(completed(after)?.text ?? "", "next")
        const history = yield* sessions.history("agent:main:main")
        assert.deepStrictEqual(Transcript.pendingToolCalls(history), [], "the open tool call was closed on reload")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, tools: [sabotage] })))
    })))

  it.live("an index entry naming another agent cannot move the transcript elsewhere", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const sessionsDir = path.join(home, "agents", "main", "sessions")
      yield* Effect.promise(async () => {
        await fs.mkdir(sessionsDir, { recursive: true })
        await fs.writeFile(path.join(sessionsDir, "sessions.json"), JSON.stringify({
          "agent:main:main": { sessionId: "evil", agentId: "../../../escape", updatedAt: 1, sessionStartedAt: 1, inputTokens: 0, outputTokens: 0, cacheRead: 0, cacheWrite: 0, totalTokens: 0, contextTokens: 0, compactionCount: 0, turnCount: 0 }
        }))
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const events = yield* collect(sessions.send("agent:main:main", turn("traverse")))
        assert.strictEqual(completed(events)?.text, "echo: traverse")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
      const names = yield* Effect.promise(() => fs.readdir(sessionsDir))
      assert.include(names, "evil.jsonl")
      const escaped = yield* Effect.tryPromise(() => fs.access(path.join(home, "..", "..", "escape"))).pipe(Effect.flip)
      assert.include(String(escaped.cause), "ENOENT")
    })))
})

describe("system prompt", () => {
  it.live("follows edits of the workspace files between turns", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("one")))
        yield* collect(sessions.send("agent:main:main", turn("two")))
        assert.strictEqual(systemText(fake.requests[0]), systemText(fake.requests[1]))
        yield* Effect.promise(() => fs.writeFile(path.join(home, "workspace", "SOUL.md"), "# Soul\nAlways answer like a pirate.\n"))
        // The workspace is watched, not stat'ed per turn: give the file-system event a moment, as a person editing would.
        yield* Effect.sleep("200 millis")
        yield* collect(sessions.send("agent:main:main", turn("three")))
        assert.include(systemText(fake.requests[2]), "Always answer like a pirate.")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))
})

describe("session settings and edits", () => {
  it.live("patch sets a per-session model and thinking level that the next turn uses; null clears them", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const entry = yield* sessions.patch("agent:main:main", { label: "work", thinkingLevel: "low", modelOverride: "anthropic/claude-opus-5" })
        assert.strictEqual(entry.label, "work")
        yield* collect(sessions.send("agent:main:main", turn("hi")))
        assert.strictEqual(fake.requests[0]?.body?.model, "claude-opus-5")
        assert.strictEqual(fake.requests[0]?.body?.thinking?.type, "enabled")
        yield* sessions.patch("agent:main:main", { thinkingLevel: null, modelOverride: null })
        yield* collect(sessions.send("agent:main:main", turn("again")))
        assert.strictEqual(fake.requests[1]?.body?.model, "claude-sonnet-5-5")
        assert.isUndefined(fake.requests[1]?.body?.thinking)
        assert.strictEqual((yield* sessions.list())[0]?.entry.label, "work")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("inject appends an assistant note the model then sees; delete archives and forgets", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("hi")))
        const injected = yield* sessions.inject("agent:main:main", "the build is green", "ci")
        assert.isString(injected.messageId)
        yield* collect(sessions.send("agent:main:main", turn("status?")))
        assert.include(messagesJson(fake.requests.at(-1)), "[ci] the build is green")
        const sessionId = (yield* sessions.list())[0]?.entry.sessionId
        assert.deepStrictEqual(yield* sessions.delete("agent:main:main"), { deleted: true })
        assert.deepStrictEqual(yield* sessions.list(), [])
        const names = yield* Effect.promise(() => fs.readdir(path.join(home, "agents", "main", "sessions")))
        assert.isTrue(names.some((n) => n.startsWith(`${sessionId}.jsonl.deleted.`)))
        assert.deepStrictEqual(yield* sessions.history("agent:main:main"), [])
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))
})

describe("actors without a parked fiber", () => {
  it.live("an idle live session holds no fiber; its mail is served one envelope at a time, in order", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) =>
        lastUserText(request) === "slow" ? { kind: "message", content: [{ type: "text", text: "slow answer" }], delayMs: 150 } : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        for (let i = 0; i < 5; i++) yield* collect(sessions.send(`agent:main:peer${i}`, turn(`hi ${i}`)))
        // A caller is answered before its actor's bookkeeping of the turn's end, so the last one may still be at it.
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.serving === 0)), "the last actor to go idle")
        assert.deepInclude(yield* sessions.stats, { live: 5, serving: 0 }, "five sessions in memory, no fiber for any of them")
        const slow = yield* Effect.forkChild(collect(sessions.send("agent:main:peer0", turn("slow"))))
        const next = yield* Effect.forkChild(collect(sessions.send("agent:main:peer0", turn("next"))))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 6), "the slow request")
        assert.strictEqual((yield* sessions.stats).serving, 1)
        yield* Effect.sleep("50 millis")
        assert.strictEqual(fake.requests.length, 6, "the second message waits for the first turn")
        assert.strictEqual(completed(yield* Fiber.join(slow))?.text, "slow answer")
        assert.strictEqual(completed(yield* Fiber.join(next))?.text, "echo: next")
        assert.include(messagesJson(fake.requests[6]), "slow answer", "the second turn saw the first one's answer")
        yield* waitUntil(sessions.stats.pipe(Effect.map((s) => s.serving === 0)), "the actor to go idle")
        assert.strictEqual((yield* sessions.stats).live, 5)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("mail queued behind a turn that crashes is served after the restart, with the history from disk", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) =>
        lastUserText(request) === "boom"
          ? { kind: "message", content: [{ type: "tool_use", id: "toolu_crash", name: "crash", input: {} }], stopReason: "tool_use", delayMs: 50 }
          : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send("agent:main:main", turn("first")))
        const boom = yield* Effect.forkChild(collect(sessions.send("agent:main:main", turn("boom"))).pipe(Effect.flip))
        yield* waitUntil(Effect.sync(() => fake.requests.length === 2), "the crashing turn")
        const queued = yield* Effect.forkChild(collect(sessions.send("agent:main:main", turn("queued"))))
        assert.strictEqual((yield* Fiber.join(boom))._tag, "SessionCrashed")
        assert.strictEqual(completed(yield* Fiber.join(queued))?.text, "echo: queued")
        assert.include(messagesJson(fake.requests.at(-1)), "echo: first", "the restarted session reloaded its history")
        assert.deepInclude(yield* sessions.stats, { restarts: 1, live: 1 })
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, tools: [crashTool], config: { session: { supervisor: { backoffMs: 5 } } } })))
    })))
})

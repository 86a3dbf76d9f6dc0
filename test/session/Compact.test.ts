/**
 * Session operations behind chat commands: compaction on demand
 * (`Sessions.compact`, OpenClaw's `/compact [instructions]`) and a turn that
 * starts a fresh session in its own envelope (`/new [model] <message>`).
 * Real session layer, file store and Anthropic SDK against the fake API.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Stream } from "effect"
import type { TurnEvent } from "../../src/agent/TurnEvent.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import * as Transcript from "../../src/session/Transcript.ts"
import { errorReply, FakeAnthropic, isSummaryRequest, messagesJson} from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"

const KEY = "agent:main:main"

const collect = (stream: Stream.Stream<TurnEvent, { readonly _tag: string; readonly message: string }>) => Stream.runCollect(stream).pipe(Effect.map((chunk) => [...chunk]))
const completed = (events: ReadonlyArray<TurnEvent>) => events.find((e): e is Extract<TurnEvent, { _tag: "TurnCompleted" }> => e._tag === "TurnCompleted")
const turn = (text: string) => ({ runId: crypto.randomUUID(), text })

const transcriptLines = (home: string, sessionId: string) =>
  Effect.promise(() => fs.readFile(path.join(home, "agents", "main", "sessions", `${sessionId}.jsonl`), "utf8")).pipe(Effect.map(Transcript.parse))

/** Every earlier message is summarised: the kept tail is tiny. */
const smallTail = { agents: { defaults: { compaction: { keepRecentTokens: 4 } } } }

describe("Sessions.compact", () => {
  it.live("summarises the history into a compaction entry, with the instructions in the request; the next turn sends the summary, not the old messages", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) =>
        isSummaryRequest(request) ? { kind: "message", content: [{ type: "text", text: "SUMMARY: alpha and bravo were discussed" }] } : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send(KEY, turn("alpha-topic first")))
        yield* collect(sessions.send(KEY, turn("bravo-topic second")))
        const outcome = yield* sessions.compact(KEY, "keep the <decisions> & the names")
        assert.isTrue(outcome.compacted)
        if (!outcome.compacted) return
        assert.isAbove(outcome.summarisedTokens, 0)
        assert.isAbove(outcome.tokensBefore, 0)
        assert.strictEqual(outcome.summaryChars, "SUMMARY: alpha and bravo were discussed".length)

        const summaryRequest = fake.requests.find(isSummaryRequest)
        const prompt = messagesJson(summaryRequest)
        assert.include(prompt, "alpha-topic first")
        assert.include(prompt, "echo: bravo-topic second")
        // The instructions are fenced and escaped as data.
        assert.include(prompt, "<focus>keep the &lt;decisions&gt; &amp; the names</focus>")

        const [row] = yield* sessions.list()
        assert.strictEqual(row?.entry.compactionCount, 1)
        const transcript = yield* transcriptLines(home, row?.entry.sessionId ?? "")
        assert.deepStrictEqual(transcript.entries.map((e) => e.type === "message" ? e.message.role : e.type), ["user", "assistant", "user", "assistant", "compaction"])
        const entry = transcript.entries.at(-1)
        assert.strictEqual(entry?.type === "compaction" ? entry.summary : undefined, "SUMMARY: alpha and bravo were discussed")

        const next = yield* collect(sessions.send(KEY, turn("charlie-topic third")))
        // The summary rides in the first user message, which the new text joins.
        assert.match(completed(next)?.text ?? "", /^echo: [\s\S]*<summary>[\s\S]*charlie-topic third$/)
        const sent = messagesJson(fake.requests.at(-1))
        assert.include(sent, "SUMMARY: alpha and bravo were discussed")
        assert.notInclude(sent, "alpha-topic first", "summarised messages are no longer sent")
        assert.notInclude(sent, "bravo-topic second")
        assert.include(sent, "charlie-topic third")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: smallTail })))
    })))

  it.live("says why there is nothing to compact: an empty session, a history that fits the kept tail, nothing new since the last summary", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) => isSummaryRequest(request) ? { kind: "message", content: [{ type: "text", text: "S" }] } : undefined)
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        assert.deepStrictEqual(yield* sessions.compact("agent:main:empty"), { compacted: false, reason: "no transcript" })
        yield* collect(sessions.send("agent:main:short", turn("a short chat")))
        // The default tail (20,000 tokens) keeps all of it.
        assert.deepStrictEqual(yield* sessions.compact("agent:main:short"), { compacted: false, reason: "too little history" })
        assert.isFalse(fake.requests.some(isSummaryRequest), "no model call when there is nothing to summarise")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
      const home2 = yield* TestApp.tempDir()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send(KEY, turn("something to summarise")))
        assert.isTrue((yield* sessions.compact(KEY)).compacted)
        assert.deepStrictEqual(yield* sessions.compact(KEY), { compacted: false, reason: "already compacted" })
        yield* collect(sessions.send(KEY, turn("more")))
        assert.isTrue((yield* sessions.compact(KEY)).compacted, "new messages can be compacted again")
        assert.strictEqual((yield* sessions.list())[0]?.entry.compactionCount, 2)
      }).pipe(Effect.provide(TestApp.layer({ home: home2, anthropicUrl: fake.url, config: smallTail })))
    })))

  it.live("a provider failure fails the compaction with its reason and leaves the transcript as it was", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) =>
        isSummaryRequest(request) ? errorReply(400, "invalid_request_error", "summary refused by the fake") : undefined
      )
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send(KEY, turn("delta-topic kept")))
        const before = yield* sessions.history(KEY)
        const error = yield* sessions.compact(KEY).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ProviderError")
        assert.include(error.message, "summary refused by the fake")
        assert.deepStrictEqual(yield* sessions.history(KEY), before)
        const [row] = yield* sessions.list()
        const transcript = yield* transcriptLines(home, row?.entry.sessionId ?? "")
        assert.isFalse(transcript.entries.some((e) => e.type === "compaction"))
        assert.strictEqual(row?.entry.compactionCount, 0)
        // The session goes on, with its whole history.
        const next = yield* collect(sessions.send(KEY, turn("echo-topic next")))
        assert.strictEqual(completed(next)?.text, "echo: echo-topic next")
        assert.include(messagesJson(fake.requests.at(-1)), "delta-topic kept")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: smallTail })))
    })))

  it.live("waits for the running turn: the summary request follows the turn's answer and includes it", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make((request) => {
        if (isSummaryRequest(request)) return { kind: "message", content: [{ type: "text", text: "SUMMARY after the slow turn" }] }
        return { kind: "message", content: [{ type: "text", text: "a slow answer in many words" }], delayMs: 40 }
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send(KEY, turn("first")))
        const running = yield* Effect.forkChild(collect(sessions.send(KEY, turn("slow-topic second"))))
        while (fake.requests.length < 2) yield* Effect.sleep("5 millis")
        const outcome = yield* sessions.compact(KEY)
        assert.isTrue(outcome.compacted)
        const events = yield* Fiber.join(running)
        assert.strictEqual(completed(events)?.text, "a slow answer in many words")
        assert.strictEqual(fake.requests.length, 3)
        assert.isTrue(fake.requests[2] !== undefined && isSummaryRequest(fake.requests[2]))
        assert.include(messagesJson(fake.requests[2]), "a slow answer in many words", "the compaction saw the finished turn")
        const history = yield* sessions.history(KEY)
        assert.strictEqual(history.at(-1)?.type, "compaction")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url, config: smallTail })))
    })))
})

describe("a turn that starts a fresh session", () => {
  it.live("archives the old transcript, sets the model and runs the message as the first turn, in one envelope", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        yield* collect(sessions.send(KEY, turn("secret-old-topic")))
        const before = (yield* sessions.list())[0]?.entry.sessionId
        const events = yield* collect(sessions.send(KEY, { ...turn("/new is not a trigger here"), newSession: { model: "anthropic/claude-fresh-1" } }))
        assert.strictEqual(completed(events)?.text, "echo: /new is not a trigger here", "the text is the message as given")
        const started = events.find((e) => e._tag === "TurnStarted")
        assert.notStrictEqual(started?._tag === "TurnStarted" ? started.sessionId : undefined, before)
        const request = fake.requests.at(-1)
        assert.strictEqual(request?.body?.model, "claude-fresh-1")
        assert.notInclude(messagesJson(request), "secret-old-topic")
        const [row] = yield* sessions.list()
        assert.strictEqual(row?.entry.modelOverride, "anthropic/claude-fresh-1")
        assert.strictEqual(row?.entry.turnCount, 1)
        assert.strictEqual((yield* sessions.history(KEY)).length, 2)
        const names = yield* Effect.promise(() => fs.readdir(path.join(home, "agents", "main", "sessions")))
        assert.isTrue(names.some((n) => n.startsWith(`${before}.jsonl.reset.`)), names.join(", "))
        // Without a model the session keeps the agent's model chain.
        yield* collect(sessions.send(KEY, { ...turn("plain fresh start"), newSession: {} }))
        assert.strictEqual((yield* sessions.list())[0]?.entry.modelOverride, undefined)
        assert.strictEqual(fake.requests.at(-1)?.body?.model, "claude-sonnet-5-5")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))
})

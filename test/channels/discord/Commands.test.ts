/**
 * The chat commands that change a session's history, end to end: the real
 * discord.js against the fake Discord, the channel layer, the real session
 * layer against the fake Anthropic API. `/compact [instructions]`, and
 * `/new [model] <message>` / `/reset <message>`, whose message is the fresh
 * session's first turn, answered once even across a crash.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Sessions } from "../../../src/session/Sessions.ts"
import { connected, openChannelLayer as channelLayer, wait } from "../../support/DiscordHarness.ts"
import { errorReply, FakeAnthropic, isSummaryRequest, messagesJson} from "../../support/FakeAnthropic.ts"
import { FakeDiscord, type FakeDiscordHandle } from "../../support/FakeDiscord.ts"
import * as TestApp from "../../support/TestApp.ts"

const sentTo = (fake: FakeDiscordHandle, channelId: string) => fake.sentMessages.filter((m) => m.channelId === channelId).map((m) => m.content)
const quiet = Effect.sleep("400 millis")

const smallTail = { agents: { defaults: { compaction: { keepRecentTokens: 4 } } } }

/** An accepted record of the channel journal, as an earlier run wrote it. */
const journalRecord = (channelId: string, userId: string, messageId: string, body: string) => ({
  t: "accepted",
  id: `${channelId}:${messageId}`,
  at: 1,
  sessionKey: "agent:main:main",
  message: {
    channel: "discord", accountId: "default", messageId, chatType: "direct", chatId: channelId, from: `discord:${userId}`,
    to: `channel:${channelId}`, senderId: userId, isBot: false, body, memberRoleIds: [], attachments: [],
    wasMentioned: false, hasAnyMention: false, replyToBot: false, timestamp: Date.now()
  }
})
const writeJournal = (home: string, lines: ReadonlyArray<unknown>) =>
  Effect.promise(async () => {
    const dir = path.join(home, "channels", "discord", "default")
    await fs.mkdir(dir, { recursive: true })
    await fs.writeFile(path.join(dir, "inbox.jsonl"), lines.map((line) => JSON.stringify(line)).join("\n") + "\n")
  })

describe("/compact in a chat", () => {
  it.live("summarises the conversation on demand with the given focus; the next answer is made from the summary", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make((request) =>
        isSummaryRequest(request) ? { kind: "message", content: [{ type: "text", text: "SUMMARY of the trip planning" }] } : undefined
      )
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "olga" })
      yield* Effect.gen(function*() {
        yield* connected
        fake.dispatchMessage({ channelId, author: user, content: "/compact" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 1, "nothing to compact")
        assert.strictEqual(sentTo(fake, channelId)[0], "Nothing to compact yet: this conversation is empty.")
        fake.dispatchMessage({ channelId, author: user, content: "plan-lisbon-trip" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 2, "first answer")
        fake.dispatchMessage({ channelId, author: user, content: "book-the-hotel" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 3, "second answer")
        const typingBefore = fake.typingCalls.length
        fake.dispatchMessage({ channelId, author: user, content: "/compact keep the dates" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 4, "compacted")
        assert.match(sentTo(fake, channelId)[3] ?? "", /^✅ Compacted: \d+ tokens summarised \(context about [\d,]+ → [\d,]+ tokens\)\.$/)
        const summary = anthropic.requests.find(isSummaryRequest)
        assert.include(messagesJson(summary), "<focus>keep the dates</focus>")
        assert.include(messagesJson(summary), "plan-lisbon-trip")
        assert.isAbove(fake.typingCalls.length, typingBefore, "typing while the summary was made")

        fake.dispatchMessage({ channelId, author: user, content: "what-next" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 5, "answer after compaction")
        const last = messagesJson(anthropic.requests.at(-1))
        assert.include(last, "SUMMARY of the trip planning")
        assert.notInclude(last, "plan-lisbon-trip")
        assert.notInclude(last, "book-the-hotel")
        fake.dispatchMessage({ channelId, author: user, content: "/status" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 6, "status")
        assert.include(sentTo(fake, channelId)[5] ?? "", "🧹 Compactions: 1")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token }, smallTail)))
    }), 30_000)

  it.live("a summary the provider refuses is a visible error, and the conversation goes on unchanged", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make((request) =>
        isSummaryRequest(request) ? errorReply(400, "invalid_request_error", "no summaries today") : undefined
      )
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "pia" })
      yield* Effect.gen(function*() {
        yield* connected
        fake.dispatchMessage({ channelId, author: user, content: "remember-the-blue-door" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 1, "answer")
        fake.dispatchMessage({ channelId, author: user, content: "/compact" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 2, "the error")
        assert.match(sentTo(fake, channelId)[1] ?? "", /^⚠️ Compaction failed, the conversation is unchanged: .*no summaries today/)
        fake.dispatchMessage({ channelId, author: user, content: "and-then" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 3, "next answer")
        assert.include(messagesJson(anthropic.requests.at(-1)), "remember-the-blue-door", "the history is whole")
        const history = yield* (yield* Sessions).history("agent:main:main")
        assert.isFalse(history.some((e) => e.type === "compaction"))
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token }, smallTail)))
    }), 30_000)
})

describe("/new and /reset with a message", () => {
  it.live("the message is the fresh session's first turn, answered once; a model in front of it is used", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "quinn" })
      const config = { agents: { defaults: { models: { "anthropic/claude-sonnet-5-5": {}, "anthropic/claude-opus-9": { alias: "opus" } } } } }
      yield* Effect.gen(function*() {
        yield* connected
        fake.dispatchMessage({ channelId, author: user, content: "old-secret-topic" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 1, "first answer")
        fake.dispatchMessage({ channelId, author: user, content: "/new summarize my day" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 2, "answer in the new session")
        assert.strictEqual(sentTo(fake, channelId)[1], "echo: summarize my day", "not a model: the whole text is the message")
        assert.notInclude(messagesJson(anthropic.requests.at(-1)), "old-secret-topic")

        fake.dispatchMessage({ channelId, author: user, content: "/new opus hello there" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 3, "answer on opus")
        assert.strictEqual(sentTo(fake, channelId)[2], "echo: hello there")
        assert.strictEqual(anthropic.requests.at(-1)?.body?.model, "claude-opus-9")
        assert.notInclude(messagesJson(anthropic.requests.at(-1)), "summarize my day")

        fake.dispatchMessage({ channelId, author: user, content: "/reset start over please" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 4, "answer after reset")
        assert.strictEqual(sentTo(fake, channelId)[3], "echo: start over please")
        assert.notInclude(messagesJson(anthropic.requests.at(-1)), "hello there")

        fake.dispatchMessage({ channelId, author: user, content: "/new opus" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 5, "model only")
        assert.strictEqual(sentTo(fake, channelId)[4], "✅ New session started with anthropic/claude-opus-9.")
        yield* quiet
        assert.strictEqual(sentTo(fake, channelId).length, 5, "each command answered once")
        assert.strictEqual(anthropic.requests.length, 4)
        const history = yield* (yield* Sessions).history("agent:main:main")
        assert.strictEqual(history.length, 0, "the last /new started an empty session")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token }, config)))
    }), 30_000)

  it.live("after a crash between the reset and the answer, the message is answered once in a fresh session; a recorded answer is delivered without resetting again", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "rosa" })
      const discord = { apiBaseUrl: fake.apiBase, token: fake.token }
      // A first run leaves history behind.
      yield* Effect.gen(function*() {
        yield* connected
        fake.dispatchMessage({ channelId, author: user, content: "old-topic-before-crash" })
        yield* wait(fake, () => sentTo(fake, channelId).length === 1, "first answer")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))

      // It died after accepting "/new fresh-topic" (the reset may or may not have happened), before the answer was recorded.
      const pending = fake.dispatchMessage({ channelId, author: user, content: "/new fresh-topic" })
      yield* writeJournal(home, [journalRecord(channelId, user.id, pending.id, "/new fresh-topic")])
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => sentTo(fake, channelId).length === 2, "the answer after the restart")
        assert.strictEqual(sentTo(fake, channelId)[1], "echo: fresh-topic")
        assert.notInclude(messagesJson(anthropic.requests.at(-1)), "old-topic-before-crash", "answered in the fresh session")
        fake.redispatchMessage(pending.id)
        yield* quiet
        assert.strictEqual(sentTo(fake, channelId).length, 2, "a redelivery is not answered again")
        assert.strictEqual(anthropic.requests.length, 2)
        const history = yield* (yield* Sessions).history("agent:main:main")
        assert.strictEqual(history.filter((e) => e.type === "message" && e.message.role === "user").length, 1)
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))

      // Another crash, this time after the answer was recorded: it is delivered, the model is not asked, the session is not reset.
      const second = fake.dispatchMessage({ channelId, author: user, content: "/new another-topic" })
      const id = `${channelId}:${second.id}`
      yield* writeJournal(home, [journalRecord(channelId, user.id, second.id, "/new another-topic"), { t: "reply", id, at: 2, text: "the recorded answer" }])
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => sentTo(fake, channelId).length === 3, "the recorded answer")
        assert.strictEqual(sentTo(fake, channelId)[2], "the recorded answer")
        yield* quiet
        assert.strictEqual(sentTo(fake, channelId).length, 3)
        assert.strictEqual(anthropic.requests.length, 2, "the model was not asked again")
        const history = yield* (yield* Sessions).history("agent:main:main")
        assert.include(JSON.stringify(history), "fresh-topic", "the session was not reset again")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
    }), 40_000)
})

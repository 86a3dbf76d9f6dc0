/**
 * The last route: which target a channel message records (OpenClaw's
 * OriginatingTo), main-DM pinning, and how the session index keeps it
 * (set through the actor, carried over a reset, persisted, old index files
 * without it still loading).
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Stream } from "effect"
import type { InboundMessage } from "../../src/channels/InboundMessage.ts"
import { pinnedMainDmOwner, routeOf, updatesLastRoute } from "../../src/channels/LastRoute.ts"
import { Sessions } from "../../src/session/Sessions.ts"
import { FakeAnthropic } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"

const message = (overrides: Partial<InboundMessage> = {}): InboundMessage => ({
  channel: "discord", accountId: "default", messageId: "m1", chatType: "direct", chatId: "dm-1", from: "discord:u1", to: "channel:dm-1",
  senderId: "u1", isBot: false, body: "hi", memberRoleIds: [], attachments: [], wasMentioned: false, hasAnyMention: false,
  replyToBot: false, timestamp: 0, ...overrides
})

describe("routeOf", () => {
  it("a DM goes back to the user, a guild channel to the channel, a thread to the thread with its id", () => {
    assert.deepStrictEqual(routeOf(message()), { channel: "discord", to: "user:u1", accountId: "default" })
    assert.deepStrictEqual(routeOf(message({ chatType: "channel", chatId: "c9", guildId: "g" })), { channel: "discord", to: "channel:c9", accountId: "default" })
    assert.deepStrictEqual(
      routeOf(message({ chatType: "channel", chatId: "t5", threadId: "t5", parentId: "c9", guildId: "g", accountId: "work" })),
      { channel: "discord", to: "channel:t5", accountId: "work", threadId: "t5" }
    )
  })
})

describe("main-DM pinning", () => {
  it("pins exactly one non-wildcard owner under dmScope main", () => {
    assert.strictEqual(pinnedMainDmOwner("main", ["123"]), "123")
    assert.strictEqual(pinnedMainDmOwner("main", ["user:123"]), "123")
    assert.strictEqual(pinnedMainDmOwner("main", ["<@123>", "discord:123"]), "123", "the same owner written twice is one owner")
    assert.isUndefined(pinnedMainDmOwner("main", []))
    assert.isUndefined(pinnedMainDmOwner("main", ["123", "456"]))
    assert.isUndefined(pinnedMainDmOwner("main", ["*"]))
    assert.isUndefined(pinnedMainDmOwner("main", ["*", "123"]), "a wildcard next to an owner leaves it unpinned")
    assert.isUndefined(pinnedMainDmOwner("main", ["user:*"]))
    assert.isUndefined(pinnedMainDmOwner("per-peer", ["123"]))
  })

  it("a DM from another sender in the main session does not move the route; the owner's does; other sessions always do", () => {
    const main = { sessionKey: "agent:main:main", mainSessionKey: "agent:main:main", allowFrom: ["owner"] }
    assert.isTrue(updatesLastRoute({ ...main, message: message({ senderId: "owner" }) }))
    assert.isFalse(updatesLastRoute({ ...main, message: message({ senderId: "stranger" }) }))
    assert.isTrue(updatesLastRoute({ ...main, allowFrom: ["owner", "friend"], message: message({ senderId: "stranger" }) }), "no single owner: not pinned")
    assert.isTrue(updatesLastRoute({ ...main, allowFrom: [], message: message({ senderId: "stranger" }) }))
    assert.isTrue(updatesLastRoute({ ...main, sessionKey: "agent:main:direct:stranger", message: message({ senderId: "stranger" }) }), "per-peer DM sessions are not pinned")
    assert.isTrue(updatesLastRoute({ ...main, message: message({ senderId: "stranger", chatType: "channel", chatId: "c", guildId: "g" }) }), "only DMs are pinned")
  })
})

describe("the last route in the session index", () => {
  const route = { channel: "discord", to: "user:u1", accountId: "default" }

  it.live("recorded through the session, shown in its entry, carried over a reset, replaced by the next one, persisted", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const layer = TestApp.layer({ home, anthropicUrl: fake.url })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const entry = yield* sessions.patch("agent:main:main", { lastRoute: route })
        assert.deepInclude(entry, { lastChannel: "discord", lastTo: "user:u1", lastAccountId: "default", deliveryContext: route })
        assert.isUndefined(entry.lastThreadId)
        yield* Stream.runDrain(sessions.send("agent:main:main", { runId: "r1", text: "hi" }))
        const reset = yield* sessions.reset("agent:main:main")
        assert.deepStrictEqual(reset.deliveryContext, route, "a reset keeps the route, as OpenClaw's")
        const thread = { channel: "discord", to: "channel:t5", accountId: "work", threadId: "t5" }
        const moved = yield* sessions.patch("agent:main:main", { lastRoute: thread })
        assert.deepInclude(moved, { lastTo: "channel:t5", lastAccountId: "work", lastThreadId: "t5", deliveryContext: thread })
        const back = yield* sessions.patch("agent:main:main", { lastRoute: route })
        assert.isUndefined(back.lastThreadId, "a route without a thread clears the old thread")
      }).pipe(Effect.provide(layer))
      const index = JSON.parse(yield* Effect.promise(() => fs.readFile(path.join(home, "agents", "main", "sessions", "sessions.json"), "utf8")))
      assert.deepStrictEqual(index["agent:main:main"].deliveryContext, route)
      assert.strictEqual(index["agent:main:main"].lastTo, "user:u1")
      // A new process reads it back.
      yield* Effect.gen(function*() {
        const rows = yield* (yield* Sessions).list("main")
        assert.deepStrictEqual(rows.find((row) => row.key === "agent:main:main")?.entry.deliveryContext, route)
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
    })))

  it.live("recording the same route again writes nothing; an index file from before the route existed loads", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const fake = yield* FakeAnthropic.make()
      const dir = path.join(home, "agents", "main", "sessions")
      yield* Effect.promise(async () => {
        await fs.mkdir(dir, { recursive: true })
        await fs.writeFile(path.join(dir, "sessions.json"), JSON.stringify({
          "agent:main:main": {
            sessionId: "old-1", agentId: "main", updatedAt: 1, sessionStartedAt: 1, inputTokens: 0, outputTokens: 0, cacheRead: 0,
            cacheWrite: 0, totalTokens: 0, contextTokens: 0, compactionCount: 0, turnCount: 0
          }
        }))
      })
      yield* Effect.gen(function*() {
        const sessions = yield* Sessions
        const before = (yield* sessions.list("main")).find((row) => row.key === "agent:main:main")?.entry
        assert.strictEqual(before?.sessionId, "old-1", "the old entry loaded as it was")
        assert.isUndefined(before?.lastTo)
        const first = yield* sessions.patch("agent:main:main", { lastRoute: route })
        const second = yield* sessions.patch("agent:main:main", { lastRoute: route })
        assert.strictEqual(second, first, "unchanged: the same entry, no new write")
      }).pipe(Effect.provide(TestApp.layer({ home, anthropicUrl: fake.url })))
      const names = yield* Effect.promise(() => fs.readdir(dir))
      assert.isFalse(names.some((name) => name.includes(".corrupt-")), "the old index was not treated as damaged")
    })))
})

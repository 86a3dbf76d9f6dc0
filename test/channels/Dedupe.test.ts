import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import { type DedupeKey, dedupeFile, dedupeKeyOf, InboundDedupe, type InboundDedupeOptions } from "../../src/channels/Dedupe.ts"
import type { InboundMessage } from "../../src/channels/InboundMessage.ts"
import { Paths } from "../../src/config/Paths.ts"

const tempDir = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-dedupe-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

const key = (messageId: string, extra: Partial<DedupeKey> = {}): DedupeKey => ({ channel: "discord", accountId: "default", chatId: "42", messageId, ...extra })

/** One run of the service over `file`: the layer is built, used, and closed, as a process would. */
const session = <A, E>(file: string, body: (dedupe: InboundDedupe["Service"]) => Effect.Effect<A, E>, options?: InboundDedupeOptions) =>
  Effect.scoped(Effect.gen(function*() {
    return yield* body(yield* InboundDedupe)
  }).pipe(Effect.provide(InboundDedupe.layerAt(file, options))))

const lines = (file: string) => Effect.promise(async () => (await fs.readFile(file, "utf8")).split("\n"))

describe("InboundDedupe", () => {
  it.effect("says true once per message, per chat, account and channel", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.isTrue(yield* dedupe.firstSeen(key("1")))
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
        assert.isTrue(yield* dedupe.firstSeen(key("2")))
        assert.isTrue(yield* dedupe.firstSeen(key("1", { chatId: "43" })))
        assert.isTrue(yield* dedupe.firstSeen(key("1", { accountId: "work" })))
        assert.isTrue(yield* dedupe.firstSeen(key("1", { channel: "telegram" })))
        assert.strictEqual(yield* dedupe.size, 5)
      }))
    }).pipe(Effect.scoped))

  it.effect("gives exactly one true to concurrent deliveries of one message", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        const results = yield* Effect.all(Array.from({ length: 25 }, () => dedupe.firstSeen(key("same"))), { concurrency: "unbounded" })
        assert.strictEqual(results.filter(Boolean).length, 1)
      }))
      assert.strictEqual((yield* lines(file)).filter((line) => line.includes("same")).length, 1)
    }).pipe(Effect.scoped))

  it.effect("remembers across a restart", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "nested", "seen.jsonl")
      const odd = key("m:1", { chatId: "a\"b\\c", accountId: "ü" })
      yield* session(file, (dedupe) => Effect.all([dedupe.firstSeen(key("1")), dedupe.firstSeen(odd)]))
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.strictEqual(yield* dedupe.size, 2)
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
        assert.isFalse(yield* dedupe.firstSeen(odd))
        assert.isTrue(yield* dedupe.firstSeen(key("2")))
      }))
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.isFalse(yield* dedupe.firstSeen(key("2")))
      }))
      const mode = (yield* Effect.promise(() => fs.stat(file))).mode & 0o777
      assert.strictEqual(mode, 0o600)
    }).pipe(Effect.scoped))

  it.effect("ignores a torn last line and repairs the file before appending", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.all([dedupe.firstSeen(key("1")), dedupe.firstSeen(key("2"))]))
      yield* Effect.promise(() => fs.appendFile(file, `[0,"discord","default","42","3`))
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
        assert.isFalse(yield* dedupe.firstSeen(key("2")))
        assert.isTrue(yield* dedupe.firstSeen(key("3")), "the torn key was never recorded")
      }))
      const text = yield* Effect.promise(() => fs.readFile(file, "utf8"))
      assert.isTrue(text.endsWith("\n"))
      assert.strictEqual(text.split("\n").filter((line) => line !== "").length, 3)
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.strictEqual(yield* dedupe.size, 3)
        assert.isFalse(yield* dedupe.firstSeen(key("3")))
      }))
    }).pipe(Effect.scoped))

  it.effect("skips unreadable lines in the middle", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* Effect.promise(() => fs.writeFile(file, `[0,"discord","default","42","1"]\nnot json\n[0,"discord"]\n{"a":1}\n[0,"discord","default","42","2"]\n`))
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.strictEqual(yield* dedupe.size, 2)
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
        assert.isFalse(yield* dedupe.firstSeen(key("2")))
      }))
      assert.deepStrictEqual((yield* lines(file)).filter((line) => line !== ""), [`[0,"discord","default","42","1"]`, `[0,"discord","default","42","2"]`])
    }).pipe(Effect.scoped))

  it.effect("forgets a message after the TTL, in memory and across a restart", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.isTrue(yield* dedupe.firstSeen(key("1")))
        yield* TestClock.adjust("23 hours")
        assert.isTrue(yield* dedupe.firstSeen(key("2")))
        yield* TestClock.adjust("3599999 millis")
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
        yield* TestClock.adjust("1 millis")
        assert.isTrue(yield* dedupe.firstSeen(key("1")), "24 h later it is a new delivery")
      }))
      yield* TestClock.adjust("23 hours")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        // Only the second sighting of "1" (at 24 h) is still within the TTL.
        assert.strictEqual(yield* dedupe.size, 1)
        assert.isFalse(yield* dedupe.firstSeen(key("1")))
      }))
      assert.strictEqual((yield* lines(file)).filter((line) => line !== "").length, 1, "expired lines are compacted away at start")
    }).pipe(Effect.scoped))

  it.effect("keeps at most maxEntries, forgetting the oldest", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        for (const id of ["1", "2", "3", "4"]) assert.isTrue(yield* dedupe.firstSeen(key(id)))
        assert.strictEqual(yield* dedupe.size, 3)
        assert.isFalse(yield* dedupe.firstSeen(key("4")))
        assert.isTrue(yield* dedupe.firstSeen(key("1")), "the oldest was forgotten")
      }), { maxEntries: 3 })
      yield* session(file, (dedupe) => dedupe.size.pipe(Effect.map((size) => assert.strictEqual(size, 3))), { maxEntries: 3 })
    }).pipe(Effect.scoped))

  it.effect("keeps the file bounded while running", () =>
    Effect.gen(function*() {
      const file = path.join(yield* tempDir, "seen.jsonl")
      yield* session(file, (dedupe) => Effect.gen(function*() {
        for (let i = 0; i < 2500; i++) yield* dedupe.firstSeen(key(String(i)))
        assert.isFalse(yield* dedupe.firstSeen(key("2499")))
      }), { maxEntries: 10 })
      const count = (yield* lines(file)).filter((line) => line !== "").length
      assert.isAtMost(count, 2 * 10 + 1025)
      assert.isBelow(count, 2500)
      yield* session(file, (dedupe) => Effect.gen(function*() {
        assert.strictEqual(yield* dedupe.size, 10)
        assert.isFalse(yield* dedupe.firstSeen(key("2499")))
        assert.isTrue(yield* dedupe.firstSeen(key("0")))
      }), { maxEntries: 10 })
    }).pipe(Effect.scoped))

  it.effect("fails to start with a typed error when the file cannot be read", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const failure = yield* Effect.flip(session(dir, (dedupe) => dedupe.size))
      assert.strictEqual(failure._tag, "InboundDedupeError")
      assert.include(failure.message, dir)
    }).pipe(Effect.scoped))

  it.effect("lives under the state directory, keyed from the inbound message", () =>
    Effect.gen(function*() {
      const home = yield* tempDir
      const message: InboundMessage = {
        channel: "discord",
        accountId: "default",
        messageId: "7",
        chatType: "channel",
        chatId: "42",
        from: "discord:channel:42",
        to: "channel:42",
        senderId: "1",
        isBot: false,
        body: "hi",
        memberRoleIds: [],
        attachments: [],
        wasMentioned: true,
        hasAnyMention: true,
        replyToBot: false,
        timestamp: 0
      }
      assert.deepStrictEqual(dedupeKeyOf(message), key("7"))
      yield* Effect.gen(function*() {
        assert.isTrue(yield* (yield* InboundDedupe).firstSeen(dedupeKeyOf(message)))
      }).pipe(Effect.provide(InboundDedupe.layer().pipe(Layer.provide(Paths.layerFrom({ home })))), Effect.scoped)
      assert.deepStrictEqual((yield* lines(dedupeFile(home))).filter((line) => line !== ""), [`[0,"discord","default","42","7"]`])
      assert.strictEqual(dedupeFile(home), path.join(home, "channels", "inbound-seen.jsonl"))
    }).pipe(Effect.scoped))
})

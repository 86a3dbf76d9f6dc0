/**
 * Delivery over the real file journal, against a scripted platform
 * connection: pieces go out in order, a transient failure is retried (the
 * platform's retry-after first), a permanent one is dead-lettered with the
 * reason while the other pieces still go out, and a piece recorded as sent is
 * never sent again, even by a new process reading the same journal.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { type ChannelConnection, type OutboundMessage, SendError } from "../../src/channels/Channel.ts"
import * as ChannelJournal from "../../src/channels/ChannelJournal.ts"
import { deliver } from "../../src/channels/Delivery.ts"
import type { InboundMessage } from "../../src/channels/InboundMessage.ts"
import type { LogHandle } from "../../src/platform/AppendLog.ts"
import * as TestApp from "../support/TestApp.ts"

/** A platform that fails the sends its script says, and records what it accepted. */
const platform = (script: Map<string, Array<SendError>>) => {
  const accepted: Array<{ readonly key: string; readonly text: string; readonly at: number }> = []
  const attempts = new Map<string, number>()
  const connection: ChannelConnection = {
    selfId: "bot",
    send: (message) =>
      Effect.gen(function*() {
        attempts.set(message.idempotencyKey, (attempts.get(message.idempotencyKey) ?? 0) + 1)
        const failure = script.get(message.idempotencyKey)?.shift()
        if (failure !== undefined) return yield* failure
        accepted.push({ key: message.idempotencyKey, text: message.text, at: Date.now() })
        return { messageId: `m-${accepted.length}` }
      }),
    typing: () => Effect.void,
    react: () => Effect.void,
    openDirect: (userId) => Effect.succeed({ chatId: `dm-${userId}` })
  }
  return { connection, accepted, attempts }
}

/**
 * Moves the test clock a second at a time until the fiber is done. Between
 * steps it lets real time pass too: the journal's file appends are real I/O,
 * and a step taken while the fiber waits on them would be lost.
 */
const stepUntilDone = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400 && fiber.pollUnsafe() === undefined; i++) {
      yield* Effect.promise(() => new Promise<void>((resolve) => setTimeout(resolve, 5)))
      yield* TestClock.adjust("1 second")
    }
  })

const pieces = (...texts: ReadonlyArray<string>): ReadonlyArray<OutboundMessage> =>
  texts.map((text, i) => ({ target: { chatId: "c1" }, text, idempotencyKey: `reply:${i}` }))

describe("Delivery", () => {
  it.effect("retries a transient failure, dead-letters a permanent one, and still sends the rest in order", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const journal = yield* ChannelJournal.open(home, "discord", "default")
      const { connection, accepted, attempts } = platform(new Map([
        ["reply:0", [new SendError({ message: "HTTP 503", retryable: true, retryAfterMs: 2_000 })]],
        ["reply:1", [new SendError({ message: "HTTP 403: Missing Permissions", retryable: false })]]
      ]))
      const fiber = yield* Effect.forkChild(deliver(connection, journal, pieces("one", "two", "three")))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(accepted.length, 0, "the retry waits for the platform's retry-after")
      yield* stepUntilDone(fiber)
      const results = yield* Fiber.join(fiber)
      assert.deepStrictEqual(accepted.map((a) => a.text), ["one", "three"])
      assert.strictEqual(attempts.get("reply:0"), 2)
      assert.strictEqual(attempts.get("reply:1"), 1, "a 4xx is not retried")
      assert.deepStrictEqual(results.map((r) => r.error), [undefined, "HTTP 403: Missing Permissions", undefined])
      const dead = (yield* Effect.promise(() => fs.readFile(path.join(journal.dir, "dead-letter.jsonl"), "utf8"))).trim().split("\n").map((line) => JSON.parse(line))
      assert.strictEqual(dead.length, 1)
      assert.strictEqual(dead[0].idempotencyKey, "reply:1")
      assert.strictEqual(dead[0].text, "two")
      assert.strictEqual(dead[0].error, "HTTP 403: Missing Permissions")
    }))

  it.effect("gives up after the attempts, and never sends a piece twice across a restart", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const failing = new SendError({ message: "socket hang up", retryable: true })
      const first = platform(new Map([["reply:1", [failing, failing, failing]]]))
      const journal = yield* ChannelJournal.open(home, "discord", "default")
      const fiber = yield* Effect.forkChild(deliver(first.connection, journal, pieces("one", "two")))
      yield* stepUntilDone(fiber)
      const results = yield* Fiber.join(fiber)
      assert.strictEqual(first.attempts.get("reply:1"), 3)
      assert.strictEqual(results[1]?.error, "socket hang up")
      // A new process over the same journal: piece 0 was sent, piece 1 was not.
      const reopened = yield* ChannelJournal.open(home, "discord", "default")
      const second = platform(new Map())
      const again = yield* deliver(second.connection, reopened, pieces("one", "two"))
      assert.deepStrictEqual(second.accepted.map((a) => a.text), ["two"])
      assert.isTrue(again[0]?.skipped)
      assert.strictEqual(again[0]?.messageId, "m-1")
    }))

  it.effect("an at-most-once piece is never repeated after a failure that may have reached the platform, in this process or after a restart", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const once = (...texts: ReadonlyArray<string>): ReadonlyArray<OutboundMessage> => pieces(...texts).map((piece) => ({ ...piece, atMostOnce: true }))
      const lost = new SendError({ message: "HTTP 502 (the follow-up may have been posted)", retryable: true })
      const refused = new SendError({ message: "connect ECONNREFUSED", retryable: true, notSent: true })
      const first = platform(new Map([["reply:0", [lost]], ["reply:1", [refused]]]))
      const journal = yield* ChannelJournal.open(home, "discord", "default")
      const fiber = yield* Effect.forkChild(deliver(first.connection, journal, once("one", "two", "three")))
      yield* stepUntilDone(fiber)
      const results = yield* Fiber.join(fiber)
      assert.strictEqual(first.attempts.get("reply:0"), 1, "a failure that may have been a success is not retried, retryable or not")
      assert.strictEqual(first.attempts.get("reply:1"), 2, "a request that never reached the platform is retried")
      assert.deepStrictEqual(first.accepted.map((a) => a.text), ["two", "three"])
      assert.deepStrictEqual(results.map((r) => r.error), [lost.message, undefined, undefined])
      const dead = (yield* Effect.promise(() => fs.readFile(path.join(journal.dir, "dead-letter.jsonl"), "utf8"))).trim().split("\n").map((line) => JSON.parse(line))
      assert.deepStrictEqual(dead.map((d) => d.idempotencyKey), ["reply:0"])

      // An attempt a crash left without an outcome (recorded, neither sent nor refused) is not made again after
      // the restart; one that provably failed before reaching the platform is.
      yield* journal.attempting("reply:3")
      yield* journal.attempting("reply:4")
      yield* journal.attemptFailed("reply:4")
      const reopened = yield* ChannelJournal.open(home, "discord", "default")
      const second = platform(new Map())
      const again = yield* deliver(second.connection, reopened, once("one", "two", "three", "four", "five"))
      assert.deepStrictEqual(second.accepted.map((a) => a.text), ["five"], "sent pieces skipped, the unknown attempts dead-lettered, never sent twice")
      assert.deepStrictEqual(again.map((r) => r.skipped), [false, true, true, false, false])
      assert.include(again[0]?.error ?? "", "may have reached the platform")
      assert.include(again[3]?.error ?? "", "may have reached the platform")
      // Without atMostOnce the same unknown attempt would be sent (the platform drops a repeat by its nonce).
      const plain = yield* deliver(second.connection, reopened, pieces("one"))
      assert.isUndefined(plain[0]?.error)
    }))

  it.effect("the journal skips torn lines, keeps unfinished messages and drops finished ones on compaction", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const journal = yield* ChannelJournal.open(home, "discord", "default")
      const message = {
        channel: "discord", accountId: "default", messageId: "9", chatType: "direct" as const, chatId: "c1", from: "discord:u1", to: "channel:c1",
        senderId: "u1", isBot: false, body: "hi", memberRoleIds: [], attachments: [], wasMentioned: false, hasAnyMention: false, replyToBot: false, timestamp: 1
      }
      yield* journal.accepted("c1:8", "agent:main:main", { ...message, messageId: "8" })
      yield* journal.done("c1:8")
      yield* journal.accepted("c1:9", "agent:main:main", message)
      yield* journal.replied("c1:9", "hello", { maxChars: 2000, maxLines: 17 })
      yield* Effect.promise(() => fs.appendFile(path.join(journal.dir, "inbox.jsonl"), "{\"t\":\"done\",\"id\":\"c1:9\""))
      const reopened = yield* ChannelJournal.open(home, "discord", "default")
      assert.deepStrictEqual(reopened.pending.map((p) => [p.id, p.reply, p.chunk]), [["c1:9", "hello", { maxChars: 2000, maxLines: 17 }]])
      const lines = (yield* Effect.promise(() => fs.readFile(path.join(journal.dir, "inbox.jsonl"), "utf8"))).trim().split("\n")
      assert.strictEqual(lines.length, 2, "compacted to the unfinished message and its reply")
    }))

  it.effect("a long-lived journal compacts itself as it goes: finished messages and expired delivery keys leave the files", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const journal = yield* ChannelJournal.open(home, "discord", "default", { compactEvery: 4 })
      const message = {
        channel: "discord", accountId: "default", messageId: "1", chatType: "direct" as const, chatId: "c1", from: "discord:u1", to: "channel:c1",
        senderId: "u1", isBot: false, body: "hi", memberRoleIds: [], attachments: [], wasMentioned: false, hasAnyMention: false, replyToBot: false, timestamp: 1
      }
      yield* journal.markSent("old-piece", "m-old")
      yield* TestClock.adjust("8 days")
      for (let i = 0; i < 6; i++) {
        yield* journal.accepted(`c1:${i}`, "agent:main:main", { ...message, messageId: String(i) })
        if (i !== 3) yield* journal.done(`c1:${i}`)
      }
      yield* journal.markSent("new-piece", "m-new")
      const inbox = (yield* Effect.promise(() => fs.readFile(path.join(journal.dir, "inbox.jsonl"), "utf8"))).trim().split("\n")
      assert.isAtMost(inbox.length, 4, "compacted while running")
      assert.isTrue(inbox.some((line) => line.includes("\"c1:3\"")), "the open message is kept")
      assert.isUndefined(yield* journal.sent("old-piece"), "an expired delivery key is forgotten")
      assert.strictEqual(yield* journal.sent("new-piece"), "m-new")
      const reopened = yield* ChannelJournal.open(home, "discord", "default")
      assert.deepStrictEqual(reopened.pending.map((p) => p.id), ["c1:3"])
    }))

  it.effect("the durable records fail with a typed error when the disk fails: an at-most-once piece is then not sent but dead-lettered, and a message is not open", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      // The inbox and delivered files fail every write (EIO); the dead-letter file works.
      const open = async (file: string, mode: number): Promise<LogHandle> => {
        const real = await fs.open(file, "a", mode)
        const broken = !file.endsWith("dead-letter.jsonl")
        return {
          writeFile: (data, encoding) => broken ? Promise.reject(new Error("EIO: i/o error, write")) : real.writeFile(data, encoding),
          datasync: () => real.datasync(),
          close: () => real.close()
        }
      }
      const journal = yield* ChannelJournal.open(home, "discord", "default", { log: { open } })
      const message: InboundMessage = {
        channel: "discord", accountId: "default", messageId: "9", chatType: "direct", chatId: "c1", from: "discord:u", to: "channel:c1",
        senderId: "u", isBot: false, body: "hi", memberRoleIds: [], attachments: [], wasMentioned: false, hasAnyMention: false, replyToBot: false, timestamp: 0
      }
      const accepted = yield* Effect.flip(journal.accepted("c1:9", "agent:main:main", message))
      assert.strictEqual(accepted._tag, "JournalWriteFailed")
      assert.isFalse(journal.isOpen("c1:9"), "a message that never reached the disk is not open")
      assert.strictEqual((yield* Effect.flip(journal.replied("c1:9", "x", { maxChars: 2000, maxLines: 17 })))._tag, "JournalWriteFailed")
      assert.strictEqual((yield* Effect.flip(journal.markSent("k", "m")))._tag, "JournalWriteFailed")
      assert.strictEqual((yield* Effect.flip(journal.attempting("k2")))._tag, "JournalWriteFailed")
      assert.isFalse(yield* journal.attempted("k2"), "an attempt that was not recorded was not made")
      // Best effort: these succeed (logged) whatever the disk says.
      yield* journal.done("c1:9")
      yield* journal.attemptFailed("k2")

      const { connection, attempts } = platform(new Map())
      const results = yield* deliver(connection, journal, pieces("unrecordable", "plain").map((piece, i) => i === 0 ? { ...piece, atMostOnce: true } : piece))
      assert.isUndefined(attempts.get("reply:0"), "an attempt that could not be recorded is not made")
      assert.include(results[0]?.error ?? "", "could not be recorded")
      assert.strictEqual(attempts.get("reply:1"), 1, "a piece with a nonce is sent; its key not being recorded is logged")
      assert.isUndefined(results[1]?.error)
      const dead = yield* Effect.promise(() => fs.readFile(path.join(journal.dir, "dead-letter.jsonl"), "utf8"))
      assert.include(dead, "reply:0")
    }))
})

/**
 * The parts of ChannelHost that turn an inbound message into a turn's input:
 * images that cannot be had are left out with the reason, in the text. And
 * the host over a scripted connection: its journals outlive its lanes at
 * shutdown, and a message whose journal record cannot be written is neither
 * answered nor marked seen.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Layer, Scope } from "effect"
import type { ChannelConnection } from "../../src/channels/Channel.ts"
import { bodyForAgent, ChannelHost, discordSettingsOf, fetchImages, MAX_IMAGE_BYTES, replyPieces } from "../../src/channels/ChannelHost.ts"
import type { OpenOptions } from "../../src/channels/ChannelJournal.ts"
import { InboundDedupe } from "../../src/channels/Dedupe.ts"
import type { InboundMessage } from "../../src/channels/InboundMessage.ts"
import { PairingStore } from "../../src/channels/PairingStore.ts"
import { AppConfig } from "../../src/config/AppConfig.ts"
import type { LogHandle } from "../../src/platform/AppendLog.ts"
import { DetachedRuns } from "../../src/runtime/DetachedRuns.ts"
import { FakeAnthropic } from "../support/FakeAnthropic.ts"
import * as TestApp from "../support/TestApp.ts"

const message = (attachments: InboundMessage["attachments"], chatType: InboundMessage["chatType"] = "direct"): InboundMessage => ({
  channel: "discord", accountId: "default", messageId: "1", chatType, chatId: "c", from: "discord:u", to: "channel:c",
  senderId: "u", senderName: "Uma", isBot: false, body: "look", memberRoleIds: [], attachments,
  wasMentioned: false, hasAnyMention: false, replyToBot: false, timestamp: 0,
  ...(chatType === "direct" ? {} : { guildId: "g" })
})

describe("ChannelHost input", () => {
  it.live("an image too large or not downloadable is left out, with the reason in the text", () =>
    Effect.gen(function*() {
      const input = message([
        { url: "http://127.0.0.1:1/big.png", name: "big.png", contentType: "image/png", size: MAX_IMAGE_BYTES + 1 },
        { url: "http://127.0.0.1:1/gone.png", name: "gone.png", contentType: "image/png", size: 10 }
      ])
      const { images, notes } = yield* fetchImages(input)
      assert.strictEqual(images.length, 0)
      const text = bodyForAgent(input, notes)
      assert.include(text, "<media:image> big.png (not shown: larger than 5 MiB)")
      assert.include(text, "<media:image> gone.png (could not be downloaded:")
    }))

  it("outside DMs the sender is named; a document is a placeholder", () => {
    const text = bodyForAgent(message([{ url: "http://x/a.pdf", name: "a.pdf", contentType: "application/pdf" }], "channel"))
    assert.strictEqual(text, "Uma: look\n<media:document> a.pdf")
  })

  it("a reply's pieces: files on the last text piece, notes after it under keys of their own, keys from the text alone", () => {
    const file = { name: "a.png", data: new Uint8Array([1]), contentType: "image/png" }
    const chunk = { maxChars: 10, maxLines: 17 }
    const pieces = replyPieces({ target: { chatId: "c" }, text: "0123456789 abcdef", files: [file], notes: ["⚠️ x"], chunk, key: "k", replyTo: (i) => i === 0 ? "m" : undefined })
    assert.deepStrictEqual(pieces.map((p) => [p.idempotencyKey, p.text.trim(), p.files?.length ?? 0, p.replyTo]), [
      ["k:0", "0123456789", 0, "m"],
      ["k:1", "abcdef", 1, undefined],
      ["k:notes:0", "⚠️ x", 0, undefined]
    ])
    // Without a file the text pieces keep the same keys, so a replay that cannot read the file sends no piece twice.
    assert.deepStrictEqual(replyPieces({ target: { chatId: "c" }, text: "0123456789 abcdef", files: [], notes: [], chunk, key: "k" }).map((p) => p.idempotencyKey), ["k:0", "k:1"])
    // Only files: one empty piece carries them.
    const only = replyPieces({ target: { chatId: "c" }, text: "", files: [file], notes: [], chunk, key: "k" })
    assert.deepStrictEqual(only.map((p) => [p.idempotencyKey, p.text, p.files?.length]), [["k:0", "", 1]])
  })
})

/** The host as the gateway builds it: detached runs below it, the sessions against the fake Anthropic API. */
const hostLayer = (home: string, anthropicUrl: string, journal: OpenOptions = {}) =>
  ChannelHost.layerWith({ journal }).pipe(
    Layer.provideMerge(Layer.mergeAll(PairingStore.layer, InboundDedupe.layer(), DetachedRuns.layer)),
    Layer.provideMerge(TestApp.layer({ home, anthropicUrl, config: { channels: { discord: { enabled: true, dmPolicy: "open", allowFrom: ["*"] } } } }))
  )

/** A platform connection that records what it posted; `hold` keeps the first send waiting until it is opened. */
const scripted = (hold?: { readonly started: Deferred.Deferred<void>; readonly gate: Deferred.Deferred<void> }) => {
  const posted: Array<string> = []
  let held = false
  const connection: ChannelConnection = {
    selfId: "bot",
    send: (message) =>
      Effect.gen(function*() {
        if (hold !== undefined && !held) {
          held = true
          yield* Deferred.succeed(hold.started, undefined)
          yield* Deferred.await(hold.gate)
        }
        posted.push(message.idempotencyKey)
        return { messageId: `m-${posted.length}` }
      }),
    typing: () => Effect.void,
    react: () => Effect.void,
    openDirect: (userId) => Effect.succeed({ chatId: `dm-${userId}` })
  }
  return { connection, posted }
}

/** Binds the account and attaches the connection in `scope`, which the test closes (as an account outliving the host). */
const endpointOf = (connection: ChannelConnection, scope: Scope.Scope) =>
  Effect.gen(function*() {
    const host = yield* ChannelHost
    const settings = discordSettingsOf((yield* (yield* AppConfig).get).channels.discord)
    const endpoint = yield* host.bind("discord", "default", Effect.succeed(settings)).pipe(Scope.provide(scope))
    yield* endpoint.attach(connection).pipe(Scope.provide(scope))
    return endpoint
  })

const dm = (messageId: string, body: string): InboundMessage => ({ ...message([]), messageId, body, chatId: "dm-1", senderId: "u1", from: "discord:u1" })

const journalFile = (home: string, name: string) => path.join(home, "channels", "discord", "default", name)
const readText = (file: string) => Effect.promise(() => fs.readFile(file, "utf8").catch(() => ""))

describe("ChannelHost shutdown and journal failures", () => {
  it.live("a lane still delivering when the host stops writes its records before the journal closes; a restart posts nothing twice", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make([{ kind: "message", content: [{ type: "text", text: "the answer" }] }])
      const started = yield* Deferred.make<void>()
      const gate = yield* Deferred.make<void>()
      const first = scripted({ started, gate })
      // The connection's scope outlives the host, as a lane does that outlives its account's wait.
      const account = yield* Scope.make()
      yield* Effect.gen(function*() {
        const endpoint = yield* endpointOf(first.connection, account)
        yield* endpoint.receive(dm("100", "hello"))
        yield* Deferred.await(started)
        // The send completes while the host is stopping.
        yield* Effect.forkDetach(Effect.andThen(Effect.sleep("300 millis"), Deferred.succeed(gate, undefined)))
      }).pipe(Effect.provide(hostLayer(home, anthropic.url)))
      yield* Scope.close(account, Exit.void)
      assert.deepStrictEqual(first.posted, ["discord:default:dm-1:100:reply:0"])
      assert.include(yield* readText(journalFile(home, "delivered.jsonl")), "discord:default:dm-1:100:reply:0", "the sent key is recorded")
      assert.include(yield* readText(journalFile(home, "inbox.jsonl")), "\"t\":\"done\"", "the message is finished")

      const second = scripted()
      const again = yield* Scope.make()
      yield* Effect.gen(function*() {
        yield* endpointOf(second.connection, again)
        yield* Effect.sleep("400 millis")
      }).pipe(Effect.provide(hostLayer(home, anthropic.url)))
      yield* Scope.close(again, Exit.void)
      assert.deepStrictEqual(second.posted, [], "nothing posted again after the restart")
      assert.strictEqual(anthropic.requests.length, 1, "the model is asked once")
    }), 30_000)

  it.live("a message whose accepted record cannot be written is not answered and not marked seen; its redelivery is answered once", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make([{ kind: "message", content: [{ type: "text", text: "answered" }] }])
      let diskFails = true
      // The inbox's disk fails (as EIO or ENOSPC would) until the test mends it.
      const open = async (file: string, mode: number): Promise<LogHandle> => {
        const real = await fs.open(file, "a", mode)
        return {
          writeFile: (data, encoding) => diskFails && file.endsWith("inbox.jsonl") ? Promise.reject(new Error("EIO: i/o error, write")) : real.writeFile(data, encoding),
          datasync: () => real.datasync(),
          close: () => real.close()
        }
      }
      const { connection, posted } = scripted()
      const account = yield* Scope.make()
      yield* Effect.gen(function*() {
        const endpoint = yield* endpointOf(connection, account)
        yield* endpoint.receive(dm("200", "are you there"))
        yield* Effect.sleep("400 millis")
        assert.deepStrictEqual(posted, [], "not answered")
        assert.strictEqual(anthropic.requests.length, 0, "no turn ran")
        // The platform delivers it again (a reconnect): tried again, since it was never marked seen.
        diskFails = false
        yield* endpoint.receive(dm("200", "are you there"))
        for (let i = 0; i < 200 && posted.length === 0; i++) yield* Effect.sleep("25 millis")
        assert.deepStrictEqual(posted, ["discord:default:dm-1:200:reply:0"])
        yield* endpoint.receive(dm("200", "are you there"))
        yield* Effect.sleep("300 millis")
        assert.strictEqual(posted.length, 1, "answered once")
        assert.strictEqual(anthropic.requests.length, 1)
      }).pipe(Effect.provide(hostLayer(home, anthropic.url, { log: { open } })))
      yield* Scope.close(account, Exit.void)
    }), 30_000)
})

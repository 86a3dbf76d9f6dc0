/**
 * The parts of ChannelHost that turn an inbound message into a turn's input:
 * images that cannot be had are left out with the reason, in the text.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bodyForAgent, fetchImages, MAX_IMAGE_BYTES, replyPieces } from "../../src/channels/ChannelHost.ts"
import type { InboundMessage } from "../../src/channels/InboundMessage.ts"

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

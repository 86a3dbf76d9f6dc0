/**
 * The parts of ChannelHost that turn an inbound message into a turn's input:
 * images that cannot be had are left out with the reason, in the text.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { bodyForAgent, fetchImages, MAX_IMAGE_BYTES } from "../../src/channels/ChannelHost.ts"
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
})

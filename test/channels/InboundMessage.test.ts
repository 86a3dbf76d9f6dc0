import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { decodeInboundMessage, type InboundMessage, isThread } from "../../src/channels/InboundMessage.ts"

const dm = {
  channel: "discord",
  accountId: "default",
  messageId: "1300000000000000001",
  chatType: "direct",
  chatId: "1200000000000000001",
  from: "discord:1100000000000000001",
  to: "channel:1200000000000000001",
  senderId: "1100000000000000001",
  senderName: "Alice",
  senderUsername: "alice",
  isBot: false,
  body: "hello",
  memberRoleIds: [],
  attachments: [],
  wasMentioned: false,
  hasAnyMention: false,
  replyToBot: false,
  timestamp: 1_764_000_000_000
} as const

const threadMessage = {
  ...dm,
  chatType: "channel",
  chatId: "1400000000000000001",
  from: "discord:channel:1400000000000000001",
  to: "channel:1400000000000000001",
  threadId: "1400000000000000001",
  parentId: "1500000000000000001",
  guildId: "1600000000000000001",
  memberRoleIds: ["1700000000000000001"],
  attachments: [{ url: "https://cdn.example/a.png", name: "a.png", contentType: "image/png", size: 1234 }],
  replyToId: "1300000000000000000",
  wasMentioned: true,
  hasAnyMention: true
} as const

const ok = (input: unknown): InboundMessage => {
  const decoded = decodeInboundMessage(input)
  if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
  return decoded.success
}
const problem = (input: unknown): string => {
  const decoded = decodeInboundMessage(input)
  if (Result.isSuccess(decoded)) throw new Error("expected a failure")
  return decoded.failure.message
}

describe("InboundMessage", () => {
  it("decodes a DM and a guild thread message", () => {
    assert.strictEqual(ok(dm).senderName, "Alice")
    assert.isFalse(isThread(ok(dm)))
    const thread = ok(threadMessage)
    assert.isTrue(isThread(thread))
    assert.deepStrictEqual(thread.attachments[0], { url: "https://cdn.example/a.png", name: "a.png", contentType: "image/png", size: 1234 })
  })

  it("refuses what an adapter must never produce, naming the field", () => {
    assert.include(problem({ ...dm, channel: "Discord!" }), "channel")
    assert.include(problem({ ...dm, messageId: "" }), "messageId")
    assert.include(problem({ ...dm, senderId: "12 34" }), "senderId")
    assert.include(problem({ ...dm, chatId: "a\u0000b" }), "chatId")
    assert.include(problem({ ...dm, chatType: "dm" }), "chatType")
    assert.include(problem({ ...dm, timestamp: -1 }), "timestamp")
    assert.include(problem({ ...dm, timestamp: 1.5 }), "timestamp")
    assert.include(problem({ ...dm, attachments: [{ url: "", size: 1 }] }), "url")
    assert.include(problem({ ...dm, attachments: [{ url: "https://x", size: -3 }] }), "size")
    assert.include(problem({ ...dm, memberRoleIds: [""] }), "memberRoleIds")
    const { body: _body, ...withoutBody } = dm
    assert.include(problem(withoutBody), "body")
    assert.include(problem(null), "invalid inbound message")
  })

  it("checks that a thread is its own chat and that DMs carry no guild", () => {
    assert.include(problem({ ...threadMessage, threadId: "999" }), "must equal chatId")
    assert.include(problem({ ...dm, guildId: "1600000000000000001" }), "direct message")
  })
})

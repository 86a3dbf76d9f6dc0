/**
 * The normalized inbound message: what a channel adapter hands to the
 * channel layer for every platform message, whatever the platform. It is the
 * part of OpenClaw's `MsgContext` that routing, access control, mention
 * gating, chat commands and de-duplication read; prompt-side fields (the
 * envelope, history, thread starter) are built later from it.
 *
 * Adapters decode into it (`decodeInboundMessage`), so a malformed message is
 * a typed failure at the adapter boundary instead of a surprise in routing.
 */
import { Result, Schema } from "effect"

/** OpenClaw's chat types: a DM, a group DM / group chat, or a guild channel (threads included). */
export const ChatType = Schema.Literals(["direct", "group", "channel"])
export type ChatType = typeof ChatType.Type

const ID_PATTERN = /^[^\s\u0000-\u001f\u007f]{1,256}$/
const ID_EXPECTED = "a platform id (1-256 characters, no whitespace or control characters)"

/**
 * A platform id (user, channel, message, guild, role). Discord's are decimal
 * snowflakes, but other platforms use letters and punctuation, so only what
 * can never be an id is refused: empty, whitespace, control characters.
 */
export const PlatformId = Schema.String.check(
  Schema.makeFilter((s: string) => ID_PATTERN.test(s), { expected: ID_EXPECTED })
).annotate({ expected: ID_EXPECTED })

const CHANNEL_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/
const CHANNEL_ID_EXPECTED = "a channel id like \"discord\" (lower-case letters, digits, `_` or `-`)"

/** A channel plugin id (`discord`); it names files and session-key segments, so it is held to a strict pattern. */
export const ChannelId = Schema.String.check(
  Schema.makeFilter((s: string) => CHANNEL_ID_PATTERN.test(s), { expected: CHANNEL_ID_EXPECTED })
).annotate({ expected: CHANNEL_ID_EXPECTED })

const NonNegativeInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

/** An attachment as the platform announced it; downloading it is the adapter's job, within its size limit. */
export const InboundAttachment = Schema.Struct({
  url: Schema.String.check(Schema.isNonEmpty()),
  name: Schema.optionalKey(Schema.String),
  contentType: Schema.optionalKey(Schema.String),
  /** Bytes, as the platform reports them. */
  size: Schema.optionalKey(NonNegativeInt)
})
export type InboundAttachment = typeof InboundAttachment.Type

/**
 * A native command (a Discord slash command): it is answered through the
 * interaction (its token, valid 15 minutes, edits the deferred answer and
 * sends follow-ups), not as a message in the chat. Kept in the journal, so
 * a restart can still answer it while the token is valid.
 */
export const InboundInteraction = Schema.Struct({
  id: PlatformId,
  token: Schema.String.check(Schema.isNonEmpty()),
  applicationId: PlatformId,
  /** The answer is visible to the invoking user only. */
  ephemeral: Schema.Boolean
})
export type InboundInteraction = typeof InboundInteraction.Type

const InboundMessageFields = Schema.Struct({
  channel: ChannelId,
  /** The configured account that received the message (`default` for a single-account setup). */
  accountId: PlatformId,
  messageId: PlatformId,
  chatType: ChatType,
  /**
   * The conversation the message was posted in, where a reply goes: the DM
   * channel, the guild channel, or the thread itself when posted in a thread.
   */
  chatId: PlatformId,
  /** OpenClaw's `From`: `discord:<userId>` for a DM, `discord:channel:<channelId>` otherwise. */
  from: Schema.String,
  /** OpenClaw's `To`: the reply target, `channel:<chatId>` on Discord. */
  to: Schema.String,
  senderId: PlatformId,
  /** Display name: guild nickname, else global name, else username. */
  senderName: Schema.optionalKey(Schema.String),
  senderUsername: Schema.optionalKey(Schema.String),
  isBot: Schema.Boolean,
  /** The text as the user wrote it (trimmed by the adapter); may be empty for a media-only message. */
  body: Schema.String,
  /** The message this one replies to, if any. */
  replyToId: Schema.optionalKey(PlatformId),
  /** Set when `chatId` is a thread: the thread's id (equal to `chatId`). */
  threadId: Schema.optionalKey(PlatformId),
  /** The thread's parent channel, when known: routing and the guild allowlist fall back to it. */
  parentId: Schema.optionalKey(PlatformId),
  /** The channel's name (without `#`), for allowlist entries keyed by name; never set for threads' own names. */
  chatName: Schema.optionalKey(Schema.String),
  /** The thread parent's name, for allowlist entries keyed by name. */
  parentName: Schema.optionalKey(Schema.String),
  guildId: Schema.optionalKey(PlatformId),
  /** The guild's name, for `guilds` entries keyed by name. */
  guildName: Schema.optionalKey(Schema.String),
  /** The sender's role ids in the guild (empty in DMs). */
  memberRoleIds: Schema.Array(PlatformId),
  attachments: Schema.Array(InboundAttachment),
  /** The bot itself was mentioned explicitly (platform mention or `<@botId>` in the text). */
  wasMentioned: Schema.Boolean,
  /** Any user or role was mentioned, or @everyone/@here: an addressed message, even if not to the bot. */
  hasAnyMention: Schema.Boolean,
  /** The message replies to one of the bot's own messages (OpenClaw's implicit mention). */
  replyToBot: Schema.Boolean,
  /** When the platform says the message was sent, epoch milliseconds. */
  timestamp: NonNegativeInt,
  /** Set when the message is a native command (slash command) rather than a chat message; `messageId` is then the interaction id. */
  interaction: Schema.optionalKey(InboundInteraction)
})

/** A thread message names itself as the chat; anything else is a normalization bug in the adapter. */
const threadIsTheChat = Schema.makeFilter((message: typeof InboundMessageFields.Type) =>
  message.threadId === undefined || message.threadId === message.chatId
    ? undefined
    : { path: ["threadId"], issue: `threadId ${JSON.stringify(message.threadId)} must equal chatId ${JSON.stringify(message.chatId)}` }
)

/** Direct messages come from a person to the bot: no guild, no parent channel. */
const directHasNoGuild = Schema.makeFilter((message: typeof InboundMessageFields.Type) =>
  message.chatType !== "direct" || (message.guildId === undefined && message.threadId === undefined)
    ? undefined
    : { path: ["chatType"], issue: "a direct message cannot carry a guildId or threadId" }
)

export const InboundMessage = InboundMessageFields.check(threadIsTheChat, directHasNoGuild)
export type InboundMessage = typeof InboundMessage.Type

export class InvalidInboundMessage extends Schema.TaggedError<InvalidInboundMessage>()("InvalidInboundMessage", {
  message: Schema.String
}) {}

const decode = Schema.decodeUnknownResult(InboundMessage)

/** Decodes what an adapter built; the failure names every problem, with its path. */
export const decodeInboundMessage = (input: unknown): Result.Result<InboundMessage, InvalidInboundMessage> =>
  Result.mapError(decode(input, { errors: "all" }), (error) => new InvalidInboundMessage({ message: `invalid inbound message: ${error.message}` }))

/** True when the message was posted in a thread (its chat is the thread). */
export const isThread = (message: InboundMessage): boolean => message.threadId !== undefined

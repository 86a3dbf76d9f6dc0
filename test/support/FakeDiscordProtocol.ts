/**
 * Discord protocol constants, wire schemas and payload builders for
 * FakeDiscord.ts. The numbers are written out here rather than imported
 * from discord-api-types, so that a wrong constant in the client library
 * cannot confirm itself through the fake.
 */
import { Schema } from "effect"

export const GatewayOp = {
  Dispatch: 0,
  Heartbeat: 1,
  Identify: 2,
  PresenceUpdate: 3,
  VoiceStateUpdate: 4,
  Resume: 6,
  Reconnect: 7,
  RequestGuildMembers: 8,
  InvalidSession: 9,
  Hello: 10,
  HeartbeatAck: 11,
  RequestSoundboardSounds: 31
} as const

export const Intent = {
  Guilds: 1 << 0,
  GuildMembers: 1 << 1,
  GuildModeration: 1 << 2,
  GuildExpressions: 1 << 3,
  GuildIntegrations: 1 << 4,
  GuildWebhooks: 1 << 5,
  GuildInvites: 1 << 6,
  GuildVoiceStates: 1 << 7,
  GuildPresences: 1 << 8,
  GuildMessages: 1 << 9,
  GuildMessageReactions: 1 << 10,
  GuildMessageTyping: 1 << 11,
  DirectMessages: 1 << 12,
  DirectMessageReactions: 1 << 13,
  DirectMessageTyping: 1 << 14,
  MessageContent: 1 << 15,
  GuildScheduledEvents: 1 << 16,
  AutoModerationConfiguration: 1 << 20,
  AutoModerationExecution: 1 << 21,
  GuildMessagePolls: 1 << 24,
  DirectMessagePolls: 1 << 25
} as const

export const ALL_INTENTS = Object.values(Intent).reduce((all, bit) => all | bit, 0)

/** Gateway close codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes). */
export const CloseCode = {
  UnknownError: 4000,
  UnknownOpcode: 4001,
  DecodeError: 4002,
  NotAuthenticated: 4003,
  AuthenticationFailed: 4004,
  AlreadyAuthenticated: 4005,
  InvalidSeq: 4007,
  RateLimited: 4008,
  SessionTimedOut: 4009,
  InvalidShard: 4010,
  ShardingRequired: 4011,
  InvalidApiVersion: 4012,
  InvalidIntents: 4013,
  DisallowedIntents: 4014
} as const

/**
 * Close codes after which the server forgets the session, so a RESUME gets
 * INVALID_SESSION(false). 1000/1001 from either side end the session too
 * (Discord: "closing with 1000 or 1001 invalidates the session").
 */
export const SESSION_ENDING_CLOSE_CODES: ReadonlySet<number> = new Set([
  1000,
  1001,
  CloseCode.AuthenticationFailed,
  CloseCode.InvalidSeq,
  CloseCode.SessionTimedOut,
  CloseCode.InvalidShard,
  CloseCode.ShardingRequired,
  CloseCode.InvalidApiVersion,
  CloseCode.InvalidIntents,
  CloseCode.DisallowedIntents
])

export type FakeChannelKind =
  | "text"
  | "voice"
  | "category"
  | "announcement"
  | "public-thread"
  | "private-thread"
  | "forum"

export const CHANNEL_TYPE: Readonly<Record<FakeChannelKind | "dm", number>> = {
  text: 0,
  dm: 1,
  voice: 2,
  category: 4,
  announcement: 5,
  "public-thread": 11,
  "private-thread": 12,
  forum: 15
}

export const isThreadKind = (kind: FakeChannelKind | "dm"): boolean =>
  kind === "public-thread" || kind === "private-thread"

/** Kinds where POST /channels/{id}/messages is allowed (forum needs a thread). */
export const isTextKind = (kind: FakeChannelKind | "dm"): boolean =>
  kind === "text" || kind === "dm" || kind === "announcement" || kind === "voice" || isThreadKind(kind)

export const Permission = {
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  MentionEveryone: 1n << 17n,
  UseExternalEmojis: 1n << 18n,
  CreatePublicThreads: 1n << 35n,
  SendMessagesInThreads: 1n << 38n
} as const

/** What @everyone gets in a fresh server, roughly: enough to read, write, react and attach. */
export const DEFAULT_EVERYONE_PERMISSIONS = Object.values(Permission).reduce((all, bit) => all | bit, 0n)

/** JSON error body codes used by the REST API. */
export const ApiError = {
  General: 0,
  UnknownApplication: 10002,
  UnknownChannel: 10003,
  UnknownGuild: 10004,
  UnknownMember: 10007,
  UnknownMessage: 10008,
  UnknownUser: 10013,
  UnknownEmoji: 10014,
  UnknownWebhook: 10015,
  UnknownInteraction: 10062,
  UnknownApplicationCommand: 10063,
  NotAuthorizedForApplication: 20012,
  InteractionAlreadyAcknowledged: 40060,
  RequestEntityTooLarge: 40005,
  MissingAccess: 50001,
  CannotExecuteOnDm: 50003,
  CannotEditOtherUsersMessage: 50005,
  EmptyMessage: 50006,
  NonTextChannel: 50008,
  MissingPermissions: 50013,
  InvalidFormBody: 50035,
  InvalidJson: 50109
} as const

// ---------------------------------------------------------------------------
// Snowflakes

const DISCORD_EPOCH = 1420070400000n

/** Monotonic snowflake generator with Discord's epoch (worker 1, process 0). */
export const makeSnowflakes = (): (() => string) => {
  let last = 0n
  return () => {
    const candidate = ((BigInt(Date.now()) - DISCORD_EPOCH) << 22n) | (1n << 17n)
    last = candidate > last ? candidate : last + 1n
    return last.toString()
  }
}

export const snowflakeShard = (id: string, shardCount: number): number => {
  if (!/^\d+$/.test(id)) return 0
  return Number((BigInt(id) >> 22n) % BigInt(Math.max(1, shardCount)))
}

// ---------------------------------------------------------------------------
// Wire schemas for what clients send

export const GatewayFrame = Schema.Struct({
  op: Schema.Number,
  d: Schema.optionalKey(Schema.Unknown),
  s: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  t: Schema.optionalKey(Schema.NullOr(Schema.String))
})

export const IdentifyData = Schema.Struct({
  token: Schema.String,
  intents: Schema.Number,
  properties: Schema.Struct({
    os: Schema.String,
    browser: Schema.String,
    device: Schema.String
  }),
  compress: Schema.optionalKey(Schema.Boolean),
  large_threshold: Schema.optionalKey(Schema.Number),
  shard: Schema.optionalKey(Schema.Tuple([Schema.Number, Schema.Number])),
  presence: Schema.optionalKey(Schema.Unknown)
})
export type IdentifyData = typeof IdentifyData.Type

export const ResumeData = Schema.Struct({
  token: Schema.String,
  session_id: Schema.String,
  seq: Schema.Number
})

export const HeartbeatData = Schema.NullOr(Schema.Number)

export const RequestGuildMembersData = Schema.Struct({
  guild_id: Schema.String,
  query: Schema.optionalKey(Schema.String),
  limit: Schema.optionalKey(Schema.Number),
  user_ids: Schema.optionalKey(Schema.Union([Schema.String, Schema.Array(Schema.String)])),
  nonce: Schema.optionalKey(Schema.String),
  presences: Schema.optionalKey(Schema.Boolean)
})

const MessageReferenceBody = Schema.Struct({
  message_id: Schema.optionalKey(Schema.String),
  channel_id: Schema.optionalKey(Schema.String),
  guild_id: Schema.optionalKey(Schema.String),
  fail_if_not_exists: Schema.optionalKey(Schema.Boolean),
  type: Schema.optionalKey(Schema.Number)
})

const AttachmentBody = Schema.Struct({
  id: Schema.Union([Schema.String, Schema.Number]),
  filename: Schema.optionalKey(Schema.String),
  description: Schema.optionalKey(Schema.NullOr(Schema.String))
})

/** POST /channels/{id}/messages body (JSON, or payload_json of a multipart body). */
export const CreateMessageBody = Schema.Struct({
  content: Schema.optionalKey(Schema.NullOr(Schema.String)),
  nonce: Schema.optionalKey(Schema.NullOr(Schema.Union([Schema.String, Schema.Number]))),
  enforce_nonce: Schema.optionalKey(Schema.NullOr(Schema.Boolean)),
  tts: Schema.optionalKey(Schema.NullOr(Schema.Boolean)),
  embeds: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  allowed_mentions: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  message_reference: Schema.optionalKey(Schema.NullOr(MessageReferenceBody)),
  attachments: Schema.optionalKey(Schema.NullOr(Schema.Array(AttachmentBody))),
  components: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  sticker_ids: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.String))),
  poll: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  flags: Schema.optionalKey(Schema.NullOr(Schema.Number))
})
export type CreateMessageBody = typeof CreateMessageBody.Type

/** PATCH /channels/{id}/messages/{id} body. */
export const EditMessageBody = Schema.Struct({
  content: Schema.optionalKey(Schema.NullOr(Schema.String)),
  embeds: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  attachments: Schema.optionalKey(Schema.NullOr(Schema.Array(AttachmentBody))),
  allowed_mentions: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  components: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  flags: Schema.optionalKey(Schema.NullOr(Schema.Number))
})

export const CreateDmBody = Schema.Struct({ recipient_id: Schema.String })

/** Interaction and command type numbers (https://discord.com/developers/docs/interactions/receiving-and-responding). */
export const InteractionType = { Ping: 1, ApplicationCommand: 2, MessageComponent: 3, Autocomplete: 4, ModalSubmit: 5 } as const
export const InteractionCallbackType = { Pong: 1, ChannelMessageWithSource: 4, DeferredChannelMessageWithSource: 5, DeferredUpdateMessage: 6, UpdateMessage: 7 } as const
export const ApplicationCommandOptionType = { String: 3, Integer: 4, Boolean: 5, User: 6, Channel: 7, Role: 8, Mentionable: 9, Number: 10, Attachment: 11 } as const
export const MessageFlag = { Ephemeral: 1 << 6, Loading: 1 << 7 } as const
/** An application's commands are capped at 100 (chat input), names 1-32 lower-case word characters, descriptions 1-100. */
export const MAX_APPLICATION_COMMANDS = 100
export const COMMAND_NAME = /^[-_'\p{L}\p{N}\p{sc=Deva}\p{sc=Thai}]{1,32}$/u

const CommandChoice = Schema.Struct({
  name: Schema.String,
  name_localizations: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  value: Schema.Union([Schema.String, Schema.Number])
})

const CommandOption = Schema.Struct({
  type: Schema.Number,
  name: Schema.String,
  name_localizations: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  description: Schema.String,
  description_localizations: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  required: Schema.optionalKey(Schema.Boolean),
  choices: Schema.optionalKey(Schema.Array(CommandChoice)),
  autocomplete: Schema.optionalKey(Schema.Boolean),
  min_length: Schema.optionalKey(Schema.Number),
  max_length: Schema.optionalKey(Schema.Number),
  min_value: Schema.optionalKey(Schema.Number),
  max_value: Schema.optionalKey(Schema.Number),
  channel_types: Schema.optionalKey(Schema.Array(Schema.Number)),
  options: Schema.optionalKey(Schema.Array(Schema.Unknown))
})

/** One command in PUT (bulk overwrite) or POST /applications/{id}/commands (what discord.js's transformCommand sends). */
export const ApplicationCommandBody = Schema.Struct({
  name: Schema.String,
  name_localizations: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  description: Schema.optionalKey(Schema.String),
  description_localizations: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  type: Schema.optionalKey(Schema.Number),
  options: Schema.optionalKey(Schema.NullOr(Schema.Array(CommandOption))),
  default_member_permissions: Schema.optionalKey(Schema.NullOr(Schema.String)),
  dm_permission: Schema.optionalKey(Schema.NullOr(Schema.Boolean)),
  nsfw: Schema.optionalKey(Schema.Boolean),
  integration_types: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Number))),
  contexts: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Number))),
  handler: Schema.optionalKey(Schema.Number)
})
export type ApplicationCommandBody = typeof ApplicationCommandBody.Type
export const BulkCommandsBody = Schema.Array(ApplicationCommandBody)

/** POST /interactions/{id}/{token}/callback body. */
export const InteractionCallbackBody = Schema.Struct({
  type: Schema.Number,
  data: Schema.optionalKey(Schema.NullOr(Schema.Struct({
    content: Schema.optionalKey(Schema.NullOr(Schema.String)),
    flags: Schema.optionalKey(Schema.NullOr(Schema.Number)),
    tts: Schema.optionalKey(Schema.NullOr(Schema.Boolean)),
    embeds: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
    allowed_mentions: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
    components: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
    attachments: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown)))
  })))
})

/** PATCH /webhooks/{app}/{token}/messages/@original and POST /webhooks/{app}/{token} (follow-up) bodies. */
export const WebhookMessageBody = Schema.Struct({
  content: Schema.optionalKey(Schema.NullOr(Schema.String)),
  flags: Schema.optionalKey(Schema.NullOr(Schema.Number)),
  tts: Schema.optionalKey(Schema.NullOr(Schema.Boolean)),
  embeds: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  allowed_mentions: Schema.optionalKey(Schema.NullOr(Schema.Unknown)),
  components: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  attachments: Schema.optionalKey(Schema.NullOr(Schema.Array(Schema.Unknown))),
  username: Schema.optionalKey(Schema.NullOr(Schema.String)),
  avatar_url: Schema.optionalKey(Schema.NullOr(Schema.String)),
  thread_name: Schema.optionalKey(Schema.NullOr(Schema.String)),
  poll: Schema.optionalKey(Schema.NullOr(Schema.Unknown))
})

// ---------------------------------------------------------------------------
// Error bodies

export interface ApiErrorBody {
  readonly message: string
  readonly code: number
  readonly errors?: unknown
}

/** Discord's nested "Invalid Form Body" error for one field. */
export const formError = (field: string, code: string, message: string): ApiErrorBody => ({
  message: "Invalid Form Body",
  code: ApiError.InvalidFormBody,
  errors: { [field]: { _errors: [{ code, message }] } }
})

export const MAX_CONTENT_LENGTH = 2000
export const MAX_NONCE_LENGTH = 25

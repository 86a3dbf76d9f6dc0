/**
 * A protocol-faithful fake Discord that the real, unmodified discord.js runs
 * against: one loopback server (127.0.0.1, port 0) serving the REST API under
 * `/api/v10/...` and the gateway WebSocket under `/gateway` (JSON encoding, no
 * compression), plus attachment downloads under `/attachments/...`.
 *
 * Pointing discord.js at it:
 *
 *   const fake = await FakeDiscord.start({ heartbeatIntervalMs: 250 })
 *   const client = new Client({
 *     intents: [Guilds, GuildMessages, DirectMessages, MessageContent],
 *     partials: [Partials.Channel],            // or DMs are dropped (see below)
 *     rest: { api: fake.apiBase }              // discord.js appends /v10
 *   })
 *   await client.login(fake.token)             // gateway URL comes from GET /gateway/bot
 *
 * Effect: `yield* FakeDiscord.make(options)` inside a Scope closes it for you.
 *
 * Control API (all on the handle returned by `start`):
 *
 *   World
 *     token, botUser, applicationId        the bot's credentials and user
 *     url / apiBase / gatewayUrl           http://127.0.0.1:P, ".../api", ws://.../gateway
 *     snowflake()                          a fresh Discord-epoch id
 *     addUser(user)                        register a user (id generated when absent)
 *     addGuild({name, channels, roles, members})   the bot joins it; GUILD_CREATE is
 *                                          dispatched to live sessions when added later
 *     addChannel(guildId, channel)         CHANNEL_CREATE / THREAD_CREATE when live
 *     addDmUser(user) -> {user, channelId} a user and the DM channel with the bot
 *     guild(id) / channel(id) / message(id)   current state (messages include
 *                                          deleted ones, flagged)
 *
 *   Gateway
 *     dispatchMessage({channelId, author, content, mentions?, messageReference?,
 *                      attachments?, id?}) -> FakeMessage
 *                                          MESSAGE_CREATE as Discord builds it:
 *                                          mentions parsed from <@id>/<@&id>/@everyone unless
 *                                          given, a reply pings the replied-to author,
 *                                          content/embeds/attachments blanked for sessions
 *                                          without MESSAGE_CONTENT unless DM/mentioned/own
 *     redispatchMessage(id)                MESSAGE_CREATE again for an existing message
 *     dispatchInteraction({user, channelId, commandName, options?, id?}) -> FakeInteraction
 *                                          INTERACTION_CREATE (chat input) for a registered
 *                                          command, with member (guild) or user (DM), channel, token
 *     redispatchInteraction(id)            the same interaction again (same id and token)
 *     dispatchRaw(t, d)                    any dispatch to every live session, unfiltered
 *     dropConnection(code?)                server closes every socket with `code`, or
 *                                          drops TCP when omitted (client sees 1006)
 *     invalidateSession(resumable)         op 9 INVALID_SESSION; false forgets the session
 *     sendReconnect()                      op 7 RECONNECT
 *     requestHeartbeat()                   op 1 from the server
 *     setHeartbeatAcks(on)                 false: stop ACKing (zombie connection)
 *     expireSessions()                     forget all sessions: next RESUME gets op 9 false
 *     rotateToken() -> new token           old token: REST 401, IDENTIFY/RESUME close 4004
 *
 *   REST fault injection (matcher: {method?, path: string | RegExp} or a function;
 *   paths are after /api/v10, e.g. "/channels/123/messages")
 *     rateLimitNext(matcher, {retryAfterMs, count?, global?, scope?})
 *                                          429 with Discord's body and headers, N times
 *     failNext(matcher, {status, count?, after?})
 *                                          answer `status` (or "reset": destroy the socket);
 *                                          after: true does the work first, then loses
 *                                          the response (the classic duplicate-send trap)
 *
 *   Application commands and interactions (REST)
 *     GET/PUT/POST /applications/{app}/commands, DELETE .../commands/{id}: the global
 *     commands (bot token; another application id: 403 20012); PUT replaces the set and
 *     keeps the id of a same-named command, POST upserts by name (201 new, 200 existing);
 *     names, descriptions, option counts and the 100-command cap checked (50035 / 30032).
 *     POST /interactions/{id}/{token}/callback (no bot token): type 4 or 5, within
 *     `interactionCallbackWindowMs` (3 s) or 10062, once or 40060; 204 unless with_response.
 *     PATCH /webhooks/{app}/{token}/messages/@original and POST /webhooks/{app}/{token}
 *     (follow-up, ?wait=true answers the message): within `interactionTokenTtlMs` (15 min)
 *     of the interaction, else 10015 Unknown Webhook; before any callback: 10008 / 10015.
 *     applicationCommands(), interaction(id) (acknowledged, flags, originalContent,
 *     followups), interactionResponses (callback / edit-original / followup records).
 *     Not modelled: MESSAGE_CREATE/UPDATE for non-ephemeral interaction responses,
 *     guild commands, autocomplete and components.
 *
 *   Records (append-only arrays, oldest first)
 *     sentMessages     messages the bot created (channelId, content, messageReference,
 *                      nonce, enforceNonce, attachments with names/sizes/bytes)
 *     edits, deletions, typingCalls, reactions
 *     requests         every REST request: method, path, route, status, injected fault
 *     unknownRoutes    REST requests no route matched (answered 404 {message, code: 0})
 *     connections      every gateway socket: path, query, close code, who closed
 *     identifies, resumes   IDENTIFY / RESUME payloads with the outcome
 *     identifyCount, resumeCount, heartbeatCount, nonceHits, openConnections
 *     protocolErrors   anything the fake refused or could not honour, in words
 *
 *   waitFor(predicate, timeoutMs?, label?) polls until true; close() stops it all.
 *
 * Faithful behaviour worth knowing:
 *  - enforce_nonce: a second create with the same nonce within `nonceWindowMs`
 *    returns the first message (same id) and creates nothing; counted in nonceHits.
 *  - The bot's own messages come back as MESSAGE_CREATE (with their nonce).
 *  - Sessions buffer dispatches while disconnected; RESUME replays those after
 *    `seq`, then RESUMED. Closing with 1000/1001 (either side) ends the session.
 *  - Every REST answer carries X-RateLimit-* headers from a real per-bucket
 *    counter (`rateLimit`, default 50 per 1 s; Discord's message bucket is 5 per
 *    5 s); going over gets a genuine 429.
 *  - A 429 carries Retry-After in whole seconds (as Discord sends it), the
 *    exact value in JSON retry_after and X-RateLimit-Reset-After, Remaining 0
 *    and X-RateLimit-Scope. discord.js waits Reset-After + 2 x its 50 ms offset
 *    for a route 429 (so retryAfterMs 300 costs ~400 ms), Retry-After for a
 *    global one.
 *  - GUILD_CREATEs follow READY after `guildCreateDelayMs` (default 10; 0 sends
 *    them in the same tick, which discord.js 14.28.1 also handles).
 *
 * discord.js facts this fake was built against (14.28.1, @discordjs/ws 1.2.3,
 * @discordjs/rest 2.6.3): DM messages need `partials: [Partials.Channel]`
 * because Discord sends no CHANNEL_CREATE for DMs; compression is only
 * negotiated when the optional `zlib-sync` package is installed; a reconnect
 * waits a fixed 500 ms; a re-IDENTIFY within 5 s of the previous one waits
 * until 5 s have passed plus up to 1.5 s of jitter (SimpleIdentifyThrottler).
 * login() resolves at READY, before the GUILD_CREATEs: wait for clientReady.
 * messageCreate fires for the bot's own messages too. A fatal close after
 * login (4004, 4010-4014) leaves client.isReady() true; only shardDisconnect
 * (with the code) and shardError say so. A 4004/4014 during login rejects
 * login() with "Authentication failed" / "Used disallowed intents"; a bad
 * token is caught earlier by GET /gateway/bot (401 -> TokenInvalid).
 */
import { createHash, randomBytes } from "node:crypto"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import type { Duplex } from "node:stream"
import { Effect, Result, Schema, type Scope } from "effect"
import { type RawData, WebSocket, WebSocketServer } from "ws"
import {
  ALL_INTENTS,
  ApiError,
  ApplicationCommandBody,
  ApplicationCommandOptionType,
  BulkCommandsBody,
  COMMAND_NAME,
  InteractionCallbackBody,
  InteractionCallbackType,
  InteractionType,
  MAX_APPLICATION_COMMANDS,
  MessageFlag,
  WebhookMessageBody,
  type ApiErrorBody,
  CHANNEL_TYPE,
  CloseCode,
  CreateDmBody,
  CreateMessageBody,
  DEFAULT_EVERYONE_PERMISSIONS,
  EditMessageBody,
  type FakeChannelKind,
  formError,
  GatewayFrame,
  GatewayOp,
  HeartbeatData,
  IdentifyData,
  Intent,
  isTextKind,
  isThreadKind,
  makeSnowflakes,
  MAX_CONTENT_LENGTH,
  MAX_NONCE_LENGTH,
  Permission,
  RequestGuildMembersData,
  ResumeData,
  SESSION_ENDING_CLOSE_CODES,
  snowflakeShard
} from "./FakeDiscordProtocol.ts"

export { CloseCode, GatewayOp, Intent } from "./FakeDiscordProtocol.ts"
export type { FakeChannelKind } from "./FakeDiscordProtocol.ts"

// ---------------------------------------------------------------------------
// Public types

export interface FakeUser {
  readonly id: string
  readonly username: string
  readonly globalName: string | null
  readonly bot: boolean
}

export interface FakeUserInput {
  readonly id?: string
  readonly username: string
  readonly globalName?: string | null
  readonly bot?: boolean
}

export interface FakeChannelInput {
  readonly id?: string
  readonly name: string
  /** Default "text". Threads need `parentId`. */
  readonly kind?: FakeChannelKind
  readonly parentId?: string
  readonly topic?: string
  /** @everyone (and so the bot) may not send here: POST messages/typing get 403 50013. */
  readonly readOnly?: boolean
}

export interface FakeChannel {
  readonly id: string
  readonly kind: FakeChannelKind | "dm"
  readonly type: number
  readonly name: string | null
  readonly guildId: string | null
  readonly parentId: string | null
  readonly topic: string | null
  readonly readOnly: boolean
  /** The other party of a DM channel. */
  readonly recipient: FakeUser | null
}

export interface FakeRoleInput {
  readonly id?: string
  readonly name: string
  readonly permissions?: bigint
  readonly mentionable?: boolean
}

export interface FakeRole {
  readonly id: string
  readonly name: string
  readonly permissions: string
  readonly position: number
  readonly mentionable: boolean
  /** Set on the bot's own managed role. */
  readonly botId: string | null
}

export interface FakeMemberInput {
  readonly user: FakeUserInput | FakeUser
  readonly roles?: ReadonlyArray<string>
  readonly nick?: string
}

export interface FakeMember {
  readonly user: FakeUser
  readonly roles: ReadonlyArray<string>
  readonly nick: string | null
  readonly joinedAt: string
}

export interface FakeGuildInput {
  readonly id?: string
  readonly name: string
  readonly ownerId?: string
  readonly channels?: ReadonlyArray<FakeChannelInput>
  readonly roles?: ReadonlyArray<FakeRoleInput>
  readonly members?: ReadonlyArray<FakeMemberInput>
}

export interface FakeGuild {
  readonly id: string
  readonly name: string
  readonly ownerId: string
  readonly channels: ReadonlyArray<FakeChannel>
  readonly roles: ReadonlyArray<FakeRole>
  /** The bot's managed role (Discord gives every bot one when it joins). */
  readonly botRoleId: string
  readonly members: ReadonlyArray<FakeMember>
}

export interface FakeAttachment {
  readonly id: string
  readonly filename: string
  readonly size: number
  readonly contentType: string | undefined
  readonly description: string | undefined
  /** Where the fake serves the bytes (its own /attachments route). */
  readonly url: string
  readonly data: Uint8Array
}

export interface FakeMessage {
  readonly id: string
  readonly channelId: string
  readonly guildId: string | null
  readonly author: FakeUser
  readonly content: string
  readonly timestamp: string
  readonly editedTimestamp: string | null
  readonly mentions: ReadonlyArray<FakeUser>
  readonly mentionRoles: ReadonlyArray<string>
  readonly mentionEveryone: boolean
  readonly attachments: ReadonlyArray<FakeAttachment>
  readonly embeds: ReadonlyArray<unknown>
  readonly reference: { readonly messageId: string; readonly channelId: string; readonly guildId: string | null } | null
  readonly nonce: string | number | null
  /** 0 default, 19 reply. */
  readonly type: number
  readonly deleted: boolean
}

export interface FakeInboundAttachment {
  readonly filename: string
  readonly data: Uint8Array | string
  readonly contentType?: string
  readonly description?: string
}

export interface FakeInboundMessage {
  readonly channelId: string
  /** A user, or the id of a registered one. Unknown users are registered; guild authors become members. */
  readonly author: FakeUser | FakeUserInput | string
  readonly content: string
  /** Checked against the channel's guild when given. */
  readonly guildId?: string
  readonly id?: string
  /** Users mentioned; default: parsed from `<@id>` / `<@!id>` in content (registered users only). */
  readonly mentions?: ReadonlyArray<FakeUser | string>
  /** Role ids mentioned; default: parsed from `<@&id>` in content. */
  readonly mentionRoles?: ReadonlyArray<string>
  /** Default: content contains @everyone or @here. */
  readonly mentionEveryone?: boolean
  /** A reply. `ping` (default true) adds the replied-to author to mentions, as the Discord client does. */
  readonly messageReference?: { readonly messageId: string; readonly ping?: boolean }
  readonly attachments?: ReadonlyArray<FakeInboundAttachment>
  readonly embeds?: ReadonlyArray<unknown>
  readonly nonce?: string
}

/** A slash command as a user runs it: `options` are the command's string options by name. */
export interface FakeInteractionInput {
  readonly user: FakeUser
  readonly channelId: string
  readonly commandName: string
  readonly options?: Readonly<Record<string, string>>
  readonly id?: string
}

export interface FakeInteraction {
  readonly id: string
  readonly token: string
  readonly commandName: string
  readonly channelId: string
  readonly userId: string
  readonly createdAt: number
  /** An initial response (callback) was accepted. */
  readonly acknowledged: boolean
  /** The initial response's flags (64: ephemeral). */
  readonly flags: number
  /** The original response's content: undefined while deferred ("thinking…") or unanswered. */
  readonly originalContent: string | undefined
  readonly followups: ReadonlyArray<{ readonly id: string; readonly content: string; readonly flags: number }>
}

/** Every accepted interaction response, in order. */
export interface InteractionResponseRecord {
  readonly interactionId: string
  readonly kind: "callback" | "edit-original" | "followup"
  /** The callback type (4 message, 5 deferred) for a callback. */
  readonly callbackType?: number
  readonly content: string | undefined
  readonly flags: number
  readonly messageId: string | undefined
  readonly at: number
}

export interface FakeApplicationCommand {
  readonly id: string
  readonly name: string
  readonly description: string
  readonly type: number
  readonly options: ReadonlyArray<unknown>
  readonly version: string
}

export interface SentMessageRecord {
  readonly id: string
  readonly channelId: string
  readonly guildId: string | null
  readonly content: string
  readonly messageReference:
    | { readonly messageId: string | undefined; readonly channelId: string | undefined; readonly failIfNotExists: boolean | undefined }
    | undefined
  readonly nonce: string | number | undefined
  readonly enforceNonce: boolean
  readonly attachments: ReadonlyArray<FakeAttachment>
  readonly embeds: ReadonlyArray<unknown>
  readonly multipart: boolean
  /** The JSON body as sent (payload_json for multipart). */
  readonly body: unknown
  readonly at: number
}

export interface EditRecord {
  readonly messageId: string
  readonly channelId: string
  readonly content: string | undefined
  readonly body: unknown
  readonly at: number
}

export interface DeletionRecord {
  readonly messageId: string
  readonly channelId: string
  readonly at: number
}

export interface TypingRecord {
  readonly channelId: string
  readonly at: number
}

export interface ReactionRecord {
  readonly channelId: string
  readonly messageId: string
  /** Decoded: "👍" or "name:id" for custom emoji. */
  readonly emoji: string
  readonly op: "add" | "remove"
  readonly at: number
}

export interface RestRequestRecord {
  readonly method: string
  /** After /api/v10, without the query string. */
  readonly path: string
  readonly query: string
  /** Bucket route: ids replaced by :id, as discord.js and Discord group them. */
  readonly route: string
  readonly status: number
  readonly authorized: boolean
  readonly userAgent: string | undefined
  readonly body: unknown
  readonly injected: "rate-limit" | "fail" | undefined
  /** For POST messages answered from the nonce cache. */
  readonly dedupedByNonce: boolean
  readonly at: number
}

export interface ConnectionRecord {
  readonly id: number
  readonly path: string
  readonly query: Readonly<Record<string, string>>
  readonly openedAt: number
  closedAt: number | undefined
  closeCode: number | undefined
  closedBy: "client" | "server" | undefined
  sessionId: string | undefined
}

export interface IdentifyRecord {
  readonly connectionId: number
  readonly token: string
  readonly intents: number
  readonly shard: readonly [number, number]
  readonly properties: { readonly os: string; readonly browser: string; readonly device: string }
  readonly compress: boolean
  readonly largeThreshold: number | undefined
  readonly presence: unknown
  /** "ready" or the close code the fake answered with. */
  readonly outcome: "ready" | number
}

export interface ResumeRecord {
  readonly connectionId: number
  readonly sessionId: string
  readonly seq: number
  /** "resumed", "invalid-session" (op 9 false) or a close code. */
  readonly outcome: "resumed" | "invalid-session" | number
  readonly replayed: number
}

export type RouteMatcher =
  | { readonly method?: string; readonly path: string | RegExp }
  | ((request: { readonly method: string; readonly path: string }) => boolean)

export interface RateLimitInjection {
  readonly retryAfterMs: number
  /** How many matching requests get the 429 (default 1). */
  readonly count?: number
  /** Sets X-RateLimit-Global and global: true. */
  readonly global?: boolean
  /** X-RateLimit-Scope (default "user"; "global" when global). */
  readonly scope?: "user" | "shared" | "global"
}

export interface FailInjection {
  /** HTTP status, or "reset" to destroy the socket without an answer. */
  readonly status: number | "reset"
  readonly count?: number
  /** Do the work (create the message...) and then lose the answer. */
  readonly after?: boolean
  readonly body?: ApiErrorBody
}

export interface FakeDiscordOptions {
  /** The valid bot token (default: a generated one in Discord's id.timestamp.hmac shape). */
  readonly token?: string
  readonly botUser?: Partial<FakeUserInput>
  readonly applicationId?: string
  /** HELLO heartbeat_interval (Discord sends 41250). Default 41250; use ~100-500 in tests. */
  readonly heartbeatIntervalMs?: number
  /** Privileged intents enabled in the "developer portal"; a disabled one requested at IDENTIFY closes 4014. All default true. */
  readonly privilegedIntents?: {
    readonly messageContent?: boolean
    readonly guildMembers?: boolean
    readonly guildPresences?: boolean
  }
  /** Recommended shard count in GET /gateway/bot (default 1). */
  readonly shards?: number
  readonly sessionStartLimit?: { readonly total?: number; readonly resetAfterMs?: number; readonly maxConcurrency?: number }
  /** Per route bucket and major parameter. Default { limit: 50, windowMs: 1000 }. */
  readonly rateLimit?: { readonly limit: number; readonly windowMs: number }
  /** How long enforce_nonce remembers a nonce (Discord: "a few minutes"). Default 5 min. */
  readonly nonceWindowMs?: number
  /** Upload limit per request (Discord's default for bots: 10 MiB). */
  readonly maxUploadBytes?: number
  /** Delay between READY and the GUILD_CREATEs (default 10 ms; 0: same tick). */
  readonly guildCreateDelayMs?: number
  /** Dispatches a session keeps for RESUME (default 10000). */
  readonly resumeBufferSize?: number
  /** How long after an interaction its initial response is accepted (Discord: 3 s). */
  readonly interactionCallbackWindowMs?: number
  /** How long an interaction token accepts edits and follow-ups (Discord: 15 min). */
  readonly interactionTokenTtlMs?: number
}

export interface FakeDiscordHandle {
  readonly url: string
  readonly apiBase: string
  readonly gatewayUrl: string
  readonly token: string
  readonly botUser: FakeUser
  readonly applicationId: string

  readonly snowflake: () => string
  readonly addUser: (user: FakeUserInput | FakeUser) => FakeUser
  readonly addGuild: (guild: FakeGuildInput) => FakeGuild
  readonly addChannel: (guildId: string, channel: FakeChannelInput) => FakeChannel
  readonly addDmUser: (user: FakeUserInput | FakeUser) => { readonly user: FakeUser; readonly channelId: string }
  readonly guild: (id: string) => FakeGuild | undefined
  readonly channel: (id: string) => FakeChannel | undefined
  readonly message: (id: string) => FakeMessage | undefined

  readonly dispatchMessage: (message: FakeInboundMessage) => FakeMessage
  /** MESSAGE_CREATE again for a message already dispatched, as Discord's at-least-once delivery may. */
  readonly redispatchMessage: (id: string) => void
  readonly dispatchRaw: (t: string, d: unknown) => void
  /** INTERACTION_CREATE for a registered chat-input command, as Discord builds it. */
  readonly dispatchInteraction: (input: FakeInteractionInput) => FakeInteraction
  /** INTERACTION_CREATE again for the same interaction (same id and token). */
  readonly redispatchInteraction: (id: string) => void
  readonly interaction: (id: string) => FakeInteraction | undefined
  /** The application's registered (global) commands. */
  readonly applicationCommands: () => ReadonlyArray<FakeApplicationCommand>
  readonly interactionResponses: ReadonlyArray<InteractionResponseRecord>
  readonly dropConnection: (code?: number, reason?: string) => Promise<void>
  readonly invalidateSession: (resumable: boolean) => void
  readonly sendReconnect: () => void
  readonly requestHeartbeat: () => void
  readonly setHeartbeatAcks: (enabled: boolean) => void
  readonly expireSessions: () => void
  readonly rotateToken: () => string

  readonly rateLimitNext: (matcher: RouteMatcher, injection: RateLimitInjection) => void
  readonly failNext: (matcher: RouteMatcher, injection: FailInjection) => void

  readonly sentMessages: ReadonlyArray<SentMessageRecord>
  readonly edits: ReadonlyArray<EditRecord>
  readonly deletions: ReadonlyArray<DeletionRecord>
  readonly typingCalls: ReadonlyArray<TypingRecord>
  readonly reactions: ReadonlyArray<ReactionRecord>
  readonly requests: ReadonlyArray<RestRequestRecord>
  readonly unknownRoutes: ReadonlyArray<{ readonly method: string; readonly path: string }>
  readonly connections: ReadonlyArray<ConnectionRecord>
  readonly identifies: ReadonlyArray<IdentifyRecord>
  readonly resumes: ReadonlyArray<ResumeRecord>
  readonly protocolErrors: ReadonlyArray<string>
  readonly identifyCount: number
  readonly resumeCount: number
  readonly heartbeatCount: number
  readonly nonceHits: number
  /** Sockets currently open. */
  readonly openConnections: number

  readonly waitFor: (predicate: () => boolean, timeoutMs?: number, label?: string) => Promise<void>
  readonly close: () => Promise<void>
}

// ---------------------------------------------------------------------------
// Internal state types

interface ChannelState {
  id: string
  kind: FakeChannelKind | "dm"
  name: string | null
  guildId: string | null
  parentId: string | null
  topic: string | null
  readOnly: boolean
  recipient: FakeUser | null
  lastMessageId: string | null
  ownerId: string | null
}

interface GuildState {
  id: string
  name: string
  ownerId: string
  roles: Array<FakeRole>
  botRoleId: string
  members: Map<string, FakeMember>
  channelIds: Array<string>
  joinedAt: string
}

interface MessageState {
  id: string
  channelId: string
  guildId: string | null
  author: FakeUser
  content: string
  timestamp: string
  editedTimestamp: string | null
  mentions: Array<FakeUser>
  mentionRoles: Array<string>
  mentionEveryone: boolean
  attachments: Array<FakeAttachment>
  embeds: Array<unknown>
  reference: { messageId: string; channelId: string; guildId: string | null } | null
  nonce: string | number | null
  type: number
  deleted: boolean
}

interface Frame {
  readonly op: number
  readonly d: unknown
  readonly s: number | null
  readonly t: string | null
}

interface Session {
  readonly id: string
  readonly intents: number
  readonly shard: readonly [number, number]
  seq: number
  readonly buffer: Array<Frame>
  conn: Conn | undefined
  invalid: boolean
}

interface Conn {
  readonly ws: WebSocket
  readonly record: ConnectionRecord
  session: Session | undefined
  closed: boolean
  readonly closedPromise: Promise<void>
}

interface InteractionState {
  readonly id: string
  readonly token: string
  readonly commandName: string
  readonly channelId: string
  readonly guildId: string | null
  readonly user: FakeUser
  readonly createdAt: number
  readonly payload: Record<string, unknown>
  acknowledged: boolean
  flags: number
  original: { id: string; content: string | undefined; edited: boolean } | undefined
  readonly followups: Array<{ readonly id: string; readonly content: string; readonly flags: number }>
}

interface Injection {
  readonly matcher: RouteMatcher
  remaining: number
  readonly kind: "rate-limit" | "fail"
  readonly rateLimit?: RateLimitInjection
  readonly fail?: FailInjection
}

type ParsedBody =
  | { readonly kind: "none" }
  | { readonly kind: "json"; readonly value: unknown }
  | { readonly kind: "invalid"; readonly reason: string }
  | {
    readonly kind: "multipart"
    readonly payload: unknown
    readonly files: ReadonlyArray<{ readonly field: string; readonly filename: string; readonly contentType: string; readonly data: Uint8Array }>
  }

interface RestReply {
  readonly status: number
  readonly json?: unknown
  readonly bytes?: { readonly data: Uint8Array; readonly contentType: string }
  readonly dedupedByNonce?: boolean
}

interface RestContext {
  readonly method: string
  readonly path: string
  readonly params: ReadonlyArray<string>
  readonly query: URLSearchParams
  readonly body: ParsedBody
}

interface Route {
  readonly method: string
  readonly pattern: RegExp
  readonly auth: boolean
  readonly handle: (ctx: RestContext) => RestReply
}

// ---------------------------------------------------------------------------
// Helpers

const decodeFrame = Schema.decodeUnknownResult(GatewayFrame)
const decodeIdentify = Schema.decodeUnknownResult(IdentifyData)
const decodeResume = Schema.decodeUnknownResult(ResumeData)
const decodeHeartbeat = Schema.decodeUnknownResult(HeartbeatData)
const decodeRequestMembers = Schema.decodeUnknownResult(RequestGuildMembersData)
const decodeCreateMessage = Schema.decodeUnknownResult(CreateMessageBody)
const decodeEditMessage = Schema.decodeUnknownResult(EditMessageBody)
const decodeCreateDm = Schema.decodeUnknownResult(CreateDmBody)

const rawToString = (data: RawData): string =>
  Array.isArray(data)
    ? Buffer.concat(data).toString("utf8")
    : Buffer.isBuffer(data)
    ? data.toString("utf8")
    : Buffer.from(new Uint8Array(data)).toString("utf8")

const parseJson = (text: string): Result.Result<unknown, string> => {
  try {
    const value: unknown = JSON.parse(text)
    return Result.succeed(value)
  } catch (error) {
    return Result.fail(error instanceof Error ? error.message : String(error))
  }
}

const isFakeUser = (u: FakeUser | FakeUserInput): u is FakeUser =>
  typeof u.id === "string" && typeof u.bot === "boolean" && u.globalName !== undefined

const errorReply = (status: number, body: ApiErrorBody): RestReply => ({ status, json: body })
const unknownEntity = (what: "channel" | "message" | "user" | "guild" | "member" | "emoji"): RestReply => {
  const codes = {
    channel: ApiError.UnknownChannel,
    message: ApiError.UnknownMessage,
    user: ApiError.UnknownUser,
    guild: ApiError.UnknownGuild,
    member: ApiError.UnknownMember,
    emoji: ApiError.UnknownEmoji
  }
  return errorReply(404, { message: `Unknown ${what[0]?.toUpperCase()}${what.slice(1)}`, code: codes[what] })
}

/** Bucket route as discord.js computes it: ids to :id, reaction emoji collapsed. */
const bucketRoute = (path: string): string =>
  path.replaceAll(/\d{16,20}/g, ":id").replace(/\/reactions\/(.*)/, "/reactions/:reaction")

const majorParameter = (path: string): string => /^\/(?:channels|guilds|webhooks)\/(\d+)/.exec(path)?.[1] ?? "global"

const matches = (matcher: RouteMatcher, method: string, path: string): boolean => {
  if (typeof matcher === "function") return matcher({ method, path })
  if (matcher.method !== undefined && matcher.method.toUpperCase() !== method) return false
  return typeof matcher.path === "string" ? matcher.path === path : matcher.path.test(path)
}

const defaultToken = (botId: string): string =>
  `${Buffer.from(botId).toString("base64url")}.${randomBytes(4).toString("base64url")}.${randomBytes(20).toString("base64url")}`

// ---------------------------------------------------------------------------

export const startFakeDiscord = async (options: FakeDiscordOptions = {}): Promise<FakeDiscordHandle> => {
  const snowflake = makeSnowflakes()
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? 41_250
  const privileged = {
    messageContent: options.privilegedIntents?.messageContent ?? true,
    guildMembers: options.privilegedIntents?.guildMembers ?? true,
    guildPresences: options.privilegedIntents?.guildPresences ?? true
  }
  const recommendedShards = options.shards ?? 1
  const sessionStartTotal = options.sessionStartLimit?.total ?? 1000
  const rateLimit = options.rateLimit ?? { limit: 50, windowMs: 1000 }
  const nonceWindowMs = options.nonceWindowMs ?? 5 * 60_000
  const maxUploadBytes = options.maxUploadBytes ?? 10 * 1024 * 1024
  const guildCreateDelayMs = options.guildCreateDelayMs ?? 10
  const resumeBufferSize = options.resumeBufferSize ?? 10_000
  const interactionCallbackWindowMs = options.interactionCallbackWindowMs ?? 3000
  const interactionTokenTtlMs = options.interactionTokenTtlMs ?? 15 * 60_000

  const botUser: FakeUser = {
    id: options.botUser?.id ?? snowflake(),
    username: options.botUser?.username ?? "beamclaw-test-bot",
    globalName: options.botUser?.globalName ?? null,
    bot: true
  }
  const applicationId = options.applicationId ?? botUser.id
  let token = options.token ?? defaultToken(botUser.id)

  const users = new Map<string, FakeUser>([[botUser.id, botUser]])
  const guilds = new Map<string, GuildState>()
  const channels = new Map<string, ChannelState>()
  const dmByUser = new Map<string, string>()
  const messages = new Map<string, MessageState>()
  const files = new Map<string, { data: Uint8Array; contentType: string }>()
  const sessions = new Map<string, Session>()
  const conns = new Set<Conn>()
  const nonces = new Map<string, { messageId: string; at: number }>()
  const buckets = new Map<string, { count: number; resetAt: number }>()
  const injections: Array<Injection> = []
  const timers = new Set<NodeJS.Timeout>()

  const sentMessages: Array<SentMessageRecord> = []
  const edits: Array<EditRecord> = []
  const deletions: Array<DeletionRecord> = []
  const typingCalls: Array<TypingRecord> = []
  const reactions: Array<ReactionRecord> = []
  const requests: Array<RestRequestRecord> = []
  const unknownRoutes: Array<{ method: string; path: string }> = []
  const connections: Array<ConnectionRecord> = []
  const identifies: Array<IdentifyRecord> = []
  const resumes: Array<ResumeRecord> = []
  const protocolErrors: Array<string> = []
  const interactionResponses: Array<InteractionResponseRecord> = []
  const appCommands = new Map<string, FakeApplicationCommand & { readonly body: ApplicationCommandBody }>()
  const interactions = new Map<string, InteractionState>()
  let heartbeatCount = 0
  let nonceHits = 0
  let heartbeatAcks = true
  let connectionIds = 0
  let closed = false

  let baseUrl = ""
  let gatewayUrl = ""
  let resumeGatewayUrl = ""

  const later = (ms: number, f: () => void): void => {
    const timer = setTimeout(() => {
      timers.delete(timer)
      f()
    }, ms)
    timers.add(timer)
  }

  // -------------------------------------------------------------------------
  // World

  const addUser = (input: FakeUserInput | FakeUser): FakeUser => {
    const id = input.id ?? snowflake()
    const existing = users.get(id)
    if (existing !== undefined) return existing
    const user: FakeUser = isFakeUser(input)
      ? input
      : { id, username: input.username, globalName: input.globalName ?? null, bot: input.bot ?? false }
    users.set(id, user)
    return user
  }

  const resolveUser = (u: FakeUser | FakeUserInput | string): FakeUser => {
    if (typeof u !== "string") return addUser(u)
    const found = users.get(u)
    if (found === undefined) throw new Error(`FakeDiscord: unknown user ${u}; addUser it first`)
    return found
  }

  const channelView = (c: ChannelState): FakeChannel => ({
    id: c.id,
    kind: c.kind,
    type: CHANNEL_TYPE[c.kind],
    name: c.name,
    guildId: c.guildId,
    parentId: c.parentId,
    topic: c.topic,
    readOnly: c.readOnly,
    recipient: c.recipient
  })

  const guildView = (g: GuildState): FakeGuild => ({
    id: g.id,
    name: g.name,
    ownerId: g.ownerId,
    channels: g.channelIds.flatMap((id) => {
      const c = channels.get(id)
      return c === undefined ? [] : [channelView(c)]
    }),
    roles: [...g.roles],
    botRoleId: g.botRoleId,
    members: [...g.members.values()]
  })

  const nowIso = (): string => new Date().toISOString()

  const createChannel = (guild: GuildState, input: FakeChannelInput): ChannelState => {
    const kind = input.kind ?? "text"
    if (isThreadKind(kind) && input.parentId === undefined) {
      throw new Error(`FakeDiscord: thread ${input.name} needs a parentId`)
    }
    const channel: ChannelState = {
      id: input.id ?? snowflake(),
      kind,
      name: input.name,
      guildId: guild.id,
      parentId: input.parentId ?? null,
      topic: input.topic ?? null,
      readOnly: input.readOnly ?? false,
      recipient: null,
      lastMessageId: null,
      ownerId: isThreadKind(kind) ? guild.ownerId : null
    }
    channels.set(channel.id, channel)
    guild.channelIds.push(channel.id)
    return channel
  }

  const addMember = (guild: GuildState, input: FakeMemberInput): FakeMember => {
    const user = addUser(input.user)
    const member: FakeMember = { user, roles: [...(input.roles ?? [])], nick: input.nick ?? null, joinedAt: nowIso() }
    guild.members.set(user.id, member)
    return member
  }

  const addGuild = (input: FakeGuildInput): FakeGuild => {
    const id = input.id ?? snowflake()
    if (guilds.has(id)) throw new Error(`FakeDiscord: guild ${id} exists`)
    const botRoleId = snowflake()
    const owner = input.ownerId ?? snowflake()
    const guild: GuildState = {
      id,
      name: input.name,
      ownerId: owner,
      roles: [
        { id, name: "@everyone", permissions: DEFAULT_EVERYONE_PERMISSIONS.toString(), position: 0, mentionable: false, botId: null },
        { id: botRoleId, name: botUser.username, permissions: DEFAULT_EVERYONE_PERMISSIONS.toString(), position: 1, mentionable: false, botId: botUser.id }
      ],
      botRoleId,
      members: new Map(),
      channelIds: [],
      joinedAt: nowIso()
    }
    ;(input.roles ?? []).forEach((role, index) => {
      guild.roles.push({
        id: role.id ?? snowflake(),
        name: role.name,
        permissions: (role.permissions ?? 0n).toString(),
        position: index + 2,
        mentionable: role.mentionable ?? true,
        botId: null
      })
    })
    guilds.set(id, guild)
    guild.members.set(botUser.id, { user: botUser, roles: [botRoleId], nick: null, joinedAt: guild.joinedAt })
    for (const member of input.members ?? []) addMember(guild, member)
    // Parents before threads, whatever order the test wrote them in.
    const specs = input.channels ?? []
    for (const spec of specs.filter((c) => !isThreadKind(c.kind ?? "text"))) createChannel(guild, spec)
    for (const spec of specs.filter((c) => isThreadKind(c.kind ?? "text"))) createChannel(guild, spec)
    dispatchTo("GUILD_CREATE", () => apiGuildCreate(guild), { intents: Intent.Guilds, guildId: id })
    return guildView(guild)
  }

  const addChannel = (guildId: string, input: FakeChannelInput): FakeChannel => {
    const guild = guilds.get(guildId)
    if (guild === undefined) throw new Error(`FakeDiscord: unknown guild ${guildId}`)
    const channel = createChannel(guild, input)
    const event = isThreadKind(channel.kind) ? "THREAD_CREATE" : "CHANNEL_CREATE"
    dispatchTo(event, () => ({ ...apiChannel(channel), ...(isThreadKind(channel.kind) ? { newly_created: true } : {}) }), {
      intents: Intent.Guilds,
      guildId
    })
    return channelView(channel)
  }

  const dmChannelFor = (user: FakeUser): ChannelState => {
    const existing = dmByUser.get(user.id)
    const found = existing === undefined ? undefined : channels.get(existing)
    if (found !== undefined) return found
    const channel: ChannelState = {
      id: snowflake(),
      kind: "dm",
      name: null,
      guildId: null,
      parentId: null,
      topic: null,
      readOnly: false,
      recipient: user,
      lastMessageId: null,
      ownerId: null
    }
    channels.set(channel.id, channel)
    dmByUser.set(user.id, channel.id)
    return channel
  }

  const addDmUser = (input: FakeUserInput | FakeUser): { user: FakeUser; channelId: string } => {
    const user = addUser(input)
    return { user, channelId: dmChannelFor(user).id }
  }

  // -------------------------------------------------------------------------
  // API payload shapes

  const apiUser = (u: FakeUser) => ({
    id: u.id,
    username: u.username,
    discriminator: "0",
    global_name: u.globalName,
    avatar: null,
    public_flags: 0,
    flags: 0,
    ...(u.bot ? { bot: true } : {})
  })

  const apiMemberNoUser = (m: FakeMember) => ({
    roles: [...m.roles],
    nick: m.nick,
    avatar: null,
    banner: null,
    joined_at: m.joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0,
    pending: false,
    communication_disabled_until: null
  })

  const apiMember = (m: FakeMember) => ({ ...apiMemberNoUser(m), user: apiUser(m.user) })

  const apiRole = (r: FakeRole) => ({
    id: r.id,
    name: r.name,
    color: 0,
    colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
    hoist: false,
    icon: null,
    unicode_emoji: null,
    position: r.position,
    permissions: r.permissions,
    managed: r.botId !== null,
    mentionable: r.mentionable,
    flags: 0,
    ...(r.botId !== null ? { tags: { bot_id: r.botId } } : {})
  })

  const apiChannel = (c: ChannelState): Record<string, unknown> => {
    const type = CHANNEL_TYPE[c.kind]
    if (c.kind === "dm") {
      return {
        id: c.id,
        type,
        last_message_id: c.lastMessageId,
        flags: 0,
        recipients: c.recipient === null ? [] : [apiUser(c.recipient)]
      }
    }
    const base = {
      id: c.id,
      type,
      guild_id: c.guildId,
      name: c.name,
      parent_id: c.parentId,
      last_message_id: c.lastMessageId,
      rate_limit_per_user: 0,
      flags: 0,
      nsfw: false
    }
    if (isThreadKind(c.kind)) {
      return {
        ...base,
        owner_id: c.ownerId,
        member_count: 1,
        message_count: 0,
        total_message_sent: 0,
        thread_metadata: {
          archived: false,
          auto_archive_duration: 1440,
          archive_timestamp: nowIso(),
          locked: false,
          ...(c.kind === "private-thread" ? { invitable: true } : {})
        }
      }
    }
    return {
      ...base,
      position: c.guildId === null ? 0 : (guilds.get(c.guildId)?.channelIds.indexOf(c.id) ?? 0),
      topic: c.topic,
      permission_overwrites: c.readOnly && c.guildId !== null
        ? [{ id: c.guildId, type: 0, allow: "0", deny: Permission.SendMessages.toString() }]
        : []
    }
  }

  const apiGuildCreate = (g: GuildState) => {
    const all = g.channelIds.flatMap((id) => {
      const c = channels.get(id)
      return c === undefined ? [] : [c]
    })
    return {
      id: g.id,
      name: g.name,
      icon: null,
      splash: null,
      discovery_splash: null,
      banner: null,
      description: null,
      owner_id: g.ownerId,
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      nsfw_level: 0,
      premium_tier: 0,
      premium_subscription_count: 0,
      premium_progress_bar_enabled: false,
      preferred_locale: "en-US",
      system_channel_id: null,
      system_channel_flags: 0,
      rules_channel_id: null,
      public_updates_channel_id: null,
      safety_alerts_channel_id: null,
      vanity_url_code: null,
      application_id: null,
      max_members: 500000,
      max_video_channel_users: 25,
      features: [],
      roles: g.roles.map(apiRole),
      emojis: [],
      stickers: [],
      joined_at: g.joinedAt,
      large: false,
      unavailable: false,
      member_count: g.members.size,
      members: [...g.members.values()].map(apiMember),
      channels: all.filter((c) => !isThreadKind(c.kind)).map(apiChannel),
      threads: all.filter((c) => isThreadKind(c.kind)).map(apiChannel),
      presences: [],
      voice_states: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
      lazy: true
    }
  }

  const apiAttachment = (a: FakeAttachment) => ({
    id: a.id,
    filename: a.filename,
    size: a.size,
    url: a.url,
    proxy_url: a.url,
    ...(a.contentType !== undefined ? { content_type: a.contentType } : {}),
    ...(a.description !== undefined ? { description: a.description } : {})
  })

  const apiMessage = (m: MessageState, gateway: boolean, depth = 0): Record<string, unknown> => {
    const channel = channels.get(m.channelId)
    const guild = m.guildId === null ? undefined : guilds.get(m.guildId)
    const member = guild?.members.get(m.author.id)
    const referenced = m.reference === null ? undefined : messages.get(m.reference.messageId)
    return {
      id: m.id,
      type: m.type,
      channel_id: m.channelId,
      author: apiUser(m.author),
      content: m.content,
      timestamp: m.timestamp,
      edited_timestamp: m.editedTimestamp,
      tts: false,
      mention_everyone: m.mentionEveryone,
      mentions: m.mentions.map((u) => {
        const mentioned = guild?.members.get(u.id)
        return { ...apiUser(u), ...(gateway && mentioned !== undefined ? { member: apiMemberNoUser(mentioned) } : {}) }
      }),
      mention_roles: [...m.mentionRoles],
      attachments: m.attachments.map(apiAttachment),
      embeds: [...m.embeds],
      components: [],
      pinned: false,
      flags: 0,
      ...(m.nonce !== null ? { nonce: m.nonce } : {}),
      ...(m.reference !== null
        ? {
          message_reference: {
            type: 0,
            message_id: m.reference.messageId,
            channel_id: m.reference.channelId,
            ...(m.reference.guildId !== null ? { guild_id: m.reference.guildId } : {})
          },
          ...(depth === 0
            ? { referenced_message: referenced === undefined || referenced.deleted ? null : apiMessage(referenced, false, 1) }
            : {})
        }
        : {}),
      ...(gateway
        ? {
          ...(m.guildId !== null ? { guild_id: m.guildId } : {}),
          ...(member !== undefined ? { member: apiMemberNoUser(member) } : {}),
          ...(channel !== undefined ? { channel_type: CHANNEL_TYPE[channel.kind] } : {})
        }
        : {})
    }
  }

  /** What a session without MESSAGE_CONTENT sees (Discord blanks these fields). */
  const withoutContent = (payload: Record<string, unknown>): Record<string, unknown> => ({
    ...payload,
    content: "",
    embeds: [],
    attachments: [],
    components: []
  })

  const seesContent = (session: Session, m: MessageState): boolean =>
    (session.intents & Intent.MessageContent) !== 0 ||
    m.guildId === null ||
    m.author.id === botUser.id ||
    m.mentions.some((u) => u.id === botUser.id)

  const messageIntent = (m: MessageState): number => m.guildId === null ? Intent.DirectMessages : Intent.GuildMessages

  // -------------------------------------------------------------------------
  // Gateway

  const send = (conn: Conn, frame: Frame): void => {
    if (conn.closed || conn.ws.readyState !== WebSocket.OPEN) return
    conn.ws.send(JSON.stringify(frame))
  }

  const closeConn = (conn: Conn, code: number, reason: string): void => {
    if (conn.closed) return
    conn.record.closedBy ??= "server"
    conn.record.closeCode ??= code
    detach(conn, SESSION_ENDING_CLOSE_CODES.has(code))
    conn.ws.close(code, reason)
  }

  const detach = (conn: Conn, endSession: boolean): void => {
    const session = conn.session
    if (session === undefined) return
    if (session.conn === conn) session.conn = undefined
    if (endSession) session.invalid = true
  }

  const sendDispatch = (session: Session, t: string, d: unknown): void => {
    session.seq += 1
    const frame: Frame = { op: GatewayOp.Dispatch, t, s: session.seq, d }
    session.buffer.push(frame)
    if (session.buffer.length > resumeBufferSize) session.buffer.shift()
    if (session.conn !== undefined) send(session.conn, frame)
  }

  /**
   * Fan a dispatch out to every live session that has the intent and the
   * guild's shard; `build` may tailor (or withhold, by returning undefined)
   * the payload per session.
   */
  const dispatchTo = (
    t: string,
    build: (session: Session) => unknown,
    filter: { readonly intents?: number; readonly guildId?: string | null } = {}
  ): void => {
    for (const session of sessions.values()) {
      if (session.invalid) continue
      if (filter.intents !== undefined && (session.intents & filter.intents) === 0) continue
      if (
        filter.guildId !== undefined && filter.guildId !== null &&
        snowflakeShard(filter.guildId, session.shard[1]) !== session.shard[0]
      ) continue
      const d = build(session)
      if (d !== undefined) sendDispatch(session, t, d)
    }
  }

  const onIdentify = (conn: Conn, data: unknown): void => {
    if (conn.session !== undefined) return closeConn(conn, CloseCode.AlreadyAuthenticated, "Already authenticated.")
    const decoded = decodeIdentify(data)
    if (Result.isFailure(decoded)) {
      protocolErrors.push(`IDENTIFY did not decode: ${String(decoded.failure)}`)
      return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
    }
    const d = decoded.success
    const shard: readonly [number, number] = d.shard ?? [0, 1]
    const record = (outcome: "ready" | number): void => {
      identifies.push({
        connectionId: conn.record.id,
        token: d.token,
        intents: d.intents,
        shard,
        properties: d.properties,
        compress: d.compress ?? false,
        largeThreshold: d.large_threshold,
        presence: d.presence,
        outcome
      })
    }
    const refuse = (code: number, reason: string): void => {
      record(code)
      closeConn(conn, code, reason)
    }
    if (d.token !== token) return refuse(CloseCode.AuthenticationFailed, "Authentication failed.")
    if (!Number.isInteger(shard[0]) || !Number.isInteger(shard[1]) || shard[1] < 1 || shard[0] < 0 || shard[0] >= shard[1]) {
      return refuse(CloseCode.InvalidShard, "Invalid shard.")
    }
    if (!Number.isInteger(d.intents) || d.intents < 0 || (d.intents & ~ALL_INTENTS) !== 0) {
      return refuse(CloseCode.InvalidIntents, "Invalid intent(s).")
    }
    const disallowed = ((d.intents & Intent.MessageContent) !== 0 && !privileged.messageContent) ||
      ((d.intents & Intent.GuildMembers) !== 0 && !privileged.guildMembers) ||
      ((d.intents & Intent.GuildPresences) !== 0 && !privileged.guildPresences)
    if (disallowed) return refuse(CloseCode.DisallowedIntents, "Disallowed intent(s).")
    if (d.compress === true) {
      protocolErrors.push("IDENTIFY asked for compress: true; the fake answers uncompressed JSON")
    }
    record("ready")
    const session: Session = { id: randomBytes(16).toString("hex"), intents: d.intents, shard, seq: 0, buffer: [], conn, invalid: false }
    sessions.set(session.id, session)
    conn.session = session
    conn.record.sessionId = session.id
    const onShard = [...guilds.values()].filter((g) => snowflakeShard(g.id, shard[1]) === shard[0])
    sendDispatch(session, "READY", {
      v: 10,
      user: { ...apiUser(botUser), verified: true, mfa_enabled: false, email: null, bot: true },
      user_settings: {},
      session_type: "normal",
      session_id: session.id,
      resume_gateway_url: resumeGatewayUrl,
      guilds: onShard.map((g) => ({ id: g.id, unavailable: true })),
      private_channels: [],
      presences: [],
      relationships: [],
      guild_join_requests: [],
      geo_ordered_rtc_regions: ["fake"],
      shard: [...shard],
      application: { id: applicationId, flags: 0 },
      _trace: ["[\"fake-discord\",{\"micros\":0}]"]
    })
    if ((d.intents & Intent.Guilds) !== 0 && onShard.length > 0) {
      const guildCreates = (): void => {
        if (session.invalid) return
        for (const g of onShard) if (guilds.has(g.id)) sendDispatch(session, "GUILD_CREATE", apiGuildCreate(g))
      }
      if (guildCreateDelayMs <= 0) guildCreates()
      else later(guildCreateDelayMs, guildCreates)
    }
  }

  const onResume = (conn: Conn, data: unknown): void => {
    if (conn.session !== undefined && conn.session.conn === conn) {
      return closeConn(conn, CloseCode.AlreadyAuthenticated, "Already authenticated.")
    }
    const decoded = decodeResume(data)
    if (Result.isFailure(decoded)) {
      protocolErrors.push(`RESUME did not decode: ${String(decoded.failure)}`)
      return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
    }
    const d = decoded.success
    const record = (outcome: ResumeRecord["outcome"], replayed = 0): void => {
      resumes.push({ connectionId: conn.record.id, sessionId: d.session_id, seq: d.seq, outcome, replayed })
    }
    if (d.token !== token) {
      record(CloseCode.AuthenticationFailed)
      return closeConn(conn, CloseCode.AuthenticationFailed, "Authentication failed.")
    }
    const session = sessions.get(d.session_id)
    const oldest = session?.buffer[0]?.s ?? (session === undefined ? 0 : session.seq + 1)
    if (session === undefined || session.invalid || d.seq > session.seq || d.seq < oldest - 1) {
      if (session !== undefined) session.invalid = true
      record("invalid-session")
      send(conn, { op: GatewayOp.InvalidSession, d: false, s: null, t: null })
      return
    }
    if (session.conn !== undefined && session.conn !== conn) session.conn.session = undefined
    session.conn = conn
    conn.session = session
    conn.record.sessionId = session.id
    const missed = session.buffer.filter((frame) => frame.s !== null && frame.s > d.seq)
    for (const frame of missed) send(conn, frame)
    record("resumed", missed.length)
    sendDispatch(session, "RESUMED", { _trace: ["[\"fake-discord\",{\"micros\":0}]"] })
  }

  const onRequestGuildMembers = (conn: Conn, data: unknown): void => {
    const decoded = decodeRequestMembers(data)
    if (Result.isFailure(decoded)) return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
    const d = decoded.success
    const guild = guilds.get(d.guild_id)
    const session = conn.session
    if (guild === undefined || session === undefined) return
    const ids = d.user_ids === undefined ? undefined : typeof d.user_ids === "string" ? [d.user_ids] : d.user_ids
    const all = [...guild.members.values()]
    const found = ids !== undefined
      ? all.filter((m) => ids.includes(m.user.id))
      : all.filter((m) => m.user.username.toLowerCase().startsWith((d.query ?? "").toLowerCase()))
    const limited = d.limit !== undefined && d.limit > 0 ? found.slice(0, d.limit) : found
    sendDispatch(session, "GUILD_MEMBERS_CHUNK", {
      guild_id: guild.id,
      members: limited.map(apiMember),
      chunk_index: 0,
      chunk_count: 1,
      ...(ids !== undefined ? { not_found: ids.filter((id) => !guild.members.has(id)) } : {}),
      ...(d.nonce !== undefined ? { nonce: d.nonce } : {})
    })
  }

  const onFrame = (conn: Conn, text: string): void => {
    const parsed = parseJson(text)
    if (Result.isFailure(parsed)) {
      protocolErrors.push(`gateway frame is not JSON: ${parsed.failure}`)
      return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
    }
    const decoded = decodeFrame(parsed.success)
    if (Result.isFailure(decoded)) {
      protocolErrors.push(`gateway frame has no numeric op: ${text.slice(0, 200)}`)
      return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
    }
    const { op, d } = decoded.success
    const authenticated = conn.session !== undefined
    switch (op) {
      case GatewayOp.Heartbeat: {
        if (Result.isFailure(decodeHeartbeat(d ?? null))) {
          return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
        }
        heartbeatCount += 1
        if (heartbeatAcks) send(conn, { op: GatewayOp.HeartbeatAck, d: null, s: null, t: null })
        return
      }
      case GatewayOp.Identify:
        return onIdentify(conn, d)
      case GatewayOp.Resume:
        return onResume(conn, d)
      case GatewayOp.PresenceUpdate:
      case GatewayOp.VoiceStateUpdate:
      case GatewayOp.RequestSoundboardSounds:
        if (!authenticated) return closeConn(conn, CloseCode.NotAuthenticated, "Not authenticated.")
        return
      case GatewayOp.RequestGuildMembers:
        if (!authenticated) return closeConn(conn, CloseCode.NotAuthenticated, "Not authenticated.")
        return onRequestGuildMembers(conn, d)
      default:
        protocolErrors.push(`unknown gateway opcode ${op}`)
        return closeConn(conn, CloseCode.UnknownOpcode, "Unknown opcode.")
    }
  }

  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const refuse = (status: string, why: string): void => {
      protocolErrors.push(`gateway upgrade refused (${why}): ${req.url ?? ""}`)
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
    }
    if (url.pathname !== "/gateway" && url.pathname !== "/gateway-resume") return refuse("404 Not Found", "unknown path")
    const encoding = url.searchParams.get("encoding") ?? "json"
    if (encoding !== "json") return refuse("400 Bad Request", `encoding ${encoding} unsupported by the fake`)
    if (url.searchParams.has("compress")) {
      return refuse("400 Bad Request", `compress=${url.searchParams.get("compress") ?? ""} unsupported by the fake`)
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, url))
  }

  const onConnection = (ws: WebSocket, url: URL): void => {
    connectionIds += 1
    const record: ConnectionRecord = {
      id: connectionIds,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      openedAt: Date.now(),
      closedAt: undefined,
      closeCode: undefined,
      closedBy: undefined,
      sessionId: undefined
    }
    connections.push(record)
    let resolveClosed: () => void = () => {}
    const closedPromise = new Promise<void>((resolve) => {
      resolveClosed = resolve
    })
    const conn: Conn = { ws, record, session: undefined, closed: false, closedPromise }
    conns.add(conn)
    ws.on("message", (data, isBinary) => {
      if (conn.closed) return
      if (isBinary) {
        protocolErrors.push("binary gateway frame (the fake speaks JSON text frames only)")
        return closeConn(conn, CloseCode.DecodeError, "Error while decoding payload.")
      }
      onFrame(conn, rawToString(data))
    })
    ws.on("close", (code) => {
      conn.closed = true
      conns.delete(conn)
      record.closedAt = Date.now()
      record.closeCode ??= code
      record.closedBy ??= "client"
      detach(conn, record.closedBy === "client" && (code === 1000 || code === 1001))
      resolveClosed()
    })
    ws.on("error", (error) => {
      protocolErrors.push(`gateway socket error: ${error.message}`)
    })
    send(conn, {
      op: GatewayOp.Hello,
      d: { heartbeat_interval: heartbeatIntervalMs, _trace: ["[\"fake-discord\",{\"micros\":0}]"] },
      s: null,
      t: null
    })
    if (url.searchParams.get("v") !== "10") closeConn(conn, CloseCode.InvalidApiVersion, "Invalid API version.")
  }

  // -------------------------------------------------------------------------
  // Messages

  const storeFile = (channelId: string, filename: string, data: Uint8Array, contentType: string | undefined, description: string | undefined): FakeAttachment => {
    const id = snowflake()
    const path = `/attachments/${channelId}/${id}/${encodeURIComponent(filename)}`
    files.set(path, { data, contentType: contentType ?? "application/octet-stream" })
    return { id, filename, size: data.byteLength, contentType, description, url: `${baseUrl}${path}`, data }
  }

  const messageView = (m: MessageState): FakeMessage => ({ ...m, mentions: [...m.mentions], mentionRoles: [...m.mentionRoles], attachments: [...m.attachments], embeds: [...m.embeds] })

  const dispatchMessageCreate = (m: MessageState): void => {
    dispatchTo("MESSAGE_CREATE", (session) => {
      const payload = apiMessage(m, true)
      return seesContent(session, m) ? payload : withoutContent(payload)
    }, { intents: messageIntent(m), guildId: m.guildId })
  }

  const dispatchMessage = (input: FakeInboundMessage): FakeMessage => {
    const channel = channels.get(input.channelId)
    if (channel === undefined) throw new Error(`FakeDiscord: unknown channel ${input.channelId}`)
    if (input.guildId !== undefined && input.guildId !== channel.guildId) {
      throw new Error(`FakeDiscord: channel ${channel.id} is in guild ${channel.guildId ?? "none (DM)"}, not ${input.guildId}`)
    }
    const author = resolveUser(input.author)
    const guild = channel.guildId === null ? undefined : guilds.get(channel.guildId)
    if (guild !== undefined && !guild.members.has(author.id)) addMember(guild, { user: author })
    if (channel.kind === "dm" && channel.recipient !== null && channel.recipient.id !== author.id && author.id !== botUser.id) {
      throw new Error(`FakeDiscord: ${author.id} is not a party of DM channel ${channel.id}`)
    }
    const id = input.id ?? snowflake()
    if (messages.has(id)) throw new Error(`FakeDiscord: message ${id} exists`)
    const mentions: Array<FakeUser> = input.mentions !== undefined
      ? input.mentions.map((u) => typeof u === "string" ? resolveUser(u) : addUser(u))
      : [...input.content.matchAll(/<@!?(\d+)>/g)].flatMap((match) => {
        const user = match[1] === undefined ? undefined : users.get(match[1])
        return user === undefined ? [] : [user]
      })
    const mentionRoles = input.mentionRoles !== undefined
      ? [...input.mentionRoles]
      : [...input.content.matchAll(/<@&(\d+)>/g)].flatMap((match) =>
        match[1] !== undefined && guild?.roles.some((r) => r.id === match[1]) === true ? [match[1]] : []
      )
    let reference: MessageState["reference"] = null
    if (input.messageReference !== undefined) {
      const target = messages.get(input.messageReference.messageId)
      reference = { messageId: input.messageReference.messageId, channelId: channel.id, guildId: channel.guildId }
      if (target !== undefined && (input.messageReference.ping ?? true) && !mentions.some((u) => u.id === target.author.id)) {
        mentions.push(target.author)
      }
    }
    const message: MessageState = {
      id,
      channelId: channel.id,
      guildId: channel.guildId,
      author,
      content: input.content,
      timestamp: nowIso(),
      editedTimestamp: null,
      mentions: mentions.filter((u, i) => mentions.findIndex((v) => v.id === u.id) === i),
      mentionRoles,
      mentionEveryone: input.mentionEveryone ?? /@(everyone|here)\b/.test(input.content),
      attachments: (input.attachments ?? []).map((a) =>
        storeFile(channel.id, a.filename, typeof a.data === "string" ? Buffer.from(a.data) : a.data, a.contentType, a.description)
      ),
      embeds: [...(input.embeds ?? [])],
      reference,
      nonce: input.nonce ?? null,
      type: reference === null ? 0 : 19,
      deleted: false
    }
    messages.set(id, message)
    channel.lastMessageId = id
    dispatchMessageCreate(message)
    return messageView(message)
  }

  // -------------------------------------------------------------------------
  // REST handlers

  const channelOr404 = (id: string | undefined): ChannelState | RestReply => {
    const channel = id === undefined ? undefined : channels.get(id)
    return channel ?? unknownEntity("channel")
  }

  const isReply = (x: ChannelState | MessageState | RestReply): x is RestReply => "status" in x

  const messageOr404 = (channel: ChannelState, id: string | undefined): MessageState | RestReply => {
    const m = id === undefined ? undefined : messages.get(id)
    return m === undefined || m.deleted || m.channelId !== channel.id ? unknownEntity("message") : m
  }

  const jsonBodyOf = (body: ParsedBody): unknown =>
    body.kind === "json" ? body.value : body.kind === "multipart" ? body.payload : undefined

  const createMessage = (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    if (ctx.body.kind === "invalid") return errorReply(400, { message: ctx.body.reason, code: ApiError.InvalidJson })
    const decoded = decodeCreateMessage(jsonBodyOf(ctx.body) ?? {})
    if (Result.isFailure(decoded)) {
      return errorReply(400, { message: "Invalid Form Body", code: ApiError.InvalidFormBody, errors: { _errors: [{ code: "DICT_TYPE_CONVERT", message: String(decoded.failure) }] } })
    }
    const body = decoded.success
    if (!isTextKind(channel.kind)) return errorReply(400, { message: "Cannot send messages in a non-text channel", code: ApiError.NonTextChannel })
    if (channel.readOnly) return errorReply(403, { message: "Missing Permissions", code: ApiError.MissingPermissions })
    const content = body.content ?? ""
    if (content.length > MAX_CONTENT_LENGTH) {
      return errorReply(400, formError("content", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_CONTENT_LENGTH} or fewer in length.`))
    }
    const nonce = body.nonce ?? undefined
    if (typeof nonce === "string" && nonce.length > MAX_NONCE_LENGTH) {
      return errorReply(400, formError("nonce", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_NONCE_LENGTH} or fewer in length.`))
    }
    if (typeof nonce === "number" && !Number.isSafeInteger(nonce)) {
      return errorReply(400, formError("nonce", "NUMBER_TYPE_COERCE", "Value is not int."))
    }
    const enforceNonce = body.enforce_nonce === true
    if (enforceNonce && nonce !== undefined) {
      const seen = nonces.get(String(nonce))
      const original = seen === undefined ? undefined : messages.get(seen.messageId)
      if (seen !== undefined && Date.now() - seen.at <= nonceWindowMs && original !== undefined && !original.deleted) {
        nonceHits += 1
        return { status: 200, json: apiMessage(original, false), dedupedByNonce: true }
      }
    }
    const uploads = ctx.body.kind === "multipart" ? ctx.body.files : []
    const uploadBytes = uploads.reduce((n, f) => n + f.data.byteLength, 0)
    if (uploadBytes > maxUploadBytes) return errorReply(413, { message: "Request entity too large", code: ApiError.RequestEntityTooLarge })
    const hasContent = content.trim().length > 0
    if (!hasContent && uploads.length === 0 && (body.embeds ?? []).length === 0 && (body.sticker_ids ?? []).length === 0 && body.poll == null) {
      return errorReply(400, { message: "Cannot send an empty message", code: ApiError.EmptyMessage })
    }
    let reference: MessageState["reference"] = null
    const ref = body.message_reference ?? undefined
    if (ref?.message_id !== undefined) {
      const refChannel = ref.channel_id ?? channel.id
      const target = messages.get(ref.message_id)
      if (target === undefined || target.deleted || target.channelId !== refChannel) {
        if (ref.fail_if_not_exists !== false) {
          return errorReply(400, formError("message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"))
        }
      } else {
        reference = { messageId: target.id, channelId: target.channelId, guildId: target.guildId }
      }
    }
    // files[n] pairs with attachments[].id === n, as the API documents.
    const metadata = body.attachments ?? []
    const attachments = uploads.map((file) => {
      const index = /^files\[(\d+)\]$/.exec(file.field)?.[1]
      const meta = metadata.find((a) => String(a.id) === index)
      return storeFile(channel.id, meta?.filename ?? file.filename, file.data, file.contentType === "" ? undefined : file.contentType, meta?.description ?? undefined)
    })
    const mentions = [...content.matchAll(/<@!?(\d+)>/g)].flatMap((match) => {
      const user = match[1] === undefined ? undefined : users.get(match[1])
      return user === undefined ? [] : [user]
    })
    const message: MessageState = {
      id: snowflake(),
      channelId: channel.id,
      guildId: channel.guildId,
      author: botUser,
      content,
      timestamp: nowIso(),
      editedTimestamp: null,
      mentions,
      mentionRoles: [],
      mentionEveryone: false,
      attachments,
      embeds: [...(body.embeds ?? [])],
      reference,
      nonce: nonce ?? null,
      type: reference === null ? 0 : 19,
      deleted: false
    }
    messages.set(message.id, message)
    channel.lastMessageId = message.id
    if (enforceNonce && nonce !== undefined) nonces.set(String(nonce), { messageId: message.id, at: Date.now() })
    sentMessages.push({
      id: message.id,
      channelId: channel.id,
      guildId: channel.guildId,
      content,
      messageReference: ref === undefined
        ? undefined
        : { messageId: ref.message_id, channelId: ref.channel_id, failIfNotExists: ref.fail_if_not_exists },
      nonce,
      enforceNonce,
      attachments,
      embeds: message.embeds,
      multipart: ctx.body.kind === "multipart",
      body: jsonBodyOf(ctx.body),
      at: Date.now()
    })
    dispatchMessageCreate(message)
    return { status: 200, json: apiMessage(message, false) }
  }

  const editMessage = (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    const message = messageOr404(channel, ctx.params[1])
    if (isReply(message)) return message
    if (ctx.body.kind === "invalid") return errorReply(400, { message: ctx.body.reason, code: ApiError.InvalidJson })
    if (message.author.id !== botUser.id) {
      return errorReply(403, { message: "Cannot edit a message authored by another user", code: ApiError.CannotEditOtherUsersMessage })
    }
    const decoded = decodeEditMessage(jsonBodyOf(ctx.body) ?? {})
    if (Result.isFailure(decoded)) {
      return errorReply(400, { message: "Invalid Form Body", code: ApiError.InvalidFormBody, errors: { _errors: [{ code: "DICT_TYPE_CONVERT", message: String(decoded.failure) }] } })
    }
    const body = decoded.success
    if (body.content != null && body.content.length > MAX_CONTENT_LENGTH) {
      return errorReply(400, formError("content", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_CONTENT_LENGTH} or fewer in length.`))
    }
    if (body.content != null) message.content = body.content
    if (body.embeds != null) message.embeds = [...body.embeds]
    message.editedTimestamp = nowIso()
    edits.push({ messageId: message.id, channelId: channel.id, content: body.content ?? undefined, body: jsonBodyOf(ctx.body), at: Date.now() })
    dispatchTo("MESSAGE_UPDATE", (session) => {
      const payload = apiMessage(message, true)
      return seesContent(session, message) ? payload : withoutContent(payload)
    }, { intents: messageIntent(message), guildId: message.guildId })
    return { status: 200, json: apiMessage(message, false) }
  }

  const deleteMessage = (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    const message = messageOr404(channel, ctx.params[1])
    if (isReply(message)) return message
    if (message.author.id !== botUser.id && channel.kind === "dm") {
      return errorReply(403, { message: "Cannot execute action on a DM channel", code: ApiError.CannotExecuteOnDm })
    }
    message.deleted = true
    deletions.push({ messageId: message.id, channelId: channel.id, at: Date.now() })
    dispatchTo("MESSAGE_DELETE", () => ({
      id: message.id,
      channel_id: channel.id,
      ...(channel.guildId !== null ? { guild_id: channel.guildId } : {})
    }), { intents: messageIntent(message), guildId: message.guildId })
    return { status: 204 }
  }

  const typing = (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    if (!isTextKind(channel.kind)) return errorReply(400, { message: "Cannot send messages in a non-text channel", code: ApiError.NonTextChannel })
    if (channel.readOnly) return errorReply(403, { message: "Missing Permissions", code: ApiError.MissingPermissions })
    typingCalls.push({ channelId: channel.id, at: Date.now() })
    const member = channel.guildId === null ? undefined : guilds.get(channel.guildId)?.members.get(botUser.id)
    dispatchTo("TYPING_START", () => ({
      channel_id: channel.id,
      user_id: botUser.id,
      timestamp: Math.floor(Date.now() / 1000),
      ...(channel.guildId !== null ? { guild_id: channel.guildId } : {}),
      ...(member !== undefined ? { member: apiMember(member) } : {})
    }), { intents: channel.guildId === null ? Intent.DirectMessageTyping : Intent.GuildMessageTyping, guildId: channel.guildId })
    return { status: 204 }
  }

  const react = (op: "add" | "remove") => (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    const message = messageOr404(channel, ctx.params[1])
    if (isReply(message)) return message
    let emoji: string
    try {
      emoji = decodeURIComponent(ctx.params[2] ?? "")
    } catch {
      return unknownEntity("emoji")
    }
    if (emoji.length === 0 || (emoji.includes(":") && !/^a?:?[\w~-]+:\d+$/.test(emoji))) return unknownEntity("emoji")
    reactions.push({ channelId: channel.id, messageId: message.id, emoji, op, at: Date.now() })
    const custom = /^(?:a:)?([\w~-]+):(\d+)$/.exec(emoji)
    const member = channel.guildId === null ? undefined : guilds.get(channel.guildId)?.members.get(botUser.id)
    dispatchTo(op === "add" ? "MESSAGE_REACTION_ADD" : "MESSAGE_REACTION_REMOVE", () => ({
      user_id: botUser.id,
      channel_id: channel.id,
      message_id: message.id,
      emoji: custom === null ? { id: null, name: emoji } : { id: custom[2], name: custom[1] },
      burst: false,
      type: 0,
      ...(channel.guildId !== null ? { guild_id: channel.guildId } : {}),
      ...(op === "add" && member !== undefined ? { member: apiMember(member) } : {}),
      ...(op === "add" ? { message_author_id: message.author.id } : {})
    }), {
      intents: channel.guildId === null ? Intent.DirectMessageReactions : Intent.GuildMessageReactions,
      guildId: channel.guildId
    })
    return { status: 204 }
  }

  const listMessages = (ctx: RestContext): RestReply => {
    const channel = channelOr404(ctx.params[0])
    if (isReply(channel)) return channel
    const limit = Math.min(100, Math.max(1, Number(ctx.query.get("limit") ?? "50") || 50))
    const before = ctx.query.get("before")
    const after = ctx.query.get("after")
    const inChannel = [...messages.values()]
      .filter((m) => m.channelId === channel.id && !m.deleted)
      .filter((m) => before === null || BigInt(m.id) < BigInt(before))
      .filter((m) => after === null || BigInt(m.id) > BigInt(after))
      .sort((a, b) => (BigInt(b.id) > BigInt(a.id) ? 1 : -1))
    const page = after !== null ? inChannel.slice(-limit) : inChannel.slice(0, limit)
    return { status: 200, json: page.map((m) => apiMessage(m, false)) }
  }


  // -------------------------------------------------------------------------
  // Application commands and interactions

  const decodeCommand = Schema.decodeUnknownResult(ApplicationCommandBody)
  const decodeBulk = Schema.decodeUnknownResult(BulkCommandsBody)
  const decodeCallback = Schema.decodeUnknownResult(InteractionCallbackBody)
  const decodeWebhookMessage = Schema.decodeUnknownResult(WebhookMessageBody)

  const apiCommand = (c: FakeApplicationCommand & { readonly body: ApplicationCommandBody }) => ({
    id: c.id,
    application_id: applicationId,
    version: c.version,
    default_member_permissions: c.body.default_member_permissions ?? null,
    type: c.type,
    name: c.name,
    name_localizations: null,
    description: c.description,
    description_localizations: null,
    dm_permission: c.body.dm_permission ?? true,
    ...(c.body.contexts === undefined ? { contexts: null } : { contexts: c.body.contexts }),
    integration_types: c.body.integration_types ?? [0],
    nsfw: c.body.nsfw ?? false,
    ...(c.options.length === 0 ? {} : { options: c.options })
  })

  /** Why a command body is refused (Discord's field rules for chat-input commands), or undefined. */
  const commandProblem = (body: ApplicationCommandBody, path: string): ApiErrorBody | undefined => {
    const type = body.type ?? 1
    if (!COMMAND_NAME.test(body.name) || body.name !== body.name.toLowerCase()) return formError(`${path}name`, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
    if (type === 1) {
      const description = body.description ?? ""
      if (description.length < 1 || description.length > 100) return formError(`${path}description`, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
    }
    const options = body.options ?? []
    if (options.length > 25) return formError(`${path}options`, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    for (const [index, option] of options.entries()) {
      if (!COMMAND_NAME.test(option.name) || option.name !== option.name.toLowerCase()) return formError(`${path}options.${index}.name`, "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid")
      if (option.description.length < 1 || option.description.length > 100) return formError(`${path}options.${index}.description`, "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length.")
      if ((option.choices ?? []).length > 25) return formError(`${path}options.${index}.choices`, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.")
    }
    return undefined
  }

  const storeCommand = (body: ApplicationCommandBody, existing: { readonly id: string; readonly version: string } | undefined) => {
    const command = {
      id: existing?.id ?? snowflake(),
      name: body.name,
      description: body.description ?? "",
      type: body.type ?? 1,
      options: [...(body.options ?? [])],
      version: snowflake(),
      body
    }
    appCommands.set(command.id, command)
    return command
  }

  const appOr403 = (id: string | undefined): RestReply | undefined =>
    id === applicationId ? undefined : errorReply(403, { message: "You are not authorized to perform this action on this application", code: ApiError.NotAuthorizedForApplication })

  const listCommands = (ctx: RestContext): RestReply =>
    appOr403(ctx.params[0]) ?? { status: 200, json: [...appCommands.values()].map(apiCommand) }

  /** PUT: the whole set is replaced; a command keeps its id when its name (and type) stays. */
  const overwriteCommands = (ctx: RestContext): RestReply => {
    const refused = appOr403(ctx.params[0])
    if (refused !== undefined) return refused
    const decoded = decodeBulk(jsonBodyOf(ctx.body))
    if (Result.isFailure(decoded)) return errorReply(400, formError("_", "BASE_TYPE_REQUIRED", String(decoded.failure)))
    if (decoded.success.length > MAX_APPLICATION_COMMANDS) return errorReply(400, formError("_", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_APPLICATION_COMMANDS} or fewer in length.`))
    const names = new Set<string>()
    for (const [index, body] of decoded.success.entries()) {
      const problem = commandProblem(body, `${index}.`)
      if (problem !== undefined) return errorReply(400, problem)
      const key = `${body.type ?? 1}:${body.name}`
      if (names.has(key)) return errorReply(400, formError(`${index}.name`, "APPLICATION_COMMANDS_DUPLICATE_NAME", `Application command names must be unique`))
      names.add(key)
    }
    const before = [...appCommands.values()]
    appCommands.clear()
    const stored = decoded.success.map((body) => storeCommand(body, before.find((c) => c.name === body.name && c.type === (body.type ?? 1))))
    return { status: 200, json: stored.map(apiCommand) }
  }

  /** POST: creates, or overwrites the command of the same name (201 when new, 200 when it existed). */
  const createCommand = (ctx: RestContext): RestReply => {
    const refused = appOr403(ctx.params[0])
    if (refused !== undefined) return refused
    const decoded = decodeCommand(jsonBodyOf(ctx.body))
    if (Result.isFailure(decoded)) return errorReply(400, formError("name", "BASE_TYPE_REQUIRED", String(decoded.failure)))
    const problem = commandProblem(decoded.success, "")
    if (problem !== undefined) return errorReply(400, problem)
    const existing = [...appCommands.values()].find((c) => c.name === decoded.success.name && c.type === (decoded.success.type ?? 1))
    if (existing === undefined && appCommands.size >= MAX_APPLICATION_COMMANDS) {
      return errorReply(400, { message: "Maximum number of application commands reached (100)", code: 30032 })
    }
    return { status: existing === undefined ? 201 : 200, json: apiCommand(storeCommand(decoded.success, existing)) }
  }

  const deleteCommand = (ctx: RestContext): RestReply => {
    const refused = appOr403(ctx.params[0])
    if (refused !== undefined) return refused
    const id = ctx.params[1] ?? ""
    if (!appCommands.delete(id)) return errorReply(404, { message: "Unknown application command", code: ApiError.UnknownApplicationCommand })
    return { status: 204 }
  }

  const interactionView = (state: InteractionState): FakeInteraction => ({
    id: state.id,
    token: state.token,
    commandName: state.commandName,
    channelId: state.channelId,
    userId: state.user.id,
    createdAt: state.createdAt,
    acknowledged: state.acknowledged,
    flags: state.flags,
    originalContent: state.original?.content,
    followups: [...state.followups]
  })

  const dispatchInteraction = (input: FakeInteractionInput): FakeInteraction => {
    const command = [...appCommands.values()].find((c) => c.name === input.commandName && c.type === 1)
    if (command === undefined) throw new Error(`FakeDiscord: /${input.commandName} is not a registered command (Discord only sends registered ones)`)
    const channel = channels.get(input.channelId)
    if (channel === undefined) throw new Error(`FakeDiscord: unknown channel ${input.channelId}`)
    const guild = channel.guildId === null ? undefined : guilds.get(channel.guildId)
    const member = guild?.members.get(input.user.id)
    if (guild !== undefined && member === undefined) throw new Error(`FakeDiscord: ${input.user.id} is not a member of guild ${guild.id}`)
    const id = input.id ?? snowflake()
    const token = `aW50ZXJhY3Rpb246${Buffer.from(id).toString("base64url")}${randomBytes(48).toString("base64url")}`
    const options = Object.entries(input.options ?? {}).map(([name, value]) => ({ name, type: ApplicationCommandOptionType.String, value }))
    const permissions = DEFAULT_EVERYONE_PERMISSIONS.toString()
    const payload: Record<string, unknown> = {
      id,
      application_id: applicationId,
      type: InteractionType.ApplicationCommand,
      data: { id: command.id, name: command.name, type: 1, ...(options.length === 0 ? {} : { options }) },
      ...(guild === undefined
        ? { user: apiUser(input.user), context: 1, authorizing_integration_owners: { "1": input.user.id } }
        : {
          guild_id: guild.id,
          guild: { id: guild.id, locale: "en-US", features: [] },
          guild_locale: "en-US",
          member: member === undefined ? undefined : { ...apiMember(member), permissions },
          context: 0,
          authorizing_integration_owners: { "0": guild.id }
        }),
      channel: apiChannel(channel),
      channel_id: channel.id,
      token,
      version: 1,
      app_permissions: permissions,
      locale: "en-US",
      entitlements: [],
      attachment_size_limit: maxUploadBytes
    }
    const state: InteractionState = {
      id,
      token,
      commandName: command.name,
      channelId: channel.id,
      guildId: channel.guildId,
      user: input.user,
      createdAt: Date.now(),
      payload,
      acknowledged: false,
      flags: 0,
      original: undefined,
      followups: []
    }
    interactions.set(id, state)
    dispatchTo("INTERACTION_CREATE", () => payload, { guildId: channel.guildId })
    return interactionView(state)
  }

  /** An interaction response as a message object (what the webhook routes answer). */
  const interactionMessage = (state: InteractionState, id: string, content: string, flags: number, original: boolean) => ({
    id,
    type: original ? 20 : 0,
    channel_id: state.channelId,
    author: apiUser(botUser),
    content,
    timestamp: nowIso(),
    edited_timestamp: null,
    tts: false,
    mention_everyone: false,
    mentions: [],
    mention_roles: [],
    attachments: [],
    embeds: [],
    components: [],
    pinned: false,
    flags,
    application_id: applicationId,
    webhook_id: applicationId,
    interaction_metadata: { id: state.id, type: InteractionType.ApplicationCommand, user: apiUser(state.user), authorizing_integration_owners: {}, name: state.commandName }
  })

  const unknownInteraction = (): RestReply => errorReply(404, { message: "Unknown interaction", code: ApiError.UnknownInteraction })
  const unknownWebhook = (): RestReply => errorReply(404, { message: "Unknown Webhook", code: ApiError.UnknownWebhook })

  const interactionCallback = (ctx: RestContext): RestReply => {
    const state = interactions.get(ctx.params[0] ?? "")
    if (state === undefined || state.token !== ctx.params[1]) return unknownInteraction()
    if (state.acknowledged) return errorReply(400, { message: "Interaction has already been acknowledged.", code: ApiError.InteractionAlreadyAcknowledged })
    if (Date.now() - state.createdAt > interactionCallbackWindowMs) return unknownInteraction()
    const decoded = decodeCallback(jsonBodyOf(ctx.body))
    if (Result.isFailure(decoded)) return errorReply(400, formError("type", "BASE_TYPE_REQUIRED", String(decoded.failure)))
    const { type, data } = decoded.success
    if (type !== InteractionCallbackType.ChannelMessageWithSource && type !== InteractionCallbackType.DeferredChannelMessageWithSource) {
      return errorReply(400, formError("type", "INTERACTION_RESPONSE_TYPE_INVALID", "Interaction response type is not valid for this interaction"))
    }
    const flags = data?.flags ?? 0
    if ((flags & ~MessageFlag.Ephemeral) !== 0) return errorReply(400, formError("data.flags", "MESSAGE_FLAGS_INVALID", "Invalid flags"))
    const content = type === InteractionCallbackType.ChannelMessageWithSource ? data?.content ?? "" : undefined
    if (content !== undefined && content.length > MAX_CONTENT_LENGTH) {
      return errorReply(400, formError("data.content", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_CONTENT_LENGTH} or fewer in length.`))
    }
    state.acknowledged = true
    state.flags = flags
    state.original = { id: snowflake(), content, edited: false }
    interactionResponses.push({ interactionId: state.id, kind: "callback", callbackType: type, content, flags, messageId: state.original.id, at: Date.now() })
    if (ctx.query.get("with_response") !== "true") return { status: 204 }
    const loading = type === InteractionCallbackType.DeferredChannelMessageWithSource ? MessageFlag.Loading : 0
    return {
      status: 200,
      json: {
        interaction: { id: state.id, type: InteractionType.ApplicationCommand, activity_instance_id: null, response_message_id: state.original.id, response_message_loading: loading !== 0, response_message_ephemeral: (flags & MessageFlag.Ephemeral) !== 0 },
        resource: { type, message: interactionMessage(state, state.original.id, content ?? "", flags | loading, true) }
      }
    }
  }

  /** The interaction a webhook token belongs to, while the token is valid. */
  const interactionOfToken = (app: string | undefined, token: string | undefined): InteractionState | undefined => {
    if (app !== applicationId) return undefined
    const state = [...interactions.values()].find((i) => i.token === token)
    return state === undefined || Date.now() - state.createdAt > interactionTokenTtlMs ? undefined : state
  }

  const editOriginal = (ctx: RestContext): RestReply => {
    const state = interactionOfToken(ctx.params[0], ctx.params[1])
    if (state === undefined) return unknownWebhook()
    if (!state.acknowledged || state.original === undefined) return unknownEntity("message")
    if (ctx.body.kind === "invalid") return errorReply(400, { message: ctx.body.reason, code: ApiError.InvalidJson })
    const decoded = decodeWebhookMessage(jsonBodyOf(ctx.body) ?? {})
    if (Result.isFailure(decoded)) return errorReply(400, formError("content", "BASE_TYPE_REQUIRED", String(decoded.failure)))
    const content = decoded.success.content ?? state.original.content ?? ""
    if (content.length > MAX_CONTENT_LENGTH) return errorReply(400, formError("content", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_CONTENT_LENGTH} or fewer in length.`))
    state.original.content = content
    state.original.edited = true
    interactionResponses.push({ interactionId: state.id, kind: "edit-original", content, flags: state.flags, messageId: state.original.id, at: Date.now() })
    return { status: 200, json: interactionMessage(state, state.original.id, content, state.flags, true) }
  }

  const followup = (ctx: RestContext): RestReply => {
    const state = interactionOfToken(ctx.params[0], ctx.params[1])
    if (state === undefined || !state.acknowledged) return unknownWebhook()
    if (ctx.body.kind === "invalid") return errorReply(400, { message: ctx.body.reason, code: ApiError.InvalidJson })
    const decoded = decodeWebhookMessage(jsonBodyOf(ctx.body) ?? {})
    if (Result.isFailure(decoded)) return errorReply(400, formError("content", "BASE_TYPE_REQUIRED", String(decoded.failure)))
    const content = decoded.success.content ?? ""
    const flags = decoded.success.flags ?? 0
    if ((flags & ~MessageFlag.Ephemeral) !== 0) return errorReply(400, formError("flags", "MESSAGE_FLAGS_INVALID", "Invalid flags"))
    if (content.length > MAX_CONTENT_LENGTH) return errorReply(400, formError("content", "BASE_TYPE_MAX_LENGTH", `Must be ${MAX_CONTENT_LENGTH} or fewer in length.`))
    if (content.trim() === "" && ctx.body.kind !== "multipart") return errorReply(400, { message: "Cannot send an empty message", code: ApiError.EmptyMessage })
    const id = snowflake()
    state.followups.push({ id, content, flags })
    interactionResponses.push({ interactionId: state.id, kind: "followup", content, flags, messageId: id, at: Date.now() })
    return ctx.query.get("wait") === "true" ? { status: 200, json: interactionMessage(state, id, content, flags, false) } : { status: 204 }
  }

  const routes: ReadonlyArray<Route> = [
    {
      method: "GET",
      pattern: /^\/gateway$/,
      auth: false,
      handle: () => ({ status: 200, json: { url: gatewayUrl } })
    },
    {
      method: "GET",
      pattern: /^\/gateway\/bot$/,
      auth: true,
      handle: () => ({
        status: 200,
        json: {
          url: gatewayUrl,
          shards: recommendedShards,
          session_start_limit: {
            total: sessionStartTotal,
            remaining: Math.max(0, sessionStartTotal - identifies.filter((i) => i.outcome === "ready").length),
            reset_after: options.sessionStartLimit?.resetAfterMs ?? 86_400_000,
            max_concurrency: options.sessionStartLimit?.maxConcurrency ?? 1
          }
        }
      })
    },
    {
      method: "GET",
      pattern: /^\/users\/@me$/,
      auth: true,
      handle: () => ({ status: 200, json: { ...apiUser(botUser), verified: true, mfa_enabled: false, email: null, bot: true } })
    },
    {
      method: "GET",
      pattern: /^\/users\/(\d+)$/,
      auth: true,
      handle: (ctx) => {
        const user = ctx.params[0] === undefined ? undefined : users.get(ctx.params[0])
        return user === undefined ? unknownEntity("user") : { status: 200, json: apiUser(user) }
      }
    },
    {
      method: "POST",
      pattern: /^\/users\/@me\/channels$/,
      auth: true,
      handle: (ctx) => {
        const decoded = decodeCreateDm(jsonBodyOf(ctx.body) ?? {})
        if (Result.isFailure(decoded)) return errorReply(400, formError("recipient_id", "BASE_TYPE_REQUIRED", "This field is required"))
        const user = users.get(decoded.success.recipient_id)
        if (user === undefined || user.id === botUser.id) return unknownEntity("user")
        return { status: 200, json: apiChannel(dmChannelFor(user)) }
      }
    },
    {
      method: "GET",
      pattern: /^\/channels\/(\d+)$/,
      auth: true,
      handle: (ctx) => {
        const channel = channelOr404(ctx.params[0])
        return isReply(channel) ? channel : { status: 200, json: apiChannel(channel) }
      }
    },
    { method: "GET", pattern: /^\/channels\/(\d+)\/messages$/, auth: true, handle: listMessages },
    {
      method: "GET",
      pattern: /^\/channels\/(\d+)\/messages\/(\d+)$/,
      auth: true,
      handle: (ctx) => {
        const channel = channelOr404(ctx.params[0])
        if (isReply(channel)) return channel
        const message = messageOr404(channel, ctx.params[1])
        return isReply(message) ? message : { status: 200, json: apiMessage(message, false) }
      }
    },
    { method: "POST", pattern: /^\/channels\/(\d+)\/messages$/, auth: true, handle: createMessage },
    { method: "PATCH", pattern: /^\/channels\/(\d+)\/messages\/(\d+)$/, auth: true, handle: editMessage },
    { method: "DELETE", pattern: /^\/channels\/(\d+)\/messages\/(\d+)$/, auth: true, handle: deleteMessage },
    { method: "POST", pattern: /^\/channels\/(\d+)\/typing$/, auth: true, handle: typing },
    { method: "PUT", pattern: /^\/channels\/(\d+)\/messages\/(\d+)\/reactions\/([^/]+)\/@me$/, auth: true, handle: react("add") },
    { method: "DELETE", pattern: /^\/channels\/(\d+)\/messages\/(\d+)\/reactions\/([^/]+)\/@me$/, auth: true, handle: react("remove") },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)$/,
      auth: true,
      handle: (ctx) => {
        const guild = ctx.params[0] === undefined ? undefined : guilds.get(ctx.params[0])
        if (guild === undefined) return unknownEntity("guild")
        const { channels: _c, members: _m, threads: _t, presences: _p, voice_states: _v, ...rest } = apiGuildCreate(guild)
        return { status: 200, json: rest }
      }
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/channels$/,
      auth: true,
      handle: (ctx) => {
        const guild = ctx.params[0] === undefined ? undefined : guilds.get(ctx.params[0])
        if (guild === undefined) return unknownEntity("guild")
        return {
          status: 200,
          json: guild.channelIds.flatMap((id) => {
            const c = channels.get(id)
            return c === undefined || isThreadKind(c.kind) ? [] : [apiChannel(c)]
          })
        }
      }
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/roles$/,
      auth: true,
      handle: (ctx) => {
        const guild = ctx.params[0] === undefined ? undefined : guilds.get(ctx.params[0])
        return guild === undefined ? unknownEntity("guild") : { status: 200, json: guild.roles.map(apiRole) }
      }
    },
    {
      method: "GET",
      pattern: /^\/guilds\/(\d+)\/members\/(\d+)$/,
      auth: true,
      handle: (ctx) => {
        const guild = ctx.params[0] === undefined ? undefined : guilds.get(ctx.params[0])
        if (guild === undefined) return unknownEntity("guild")
        const member = ctx.params[1] === undefined ? undefined : guild.members.get(ctx.params[1])
        return member === undefined ? unknownEntity("member") : { status: 200, json: apiMember(member) }
      }
    },
    {
      method: "GET",
      pattern: /^\/(?:oauth2\/)?applications\/@me$/,
      auth: true,
      handle: () => ({
        status: 200,
        json: { id: applicationId, name: botUser.username, icon: null, description: "", bot_public: true, bot_require_code_grant: false, verify_key: "0", flags: 0, bot: apiUser(botUser) }
      })
    },
    { method: "GET", pattern: /^\/applications\/(\d+)\/commands$/, auth: true, handle: listCommands },
    { method: "PUT", pattern: /^\/applications\/(\d+)\/commands$/, auth: true, handle: overwriteCommands },
    { method: "POST", pattern: /^\/applications\/(\d+)\/commands$/, auth: true, handle: createCommand },
    { method: "DELETE", pattern: /^\/applications\/(\d+)\/commands\/(\d+)$/, auth: true, handle: deleteCommand },
    // Interaction responses are authorized by the interaction's token in the path, not the bot token.
    { method: "POST", pattern: /^\/interactions\/(\d+)\/([^/]+)\/callback$/, auth: false, handle: interactionCallback },
    { method: "PATCH", pattern: /^\/webhooks\/(\d+)\/([^/]+)\/messages\/(?:@|%40)original$/, auth: false, handle: editOriginal },
    { method: "POST", pattern: /^\/webhooks\/(\d+)\/([^/]+)$/, auth: false, handle: followup }
  ]

  // -------------------------------------------------------------------------
  // HTTP plumbing

  const readBody = async (req: IncomingMessage): Promise<Buffer> => {
    const chunks: Array<Buffer> = []
    for await (const chunk of req) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)))
    return Buffer.concat(chunks)
  }

  const parseBody = async (req: IncomingMessage, raw: Buffer): Promise<ParsedBody> => {
    if (raw.byteLength === 0) return { kind: "none" }
    const contentType = req.headers["content-type"] ?? ""
    if (contentType.startsWith("multipart/form-data")) {
      let form: FormData
      try {
        form = await new Response(raw, { headers: { "content-type": contentType } }).formData()
      } catch (error) {
        return { kind: "invalid", reason: `multipart body did not parse: ${error instanceof Error ? error.message : String(error)}` }
      }
      let payload: unknown = undefined
      const uploads: Array<{ field: string; filename: string; contentType: string; data: Uint8Array }> = []
      for (const [field, value] of form.entries()) {
        if (typeof value === "string") {
          if (field === "payload_json") {
            const parsed = parseJson(value)
            if (Result.isFailure(parsed)) return { kind: "invalid", reason: "The request body contains invalid JSON." }
            payload = parsed.success
          }
          continue
        }
        uploads.push({ field, filename: value.name, contentType: value.type, data: new Uint8Array(await value.arrayBuffer()) })
      }
      return { kind: "multipart", payload, files: uploads }
    }
    const parsed = parseJson(raw.toString("utf8"))
    return Result.isFailure(parsed)
      ? { kind: "invalid", reason: "The request body contains invalid JSON." }
      : { kind: "json", value: parsed.success }
  }

  const rateLimitHeaders = (key: string, route: string, method: string): Record<string, string> => {
    const now = Date.now()
    let bucket = buckets.get(key)
    if (bucket === undefined || now >= bucket.resetAt) {
      bucket = { count: 0, resetAt: now + rateLimit.windowMs }
      buckets.set(key, bucket)
    }
    bucket.count += 1
    return {
      "x-ratelimit-limit": String(rateLimit.limit),
      "x-ratelimit-remaining": String(Math.max(0, rateLimit.limit - bucket.count)),
      "x-ratelimit-reset": (bucket.resetAt / 1000).toFixed(3),
      "x-ratelimit-reset-after": ((bucket.resetAt - now) / 1000).toFixed(3),
      "x-ratelimit-bucket": createHash("sha1").update(`${method}:${route}`).digest("hex").slice(0, 32)
    }
  }

  const overLimit = (key: string): number | undefined => {
    const bucket = buckets.get(key)
    return bucket !== undefined && bucket.count > rateLimit.limit ? Math.max(0, bucket.resetAt - Date.now()) : undefined
  }

  const tooManyRequests = (retryAfterMs: number, global: boolean, scope: string, headers: Record<string, string>) => {
    const seconds = retryAfterMs / 1000
    return {
      status: 429,
      headers: {
        ...headers,
        "retry-after": String(Math.max(1, Math.ceil(seconds))),
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset-after": seconds.toFixed(3),
        "x-ratelimit-scope": scope,
        ...(global ? { "x-ratelimit-global": "true" } : {})
      },
      json: { message: "You are being rate limited.", retry_after: Number(seconds.toFixed(3)), global }
    }
  }

  const writeReply = (res: ServerResponse, status: number, headers: Record<string, string>, reply: { json?: unknown; bytes?: RestReply["bytes"] }): void => {
    if (reply.bytes !== undefined) {
      res.writeHead(status, { ...headers, "content-type": reply.bytes.contentType, "content-length": String(reply.bytes.data.byteLength) })
      res.end(reply.bytes.data)
      return
    }
    if (reply.json === undefined) {
      res.writeHead(status, headers)
      res.end()
      return
    }
    const text = JSON.stringify(reply.json)
    res.writeHead(status, { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(text)) })
    res.end(text)
  }

  const onRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1")
    const method = (req.method ?? "GET").toUpperCase()
    const raw = await readBody(req)

    const file = method === "GET" ? files.get(url.pathname) : undefined
    if (file !== undefined) return writeReply(res, 200, {}, { bytes: file })

    if (!url.pathname.startsWith("/api/v10/")) {
      unknownRoutes.push({ method, path: url.pathname })
      return writeReply(res, 404, {}, { json: { message: "404: Not Found", code: 0 } })
    }
    const path = url.pathname.slice("/api/v10".length)
    const route = bucketRoute(path)
    const key = `${method}:${route}:${majorParameter(path)}`
    const body = await parseBody(req, raw)
    const authHeader = req.headers.authorization
    const authorized = authHeader === `Bot ${token}`
    const userAgent = req.headers["user-agent"]
    const record = (status: number, injected: RestRequestRecord["injected"], dedupedByNonce = false): void => {
      requests.push({ method, path, query: url.search, route, status, authorized, userAgent, body: jsonBodyOf(body), injected, dedupedByNonce, at: Date.now() })
    }

    const headers = rateLimitHeaders(key, route, method)
    const injection = injections.find((i) => i.remaining > 0 && matches(i.matcher, method, path))
    if (injection !== undefined) injection.remaining -= 1

    if (injection?.rateLimit !== undefined) {
      const limit = injection.rateLimit
      const global = limit.global ?? false
      const reply = tooManyRequests(limit.retryAfterMs, global, limit.scope ?? (global ? "global" : "user"), headers)
      record(429, "rate-limit")
      return writeReply(res, reply.status, reply.headers, reply)
    }
    const fail = injection?.fail
    if (fail !== undefined && fail.after !== true) {
      record(fail.status === "reset" ? 0 : fail.status, "fail")
      if (fail.status === "reset") return void res.socket?.destroy()
      return writeReply(res, fail.status, headers, { json: fail.body ?? { message: `${fail.status}: injected failure`, code: 0 } })
    }

    const matched = routes.find((r) => r.method === method && r.pattern.test(path))
    if (matched === undefined) {
      unknownRoutes.push({ method, path })
      record(404, undefined)
      return writeReply(res, 404, headers, { json: { message: "404: Not Found", code: 0 } })
    }
    if (matched.auth && !authorized) {
      record(401, undefined)
      return writeReply(res, 401, headers, { json: { message: "401: Unauthorized", code: 0 } })
    }
    const over = overLimit(key)
    if (over !== undefined) {
      const reply = tooManyRequests(over, false, "user", headers)
      record(429, undefined)
      return writeReply(res, reply.status, reply.headers, reply)
    }
    const params = matched.pattern.exec(path)?.slice(1) ?? []
    const reply = matched.handle({ method, path, params, query: url.searchParams, body })
    if (fail !== undefined) {
      record(fail.status === "reset" ? 0 : fail.status, "fail", reply.dedupedByNonce ?? false)
      if (fail.status === "reset") return void res.socket?.destroy()
      return writeReply(res, fail.status, headers, { json: fail.body ?? { message: `${fail.status}: injected failure`, code: 0 } })
    }
    record(reply.status, undefined, reply.dedupedByNonce ?? false)
    writeReply(res, reply.status, headers, reply)
  }

  const server = createServer((req, res) => {
    onRequest(req, res).catch((error: unknown) => {
      protocolErrors.push(`REST handler crashed: ${error instanceof Error ? error.stack ?? error.message : String(error)}`)
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" })
      res.end(JSON.stringify({ message: "500: Internal Server Error", code: 0 }))
    })
  })
  server.on("upgrade", onUpgrade)
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const address = server.address()
  const port = address !== null && typeof address === "object" ? address.port : 0
  baseUrl = `http://127.0.0.1:${port}`
  gatewayUrl = `ws://127.0.0.1:${port}/gateway`
  resumeGatewayUrl = `ws://127.0.0.1:${port}/gateway-resume`

  // -------------------------------------------------------------------------
  // Control API

  const liveConns = (): Array<Conn> => [...conns].filter((c) => !c.closed)

  const dropConnection = async (code?: number, reason = "fake drop"): Promise<void> => {
    const targets = liveConns()
    for (const conn of targets) {
      if (code === undefined) {
        conn.record.closedBy = "server"
        conn.record.closeCode = 1006
        detach(conn, false)
        conn.ws.terminate()
      } else {
        closeConn(conn, code, reason)
      }
    }
    await Promise.all(targets.map((c) => c.closedPromise))
  }

  const invalidateSession = (resumable: boolean): void => {
    for (const conn of liveConns()) {
      if (conn.session === undefined) continue
      // Either way the socket stops carrying the session: dispatches from now on
      // wait in the session buffer for a RESUME, or die with the session.
      detach(conn, !resumable)
      if (!resumable) conn.session = undefined
      send(conn, { op: GatewayOp.InvalidSession, d: resumable, s: null, t: null })
    }
  }

  const sendOp = (op: number): void => {
    for (const conn of liveConns()) send(conn, { op, d: null, s: null, t: null })
  }

  const waitFor = async (predicate: () => boolean, timeoutMs = 5000, label = "condition"): Promise<void> => {
    const deadline = Date.now() + timeoutMs
    let lastError: unknown = undefined
    for (;;) {
      try {
        if (predicate()) return
      } catch (error) {
        lastError = error
      }
      if (Date.now() > deadline) {
        const why = lastError instanceof Error ? ` (last error: ${lastError.message})` : ""
        throw new Error(`FakeDiscord.waitFor timed out after ${timeoutMs} ms: ${label}${why}`)
      }
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  const close = async (): Promise<void> => {
    if (closed) return
    closed = true
    for (const timer of timers) clearTimeout(timer)
    timers.clear()
    for (const conn of liveConns()) conn.ws.terminate()
    wss.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  return {
    url: baseUrl,
    apiBase: `${baseUrl}/api`,
    gatewayUrl,
    get token() {
      return token
    },
    botUser,
    applicationId,
    snowflake,
    addUser,
    addGuild,
    addChannel,
    addDmUser,
    guild: (id) => {
      const g = guilds.get(id)
      return g === undefined ? undefined : guildView(g)
    },
    channel: (id) => {
      const c = channels.get(id)
      return c === undefined ? undefined : channelView(c)
    },
    message: (id) => {
      const m = messages.get(id)
      return m === undefined ? undefined : messageView(m)
    },
    dispatchMessage,
    redispatchMessage: (id) => {
      const message = messages.get(id)
      if (message === undefined) throw new Error(`FakeDiscord: unknown message ${id}`)
      dispatchMessageCreate(message)
    },
    dispatchRaw: (t, d) => dispatchTo(t, () => d),
    dispatchInteraction,
    redispatchInteraction: (id) => {
      const state = interactions.get(id)
      if (state === undefined) throw new Error(`FakeDiscord: unknown interaction ${id}`)
      dispatchTo("INTERACTION_CREATE", () => state.payload, { guildId: state.guildId })
    },
    interaction: (id) => {
      const state = interactions.get(id)
      return state === undefined ? undefined : interactionView(state)
    },
    applicationCommands: () => [...appCommands.values()].map(({ body: _body, ...command }) => command),
    interactionResponses,
    dropConnection,
    invalidateSession,
    sendReconnect: () => sendOp(GatewayOp.Reconnect),
    requestHeartbeat: () => sendOp(GatewayOp.Heartbeat),
    setHeartbeatAcks: (enabled) => {
      heartbeatAcks = enabled
    },
    expireSessions: () => {
      for (const session of sessions.values()) session.invalid = true
    },
    rotateToken: () => {
      token = defaultToken(botUser.id)
      return token
    },
    rateLimitNext: (matcher, rateLimit) => {
      injections.push({ matcher, remaining: rateLimit.count ?? 1, kind: "rate-limit", rateLimit })
    },
    failNext: (matcher, fail) => {
      injections.push({ matcher, remaining: fail.count ?? 1, kind: "fail", fail })
    },
    sentMessages,
    edits,
    deletions,
    typingCalls,
    reactions,
    requests,
    unknownRoutes,
    connections,
    identifies,
    resumes,
    protocolErrors,
    get identifyCount() {
      return identifies.length
    },
    get resumeCount() {
      return resumes.length
    },
    get heartbeatCount() {
      return heartbeatCount
    },
    get nonceHits() {
      return nonceHits
    },
    get openConnections() {
      return liveConns().length
    },
    waitFor,
    close
  }
}

const make = (options?: FakeDiscordOptions): Effect.Effect<FakeDiscordHandle, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.tryPromise(() => startFakeDiscord(options)).pipe(Effect.orDie),
    (handle) => Effect.promise(() => handle.close())
  )

export const FakeDiscord = { start: startFakeDiscord, make }

/**
 * One Discord bot account on discord.js: logs in, turns each MESSAGE_CREATE
 * into a normalized InboundMessage for the channel layer, and exposes the
 * outbound side (send with an enforced nonce, typing, reactions) over the
 * client's REST with an AbortSignal, so interruption cancels a request.
 * discord.js handles heartbeats, resume and rate-limit buckets; this module
 * turns its lifecycle into account status and stops for good on the close
 * codes a reconnect cannot fix (bad token, disallowed intents).
 * Slash commands (when native commands are on): registered beside the
 * connection once it is ready (NativeCommands), each interaction deferred
 * at once (Discord wants a first response within 3 s) and handed on as the
 * typed command it stands for; its answer goes back through the interaction's
 * webhook token while that is valid (15 minutes).
 * discord.js is imported on the first start of an account, never at boot.
 */
import { createHash } from "node:crypto"
import type { ChatInputCommandInteraction, Client, Message } from "discord.js"
import { Clock, Deferred, Duration, Effect, Queue, Redacted, Result } from "effect"
import { type AccountContext, ChannelError, type ChannelConnection, type OutboundInteraction, type OutboundMessage, SendError } from "../Channel.ts"
import { errnoCode } from "../../platform/Errno.ts"
import { detectExplicitMention } from "../Access.ts"
import { decodeInboundMessage, type InboundMessage } from "../InboundMessage.ts"
import { commandTextOf, isNativeCommandName, syncNativeCommands } from "./NativeCommands.ts"

export const CHANNEL_ID = "discord"

/** How long a login may take to reach READY before it counts as failed. */
const LOGIN_TIMEOUT = Duration.seconds(60)

/** Close codes after which reconnecting cannot help (Discord gateway docs). */
const FATAL_CLOSE_CODES: ReadonlyMap<number, string> = new Map([
  [4004, "authentication failed: the bot token is invalid (close 4004)"],
  [4010, "invalid shard (close 4010)"],
  [4011, "sharding required (close 4011)"],
  [4012, "invalid API version (close 4012)"],
  [4013, "invalid intents (close 4013)"],
  [4014, "disallowed intents: enable the Message Content intent for this bot in the Discord developer portal, or set channels.discord.intents.messageContent to false (close 4014)"]
])

export interface DiscordAccountOptions {
  readonly accountId: string
  readonly token: Redacted.Redacted<string>
  /** REST base such as `https://discord.com/api`; discord.js takes the gateway URL from GET /gateway/bot. */
  readonly apiBaseUrl?: string | undefined
  readonly messageContentIntent: boolean
  /** Register the chat commands as slash commands and answer them (else ours are removed and interactions ignored). */
  readonly nativeCommands: boolean
  /** Slash-command answers are visible to the invoking user only. */
  readonly ephemeral: boolean
}

/** Discord accepts an interaction's follow-ups and edits for 15 minutes after it was created. */
export const INTERACTION_TOKEN_TTL_MS = 15 * 60_000
const EPHEMERAL_FLAG = 1 << 6
/** Discord's code for a second initial response to an interaction: a redelivered interaction. */
const ALREADY_ACKNOWLEDGED = 40060

/** Discord's nonce is at most 25 characters: a digest of the idempotency key, stable across restarts. */
export const nonceOf = (idempotencyKey: string): string => createHash("sha256").update(idempotencyKey).digest("base64url").slice(0, 25)

const messageOf = (error: unknown): string => error instanceof Error ? error.message : String(error)

/** The status and code of a discord.js REST failure, when it has them. */
const httpStatusOf = (error: unknown): number | undefined =>
  typeof error === "object" && error !== null && "status" in error && typeof error.status === "number" ? error.status : undefined

const sendErrorOf = (error: unknown): SendError => {
  const status = httpStatusOf(error)
  // 4xx means the request itself is wrong (missing access, unknown channel): retrying cannot help.
  // discord.js already waits out 429s and retries 5xx; what reaches us is worth a few more tries.
  const retryable = status === undefined || status >= 500 || status === 429
  return new SendError({ message: status === undefined ? messageOf(error) : `HTTP ${status}: ${messageOf(error)}`, retryable })
}

/** Network errors that happen before a request leaves this machine: the platform never saw it. */
const NOT_SENT_CODES: ReadonlySet<string> = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "ENETUNREACH", "EHOSTUNREACH"])

const networkCodeOf = (error: unknown): string | undefined => {
  const own = errnoCode(error)
  if (own !== undefined) return own
  return typeof error === "object" && error !== null && "cause" in error ? errnoCode(error.cause) : undefined
}

/**
 * A follow-up (POST to the interaction webhook) takes no nonce, so a repeat
 * would post twice: only a refusal (4xx) or a request that never left this
 * machine is known not to have been acted on. A 5xx, a reset connection or a
 * timeout may have come after Discord created the message, and is final.
 */
export const followupErrorOf = (error: unknown): SendError => {
  const status = httpStatusOf(error)
  if (status !== undefined) {
    const message = `HTTP ${status}: ${messageOf(error)}`
    return status < 500
      ? new SendError({ message, retryable: false, notSent: true })
      : new SendError({ message: `${message} (the follow-up may have been posted)`, retryable: false })
  }
  const code = networkCodeOf(error)
  if (code !== undefined && NOT_SENT_CODES.has(code)) return new SendError({ message: `${messageOf(error)} (${code})`, retryable: true, notSent: true })
  return new SendError({ message: `${messageOf(error)}${code === undefined ? "" : ` (${code})`} (the follow-up may have been posted)`, retryable: false })
}

const idOf = (value: unknown): string | undefined =>
  typeof value === "object" && value !== null && "id" in value && typeof value.id === "string" ? value.id : undefined

/** The normalized form of a discord.js message, or why it could not be made. */
export const normalize = (message: Message, accountId: string, botId: string): Result.Result<InboundMessage, string> => {
  const channel = message.channel
  const isDm = message.guildId === null
  const isThread = channel.isThread()
  const parent = isThread ? channel.parent : null
  const name = !isThread && "name" in channel && typeof channel.name === "string" ? channel.name : undefined
  const mentionsBot = message.mentions.users.has(botId)
  const repliedUser = message.mentions.repliedUser
  const candidate = {
    channel: CHANNEL_ID,
    accountId,
    messageId: message.id,
    chatType: isDm ? "direct" : "channel",
    chatId: message.channelId,
    from: isDm ? `discord:${message.author.id}` : `discord:channel:${message.channelId}`,
    to: `channel:${message.channelId}`,
    senderId: message.author.id,
    ...(message.member?.displayName ?? message.author.globalName ?? message.author.username
      ? { senderName: message.member?.displayName ?? message.author.globalName ?? message.author.username }
      : {}),
    senderUsername: message.author.username,
    isBot: message.author.bot,
    body: message.content.trim(),
    ...(message.reference?.messageId === undefined ? {} : { replyToId: message.reference.messageId }),
    ...(isThread ? { threadId: message.channelId } : {}),
    ...(isThread && channel.parentId !== null ? { parentId: channel.parentId } : {}),
    ...(name === undefined ? {} : { chatName: name }),
    ...(parent !== null && parent !== undefined ? { parentName: parent.name } : {}),
    ...(message.guildId === null ? {} : { guildId: message.guildId }),
    ...(message.guild === null ? {} : { guildName: message.guild.name }),
    memberRoleIds: message.member === null ? [] : [...message.member.roles.cache.keys()].filter((id) => id !== message.guildId),
    attachments: [...message.attachments.values()].map((attachment) => ({
      url: attachment.url,
      ...(attachment.name === "" ? {} : { name: attachment.name }),
      ...(attachment.contentType === null ? {} : { contentType: attachment.contentType }),
      size: attachment.size
    })),
    wasMentioned: mentionsBot || detectExplicitMention({ botUserId: botId, mentionedUserIds: [...message.mentions.users.keys()], text: message.content }),
    hasAnyMention: message.mentions.users.size > 0 || message.mentions.roles.size > 0 || message.mentions.everyone,
    replyToBot: idOf(repliedUser) === botId,
    timestamp: message.createdTimestamp
  }
  return Result.mapError(decodeInboundMessage(candidate), (error) => error.message)
}

/** The normalized form of a slash command: the command's text from the user, in the chat it was run in. */
export const normalizeInteraction = (interaction: ChatInputCommandInteraction, accountId: string, ephemeral: boolean): Result.Result<InboundMessage, string> => {
  const channel = interaction.channel
  const isDm = interaction.guildId === null
  const isThread = channel?.isThread() ?? false
  const parentId = channel !== null && channel.isThread() ? channel.parentId : null
  const name = channel !== null && !isThread && "name" in channel && typeof channel.name === "string" ? channel.name : undefined
  const member = interaction.inCachedGuild() ? interaction.member : null
  const roles = member !== null ? [...member.roles.cache.keys()] : interaction.member !== null && Array.isArray(interaction.member.roles) ? interaction.member.roles : []
  const displayName = member?.displayName ?? interaction.user.globalName ?? interaction.user.username
  const chatId = interaction.channelId ?? ""
  const candidate = {
    channel: CHANNEL_ID,
    accountId,
    messageId: interaction.id,
    chatType: isDm ? "direct" : "channel",
    chatId,
    from: isDm ? `discord:${interaction.user.id}` : `discord:channel:${chatId}`,
    to: `channel:${chatId}`,
    senderId: interaction.user.id,
    ...(displayName ? { senderName: displayName } : {}),
    senderUsername: interaction.user.username,
    isBot: interaction.user.bot,
    body: commandTextOf(interaction),
    ...(isThread ? { threadId: chatId } : {}),
    ...(parentId !== null ? { parentId } : {}),
    ...(name === undefined ? {} : { chatName: name }),
    ...(interaction.guildId === null ? {} : { guildId: interaction.guildId }),
    ...(interaction.guild === null ? {} : { guildName: interaction.guild.name }),
    memberRoleIds: roles.filter((id) => id !== interaction.guildId),
    attachments: [],
    // A slash command is addressed to the bot: mention gating lets it through, command authorization decides.
    wasMentioned: true,
    hasAnyMention: true,
    replyToBot: false,
    timestamp: interaction.createdTimestamp,
    interaction: { id: interaction.id, token: interaction.token, applicationId: interaction.applicationId, ephemeral }
  }
  return Result.mapError(decodeInboundMessage(candidate), (error) => error.message)
}

const apiCodeOf = (error: unknown): number | undefined =>
  typeof error === "object" && error !== null && "code" in error && typeof error.code === "number" ? error.code : undefined

type LifecycleEvent =
  | { readonly _tag: "Up" }
  | { readonly _tag: "Down"; readonly code: number }
  | { readonly _tag: "Problem"; readonly message: string }
  /** A slash command that was dropped unanswered: logged as an error, and shown as the account's last problem. */
  | { readonly _tag: "Dropped"; readonly message: string }
  | { readonly _tag: "Inbound"; readonly message: Message }
  | { readonly _tag: "Command"; readonly interaction: ChatInputCommandInteraction }

/**
 * Runs the account until its scope closes. Fails with a fatal ChannelError on
 * a bad token or a disallowed intent, with a transient one when the client
 * cannot get (back) online; the supervisor decides what to do next.
 */
export const run = (options: DiscordAccountOptions, context: AccountContext) =>
  Effect.gen(function*() {
    const fail = (message: string, fatal: boolean) => new ChannelError({ channel: CHANNEL_ID, accountId: options.accountId, message, fatal })
    const discord = yield* Effect.tryPromise({
      try: () => import("discord.js"),
      catch: (error) => fail(`cannot load discord.js: ${messageOf(error)}`, true)
    })
    const { GatewayIntentBits: Intents, Partials, Events, Routes, MessageFlags } = discord

    // Everything discord.js tells us goes through one queue, handled in order by this fiber.
    const events = yield* Queue.unbounded<LifecycleEvent>()
    const client: Client = yield* Effect.acquireRelease(
      Effect.sync(() =>
        new discord.Client({
          intents: [
            Intents.Guilds,
            Intents.GuildMessages,
            Intents.DirectMessages,
            Intents.GuildMessageReactions,
            Intents.DirectMessageReactions,
            ...(options.messageContentIntent ? [Intents.MessageContent] : [])
          ],
          // DMs arrive without a cached channel; without this partial discord.js drops them.
          partials: [Partials.Channel],
          ...(options.apiBaseUrl === undefined ? {} : { rest: { api: options.apiBaseUrl } })
        })
      ),
      (client) => Effect.promise(() => client.destroy().catch(() => undefined))
    )
    client.on(Events.ClientReady, () => Queue.offerUnsafe(events, { _tag: "Up" }))
    client.on(Events.ShardResume, () => Queue.offerUnsafe(events, { _tag: "Up" }))
    client.on(Events.ShardDisconnect, (event) => Queue.offerUnsafe(events, { _tag: "Down", code: event.code }))
    // discord.js reports only unrecoverable closes as ShardDisconnect; every other drop shows as reconnecting.
    client.on(Events.ShardReconnecting, () => Queue.offerUnsafe(events, { _tag: "Down", code: 0 }))
    client.on(Events.ShardError, (error) => Queue.offerUnsafe(events, { _tag: "Problem", message: `gateway error: ${error.message}` }))
    client.on(Events.Error, (error) => Queue.offerUnsafe(events, { _tag: "Problem", message: `client error: ${error.message}` }))
    client.on(Events.MessageCreate, (message) => Queue.offerUnsafe(events, { _tag: "Inbound", message }))
    if (options.nativeCommands) {
      client.on(Events.InteractionCreate, (interaction) => {
        if (!interaction.isChatInputCommand() || !isNativeCommandName(interaction.commandName)) return
        // Discord wants the first response within 3 s, so the deferral is sent here, before the command waits on
        // anything; it is handed on once acknowledged, so the answer never races the deferral. A redelivered
        // interaction is refused by Discord (already acknowledged) and then de-duplicated like a message.
        interaction.deferReply(options.ephemeral ? { flags: MessageFlags.Ephemeral } : {}).then(
          () => Queue.offerUnsafe(events, { _tag: "Command", interaction }),
          (error: unknown) => {
            // Already acknowledged: a redelivery, answered once by the de-dupe.
            if (apiCodeOf(error) === ALREADY_ACKNOWLEDGED) return Queue.offerUnsafe(events, { _tag: "Command", interaction })
            // Not acknowledged (10062 after the 3 s deadline, a refusal, a network failure): the user sees "the
            // application did not respond" and can send it again, and no answer could ever be shown, so running the
            // command would change things nobody is told about. Not run.
            Queue.offerUnsafe(events, {
              _tag: "Dropped",
              message: `slash command /${interaction.commandName} (${interaction.id}) from ${interaction.user.id} was NOT run: it could not be acknowledged: ${messageOf(error)}`
            })
          }
        )
      })
    }

    // discord.js retries a gateway that never says READY forever; a login that hangs is a failure the supervisor retries.
    yield* Effect.tryPromise({
      try: () => client.login(Redacted.value(options.token)),
      catch: (error) => {
        const text = messageOf(error)
        // discord.js's own error codes (TokenInvalid, TokenMissing) and @discordjs/ws's messages for
        // closes 4004, 4013 and 4014 are what a retry cannot fix; anything else (network, 5xx) is retried.
        const code = errnoCode(error)
        if (code === "TokenInvalid" || code === "TokenMissing" || text === "Authentication failed") {
          return fail(`the Discord bot token is invalid (${text})`, true)
        }
        if (text === "Used disallowed intents") return fail(FATAL_CLOSE_CODES.get(4014) ?? text, true)
        if (text === "Used invalid intents") return fail(FATAL_CLOSE_CODES.get(4013) ?? text, true)
        return fail(`cannot log in to Discord: ${text}`, false)
      }
    }).pipe(
      Effect.timeoutOrElse({
        duration: LOGIN_TIMEOUT,
        orElse: () => Effect.fail(fail(`no READY from the Discord gateway within ${Duration.format(LOGIN_TIMEOUT)}`, false))
      })
    )

    const signalled = <A>(request: (signal: AbortSignal) => Promise<A>) =>
      Effect.tryPromise({ try: request, catch: sendErrorOf })

    // Follow-ups go through a REST client of their own that never repeats a request by itself (discord.js's
    // client retries a 5xx, a reset and a timeout, which for a request without a nonce can post twice). It
    // still waits out a 429, which Discord answers without acting. Interaction webhooks need no bot token.
    const followups = new discord.REST({ retries: 0, ...(options.apiBaseUrl === undefined ? {} : { api: options.apiBaseUrl }) })
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        followups.clearHashSweeper()
        followups.clearHandlerSweeper()
      })
    )

    /** An answer through the interaction: the original (deferred) response edited, or a follow-up. */
    const answer = (message: OutboundMessage, interaction: OutboundInteraction) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        if (now - interaction.createdAt > INTERACTION_TOKEN_TTL_MS) {
          yield* Effect.logWarning(
            `discord: the answer to interaction ${interaction.id} cannot be sent: its token expired (Discord allows ${INTERACTION_TOKEN_TTL_MS / 60_000} minutes, it is ${Math.round((now - interaction.createdAt) / 60_000)} minutes old)`
          )
          return yield* new SendError({ message: `the interaction token expired (interaction ${interaction.id} is older than 15 minutes)`, retryable: false, notSent: true })
        }
        const files = message.files === undefined || message.files.length === 0
          ? {}
          : { files: message.files.map((file) => ({ name: file.name, data: file.data, ...(file.contentType === undefined ? {} : { contentType: file.contentType }) })) }
        const body = { content: message.text, allowed_mentions: { parse: ["users"] } }
        // Editing the original is idempotent (retried freely); a follow-up is posted at most once.
        const created = interaction.original
          ? yield* signalled((signal) =>
            client.rest.patch(Routes.webhookMessage(interaction.applicationId, interaction.token, "@original"), { signal, auth: false, ...files, body })
          )
          : yield* Effect.tryPromise({
            try: (signal) =>
              followups.post(Routes.webhook(interaction.applicationId, interaction.token), {
                signal,
                auth: false,
                query: new URLSearchParams({ wait: "true" }),
                ...files,
                body: { ...body, ...(interaction.ephemeral ? { flags: EPHEMERAL_FLAG } : {}) }
              }),
            catch: followupErrorOf
          })
        const id = idOf(created)
        if (id === undefined) return yield* new SendError({ message: "Discord answered the interaction response without a message id", retryable: false })
        return { messageId: id }
      })

    const connection: ChannelConnection = {
      selfId: client.user?.id,
      send: (message) =>
        message.interaction !== undefined ? Effect.tap(answer(message, message.interaction), () => context.outbound) : signalled((signal) =>
          client.rest.post(Routes.channelMessages(message.target.chatId), {
            signal,
            ...(message.files === undefined || message.files.length === 0
              ? {}
              : { files: message.files.map((file) => ({ name: file.name, data: file.data, ...(file.contentType === undefined ? {} : { contentType: file.contentType }) })) }),
            body: {
              content: message.text,
              nonce: nonceOf(message.idempotencyKey),
              enforce_nonce: true,
              allowed_mentions: { parse: ["users"], replied_user: false },
              ...(message.replyTo === undefined ? {} : { message_reference: { message_id: message.replyTo, fail_if_not_exists: false } })
            }
          })
        ).pipe(
          Effect.flatMap((created) => {
            const id = idOf(created)
            return id === undefined
              ? Effect.fail(new SendError({ message: "Discord answered the send without a message id", retryable: false }))
              : Effect.succeed({ messageId: id })
          }),
          Effect.tap(() => context.outbound)
        ),
      typing: (target) => signalled((signal) => client.rest.post(Routes.channelTyping(target.chatId), { signal })).pipe(Effect.asVoid),
      react: (target, messageId, emoji) =>
        signalled((signal) => client.rest.put(Routes.channelMessageOwnReaction(target.chatId, messageId, encodeURIComponent(emoji)), { signal })).pipe(
          Effect.asVoid
        ),
      openDirect: (userId) =>
        signalled((signal) => client.rest.post(Routes.userChannels(), { signal, body: { recipient_id: userId } })).pipe(
          Effect.flatMap((channel) => {
            const id = idOf(channel)
            return id === undefined
              ? Effect.fail(new SendError({ message: "Discord answered the DM channel request without a channel id", retryable: false }))
              : Effect.succeed({ chatId: id })
          })
        )
    }
    // The event loop is forked before the connection is attached, so it is stopped after the attach is
    // released: while the account drains its conversations on a stop, new messages are still received
    // (and journaled) rather than dropped with the client.
    const fatal = yield* Deferred.make<never, ChannelError>()
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (true) {
        const event = yield* Queue.take(events)
        switch (event._tag) {
          case "Up":
            yield* context.connected(true)
            break
          case "Down": {
            const reason = FATAL_CLOSE_CODES.get(event.code)
            if (reason !== undefined) return yield* Deferred.fail(fatal, fail(reason, true))
            yield* context.connected(false)
            break
          }
          case "Problem":
            yield* context.problem(event.message)
            break
          case "Dropped":
            yield* Effect.logError(`discord ${options.accountId}: ${event.message}`)
            yield* context.problem(event.message)
            break
          case "Command": {
            const normalized = normalizeInteraction(event.interaction, options.accountId, options.ephemeral)
            if (Result.isFailure(normalized)) {
              yield* Effect.logError(`discord: dropped interaction ${event.interaction.id} that could not be normalized: ${normalized.failure}`)
              yield* context.problem(`a slash command could not be read: ${normalized.failure}`)
              break
            }
            yield* context.inbound
            yield* context.receive(normalized.success)
            break
          }
          case "Inbound": {
            const botId = client.user?.id
            if (botId === undefined) break
            // Our own messages come back as MESSAGE_CREATE; they are never input.
            if (event.message.author.id === botId) break
            const normalized = normalize(event.message, options.accountId, botId)
            if (Result.isFailure(normalized)) {
              yield* Effect.logError(`discord: dropped message ${event.message.id} that could not be normalized: ${normalized.failure}`)
              yield* context.problem(`a message could not be read: ${normalized.failure}`)
              break
            }
            yield* context.inbound
            yield* context.receive(normalized.success)
            break
          }
        }
      }
    }))
    yield* context.attach(connection)
    // Registration runs beside the connection: a slow or refused registration never holds up the messages.
    yield* Effect.forkScoped(syncNativeCommands(client, discord, options.nativeCommands).pipe(
      Effect.tap((outcome) => Effect.logInfo(`discord:${options.accountId}: slash commands ${outcome}`)),
      Effect.catch((error) => context.problem(`slash commands could not be registered: ${error}`))
    ))
    return yield* Deferred.await(fatal)
  })

/**
 * The channel layer between a platform connection and the sessions: every
 * inbound message goes through preflight (bots, DM policy and pairing, guild
 * allowlist, mention gating, commands, routing), de-duplication and the
 * account's journal, then into a lane per session key. A lane is a worker
 * fiber owned by the host (not the connection) that runs its jobs in order —
 * the turn, typing while it runs, chunking, delivery — and exits when its
 * queue is empty, so an idle account has no fibers but its connection. The
 * listener never waits on a turn. The journals outlive the lanes: on
 * shutdown the host waits for lanes in the middle of a job, interrupts the
 * rest, and only then closes the journals, so a lane never loses a record.
 *
 * Guarantees: a message id is handled once (the de-dupe survives restarts);
 * an accepted message is answered or gets a visible error, and one accepted
 * before a crash is finished after the restart (journal); each reply piece
 * is sent once (idempotency key per piece, remembered across restarts) and a
 * piece that cannot be sent lands in the dead-letter log.
 */
import * as path from "node:path"
import { Cause, Clock, Context, Deferred, Duration, Effect, FiberSet, Layer, Result, Schema, Scope, Semaphore, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"
import { Sessions } from "../session/Sessions.ts"
import type { AccountEndpoint, ChannelConnection, OutboundMessage } from "./Channel.ts"
import * as ChannelJournal from "./ChannelJournal.ts"
import { type ChatCommand, commandBody, modelCatalogOf, parseChatCommand, resolveNewArgs } from "./ChatCommands.ts"
import { chunkDiscordText } from "./Chunker.ts"
import { InboundDedupe, dedupeKeyOf } from "./Dedupe.ts"
import { deliver, type PieceResult } from "./Delivery.ts"
import { SHUTDOWN_GRACE_MS } from "../runtime/DetachedRuns.ts"
import type { InboundAttachment, InboundMessage } from "./InboundMessage.ts"
import type { ImagePart } from "../agent/Message.ts"
import { PairingStore } from "./PairingStore.ts"
import * as ReplyMedia from "./ReplyMedia.ts"
import { routeOf, updatesLastRoute } from "./LastRoute.ts"
import { AgentDirectory } from "../agent/AgentDirectory.ts"
import * as SessionKey from "../session/SessionKey.ts"
import type { OutboundFile } from "./Channel.ts"
import { type DiscordPolicy, preflight } from "./Preflight.ts"
import type { ResolvedRoute } from "./Routing.ts"
import { type BotLoopSettings, botPairKey, checkBotLoop, makeBotLoopGuard, resolveBotLoopSettings } from "./Access.ts"
import { resolveAgentRoute, routeConfigOf, routeInputOf } from "./Routing.ts"

/** Images the model can read (Anthropic's formats), and the most we download of one. */
const IMAGE_TYPES: ReadonlySet<string> = new Set(["image/jpeg", "image/png", "image/gif", "image/webp"])
export const MAX_IMAGE_BYTES = 5 * 1024 * 1024
const MAX_IMAGES = 4

/** Discord's typing indicator lasts about 10 s; refreshed a little sooner. */
const TYPING_REFRESH = Duration.seconds(8)
/** The model's way of saying "nothing to send" (OpenClaw's silent token). */
const SILENT_TOKEN = "NO_REPLY"
const ACK_REACTION = "👀"

/** What an account reads from the config, on every message (edits apply at once). */
export interface AccountSettings {
  readonly policy: DiscordPolicy
  readonly botLoop: BotLoopSettings
  readonly textChunkLimit: number
  readonly maxLinesPerMessage: number
  readonly replyToMode: "off" | "first" | "all"
}

/** The `channels.discord` section, or one account's merged view of it. */
export type DiscordSection = BeamclawConfig["channels"]["discord"]

export const discordSettingsOf = (discord: DiscordSection): AccountSettings => {
  return {
    policy: {
      dmPolicy: discord.dmPolicy,
      allowFrom: discord.allowFrom,
      groupPolicy: discord.groupPolicy,
      guilds: discord.guilds,
      allowBots: discord.allowBots
    },
    botLoop: resolveBotLoopSettings(discord.botLoopProtection),
    textChunkLimit: discord.textChunkLimit,
    maxLinesPerMessage: discord.maxLinesPerMessage,
    replyToMode: discord.replyToMode
  }
}

type Job =
  | { readonly _tag: "Turn"; readonly id: string; readonly message: InboundMessage; readonly sessionKey: string; readonly mentioned: boolean; readonly reply: string | undefined; readonly chunk?: ChannelJournal.Chunking | undefined; readonly newSession?: { readonly model?: string | undefined } | undefined }
  | { readonly _tag: "Command"; readonly id: string; readonly message: InboundMessage; readonly command: ChatCommand; readonly route: ResolvedRoute }
  | { readonly _tag: "Notice"; readonly id: string; readonly message: InboundMessage; readonly text: string; readonly key: string }
  /** A reply made before the connection went away, sent again (same piece keys) once one is attached. */
  | { readonly _tag: "Deliver"; readonly id: string; readonly message: InboundMessage; readonly text: string; readonly key: string; readonly replyTo: "first" | "all" | "off"; readonly chunk?: ChannelJournal.Chunking | undefined; readonly mediaOf?: string | undefined }

const describe = (error: unknown): string => {
  if (typeof error === "object" && error !== null && "message" in error && typeof error.message === "string") return error.message
  return String(error)
}

/**
 * The current turn's text for the model: in a guild, who said it (OpenClaw
 * prefixes the sender outside DMs); attachments that are not passed as images
 * are named as placeholders, with the reason when an image was left out.
 */
export const bodyForAgent = (message: InboundMessage, notes: ReadonlyMap<string, string> = new Map()): string => {
  const placeholders = message.attachments
    .filter((a) => !isModelImage(a) || notes.has(a.url))
    .map((a) => `<media:${(a.contentType ?? "").startsWith("image/") ? "image" : "document"}> ${a.name ?? a.url}${notes.has(a.url) ? ` (${notes.get(a.url)})` : ""}`)
  const media = placeholders.length === 0 ? "" : `${message.body === "" ? "" : "\n"}${placeholders.join("\n")}`
  const text = `${message.body}${media}`
  return message.chatType === "direct" ? text : `${message.senderName ?? message.senderUsername ?? message.senderId}: ${text}`
}

const isModelImage = (attachment: InboundAttachment): boolean => IMAGE_TYPES.has((attachment.contentType ?? "").split(";")[0]?.trim() ?? "")

/**
 * Downloads the message's image attachments for the model (at most 4, each at
 * most 5 MiB, as announced and as read). An image that cannot be had is left
 * out with the reason, which goes into the text instead; the turn still runs.
 */
export const fetchImages = (message: InboundMessage) =>
  Effect.gen(function*() {
    const images: Array<ImagePart> = []
    const notes = new Map<string, string>()
    for (const attachment of message.attachments.filter(isModelImage)) {
      if (images.length >= MAX_IMAGES) {
        notes.set(attachment.url, `not shown: at most ${MAX_IMAGES} images per message`)
        continue
      }
      if ((attachment.size ?? 0) > MAX_IMAGE_BYTES) {
        notes.set(attachment.url, `not shown: larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB`)
        continue
      }
      const bytes = yield* Effect.tryPromise({
        try: async (signal) => {
          const response = await fetch(attachment.url, { signal })
          if (!response.ok) throw new Error(`HTTP ${response.status}`)
          const body = new Uint8Array(await response.arrayBuffer())
          if (body.byteLength > MAX_IMAGE_BYTES) throw new Error(`larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB`)
          return body
        },
        catch: (error) => (error instanceof Error ? error.message : String(error))
      }).pipe(Effect.timeout("20 seconds"), Effect.result)
      if (bytes._tag === "Failure") {
        notes.set(attachment.url, `could not be downloaded: ${typeof bytes.failure === "string" ? bytes.failure : "timed out"}`)
        continue
      }
      const mimeType = (attachment.contentType ?? "").split(";")[0]?.trim() ?? ""
      images.push({ type: "image", mimeType, data: Buffer.from(bytes.success).toString("base64") })
    }
    return { images, notes }
  })

export const pairingText = (message: InboundMessage, code: string): string =>
  [
    "BeamClaw: access not configured.",
    "",
    `Your Discord user id: ${message.senderId}`,
    "",
    `Pairing code: ${code}`,
    "",
    "Ask the bot owner to approve with:",
    `beamclaw pairing approve ${message.channel} ${code}`
  ].join("\n")

export const HELP_TEXT = [
  "Commands:",
  "/new [model] [message] — start a fresh session (the message is its first)",
  "/reset [message] — reset this session",
  "/status — show this session",
  "/stop — stop the running reply",
  "/model [provider/model] — show or set the model",
  "/think [off|minimal|low|medium|high|xhigh] — show or set thinking",
  "/compact [instructions] — summarise the older part of this conversation now",
  "/help — this list"
].join("\n")

/** OpenClaw's session of a native command's invoker (`agent:<a>:discord:slash:<userId>`); the command targets the routed session. */
export const nativeCommandSessionKey = (agentId: string, channel: string, senderId: string): string => `agent:${agentId}:${channel}:slash:${senderId}`

/** A native command whose turn had nothing to say (the model answered NO_REPLY): its deferred answer is filled with this. */
export const SILENT_NATIVE_TEXT = "✅ Done (no reply)."

/**
 * The lane (and journal session key) of a refused native command's answer; such a command is never run.
 * The kind follows (`pair:` the pairing text, `drop:` not authorized), so a replay answers the same way.
 */
const REFUSAL_LANE = "refusal:"
const PAIR_REFUSAL_LANE = `${REFUSAL_LANE}pair:`
const DROP_REFUSAL_LANE = `${REFUSAL_LANE}drop:`

/** The answer to a native command from someone who may not use it. */
export const NOT_AUTHORIZED_TEXT = "⛔ You are not authorized to use this command."

/** An outbound message could not be sent (no such channel or account, not connected, a bad target, or the platform refused). */
export class ChannelSendFailed extends Schema.TaggedError<ChannelSendFailed>()("ChannelSendFailed", {
  message: Schema.String,
  code: Schema.Literals(["CHANNEL_NOT_CONFIGURED", "NOT_CONNECTED", "INVALID_TARGET", "SEND_FAILED"])
}) {}

export interface OutboundRequest {
  readonly channel: string
  readonly accountId: string
  /** `channel:<id>`, `user:<id>`, `<@id>`, or a bare channel id. */
  readonly to: string
  readonly text: string
  /** http(s) URLs of files to attach (downloaded here, each at most MAX_OUTBOUND_FILE_BYTES). */
  readonly mediaUrls?: ReadonlyArray<string> | undefined
  /**
   * Set when `text` is a model's final reply (WS `agent` with deliver): its
   * `MEDIA:` lines become attachments from this session's agent workspace,
   * and a reference that cannot be attached becomes a note.
   */
  readonly replyOfSession?: string | undefined
  readonly idempotencyKey: string
}

export { MAX_OUTBOUND_FILE_BYTES } from "./ReplyMedia.ts"

/** Downloads the files to attach; any that cannot be had fails the send with the reason (nothing is sent). */
const downloadFiles = (urls: ReadonlyArray<string>) =>
  Effect.forEach(urls, (raw, index) =>
    Effect.gen(function*() {
      const url = URL.canParse(raw) ? new URL(raw) : undefined
      if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
        return yield* new ChannelSendFailed({ code: "INVALID_TARGET", message: `media ${JSON.stringify(raw)} is not an http(s) URL` })
      }
      return yield* ReplyMedia.downloadFile(url, index).pipe(
        Effect.mapError((reason) => new ChannelSendFailed({ code: "SEND_FAILED", message: `media ${url.href} could not be downloaded: ${reason}` }))
      )
    }))

/**
 * The pieces of a reply: its text cut by the chunker, the files on the last
 * text piece (or on an empty one when there is no text), then the notes on
 * files that could not be attached, under keys of their own. The keys depend
 * only on the text, so a replay cuts the same pieces under the same keys.
 */
export const replyPieces = (input: {
  readonly target: { readonly chatId: string }
  readonly text: string
  readonly files: ReadonlyArray<OutboundFile>
  readonly notes: ReadonlyArray<string>
  readonly chunk: ChannelJournal.Chunking
  readonly key: string
  readonly replyTo?: ((index: number) => string | undefined) | undefined
}): Array<OutboundMessage> => {
  const texts = chunkDiscordText(input.text, input.chunk)
  const bodies = texts.length === 0 && input.files.length > 0 ? [""] : texts
  const pieces: Array<OutboundMessage> = bodies.map((text, index) => ({
    target: input.target,
    text,
    ...(index === bodies.length - 1 && input.files.length > 0 ? { files: input.files } : {}),
    idempotencyKey: `${input.key}:${index}`,
    replyTo: input.replyTo?.(index)
  }))
  const notes = input.notes.length === 0 ? [] : chunkDiscordText(input.notes.join("\n"), input.chunk)
  for (const [index, text] of notes.entries()) pieces.push({ target: input.target, text, idempotencyKey: `${input.key}:notes:${index}` })
  return pieces
}

/** Discord targets, as OpenClaw: `user:<id>` and `<@id>` are DMs, `channel:<id>` and a bare id are channels. */
export const parseTarget = (to: string): { readonly kind: "user" | "channel"; readonly id: string } | undefined => {
  const trimmed = to.trim().replace(/^discord:/, "")
  const mention = /^<@!?(\d+)>$/.exec(trimmed)
  if (mention?.[1] !== undefined) return { kind: "user", id: mention[1] }
  const prefixed = /^(user|channel):(\d+)$/.exec(trimmed)
  if (prefixed?.[1] !== undefined && prefixed[2] !== undefined) return { kind: prefixed[1] === "user" ? "user" : "channel", id: prefixed[2] }
  if (/^\d+$/.test(trimmed)) return { kind: "channel", id: trimmed }
  return undefined
}

export class ChannelHost extends Context.Service<ChannelHost, {
  /**
   * Sends a message through a bound account (WS `send`): chunked, each piece
   * once per idempotency key, retried, dead-lettered when it cannot go.
   */
  readonly send: (request: OutboundRequest) => Effect.Effect<{ readonly chatId: string; readonly messageIds: ReadonlyArray<string> }, ChannelSendFailed>
  /**
   * Opens an account's journal and returns its endpoint for the connection.
   * Messages left unfinished by an earlier run are resumed once a connection attaches.
   */
  readonly bind: (channel: string, accountId: string, settings: Effect.Effect<AccountSettings>) => Effect.Effect<AccountEndpoint, never, Scope.Scope>
}>()("beamclaw/channels/ChannelHost") {
  /** `journal`: how the accounts' journals are opened (a test hands in a failing disk). */
  static readonly layerWith = (options: { readonly journal?: ChannelJournal.OpenOptions } = {}) => Layer.effect(ChannelHost, Effect.gen(function*() {
    const sessions = yield* Sessions
    const pairing = yield* PairingStore
    const dedupe = yield* InboundDedupe
    const appConfig = yield* AppConfig
    const paths = yield* Paths
    // Journals live as long as the host (an account is bound once per process), not as one account run. Their
    // scope is made before the lanes' set and grace wait, so it is closed after them: every lane has ended
    // (finished or interrupted) before a journal it writes to closes.
    const journalScope = yield* Scope.fork(yield* Effect.scope)
    const laneFibers = yield* FiberSet.make<unknown, unknown>()
    /** Lanes in the middle of a job on a connection: the ones worth waiting for at shutdown. */
    let busyLanes = 0
    // Registered after the set, so it runs first: lanes still at work get the grace, then the set interrupts
    // the rest (lanes waiting for a connection that is gone), then the journals close.
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        if (busyLanes === 0) return
        yield* Effect.logInfo(`channels: waiting up to ${SHUTDOWN_GRACE_MS / 1000}s for ${busyLanes} conversation(s) to finish`)
        const deadline = (yield* Clock.currentTimeMillis) + SHUTDOWN_GRACE_MS
        while (busyLanes > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("50 millis")
        if (busyLanes > 0) yield* Effect.logWarning(`channels: ${busyLanes} conversation(s) did not finish in time and are stopped; they are finished after the restart`)
      })
    )

    const agents = yield* AgentDirectory

    const bound = new Map<string, { readonly current: () => Deferred.Deferred<ChannelConnection>; readonly journal: ChannelJournal.ChannelJournal; readonly settings: Effect.Effect<AccountSettings> }>()

    /**
     * A model's reply split from its `MEDIA:` lines, and the files they name
     * read from the session's agent workspace or `<state>/media` (or fetched);
     * what cannot be attached is a note. Read again at every delivery, so a
     * replayed reply is cut the same way.
     */
    const replyMedia = (text: string, sessionKey: string) =>
      Effect.gen(function*() {
        const split = ReplyMedia.splitReplyMedia(text)
        if (split.media.length === 0) return { text, files: [], notes: [] }
        const parsed = SessionKey.parse(sessionKey)
        const agentId = Result.isSuccess(parsed) ? parsed.success.agentId : yield* agents.defaultAgentId
        const mediaDir = path.join(paths.home, "media")
        const workspace = yield* agents.settings(agentId).pipe(Effect.map((settings) => settings.workspace), Effect.catch(() => Effect.succeed(mediaDir)))
        const resolved = yield* ReplyMedia.resolveReplyMedia(split.media, { workspace, mediaDir })
        if (resolved.notes.length > 0) yield* Effect.logWarning(`reply of ${sessionKey}: ${resolved.notes.join(" ")}`)
        return { text: split.text, ...resolved }
      })

    const send = (request: OutboundRequest) =>
      Effect.gen(function*() {
        const account = bound.get(`${request.channel}:${request.accountId}`)
        if (account === undefined) {
          return yield* new ChannelSendFailed({ code: "CHANNEL_NOT_CONFIGURED", message: `no ${request.channel} account "${request.accountId}" is running (enable it under channels.${request.channel})` })
        }
        const deferred = account.current()
        if (!Deferred.isDoneUnsafe(deferred)) {
          return yield* new ChannelSendFailed({ code: "NOT_CONNECTED", message: `${request.channel}:${request.accountId} is not connected right now (see channels.status)` })
        }
        const conn = yield* Deferred.await(deferred)
        const target = parseTarget(request.to)
        if (target === undefined) {
          return yield* new ChannelSendFailed({ code: "INVALID_TARGET", message: `cannot send to ${JSON.stringify(request.to)}: expected channel:<id>, user:<id> or <@id>` })
        }
        const chat = target.kind === "channel"
          ? { chatId: target.id }
          : yield* conn.openDirect(target.id).pipe(Effect.mapError((error) => new ChannelSendFailed({ code: "SEND_FAILED", message: `cannot open a DM with ${target.id}: ${error.message}` })))
        const settings = yield* account.settings
        const requested = yield* downloadFiles(request.mediaUrls ?? [])
        const reply = request.replyOfSession === undefined ? { text: request.text, files: [], notes: [] } : yield* replyMedia(request.text, request.replyOfSession)
        const pieces = replyPieces({
          target: chat,
          text: reply.text,
          files: [...requested, ...reply.files],
          notes: reply.notes,
          chunk: { maxChars: settings.textChunkLimit, maxLines: settings.maxLinesPerMessage },
          key: `${request.channel}:${request.accountId}:send:${request.idempotencyKey}`
        })
        if (pieces.length === 0) return yield* new ChannelSendFailed({ code: "INVALID_TARGET", message: "nothing to send: the message is empty" })
        const results = yield* deliver(conn, account.journal, pieces)
        const failed = results.find((result) => result.error !== undefined)
        if (failed !== undefined) return yield* new ChannelSendFailed({ code: "SEND_FAILED", message: `${request.channel} refused the message: ${failed.error}` })
        return { chatId: chat.chatId, messageIds: results.flatMap((result) => result.messageId === undefined ? [] : [result.messageId]) }
      })

    // One binding per account for the life of the process: a restarted connection finds its journal, its
    // conversations (lanes) and what the last connection left unsent where it left them.
    const endpoints = new Map<string, { readonly endpoint: AccountEndpoint; readonly setSettings: (settings: Effect.Effect<AccountSettings>) => void }>()
    const lock = yield* Semaphore.make(1)

    const bind = (channel: string, accountId: string, settings: Effect.Effect<AccountSettings>) =>
      lock.withPermits(1)(Effect.gen(function*() {
        const existing = endpoints.get(`${channel}:${accountId}`)
        if (existing !== undefined) {
          existing.setSettings(settings)
          return existing.endpoint
        }
        const made = yield* makeEndpoint(channel, accountId, settings)
        endpoints.set(`${channel}:${accountId}`, made)
        return made.endpoint
      }))

    const makeEndpoint = (channel: string, accountId: string, initialSettings: Effect.Effect<AccountSettings>) =>
      Effect.gen(function*() {
        let currentSettings = initialSettings
        const settingsOf = Effect.suspend(() => currentSettings)
        const journal = yield* ChannelJournal.open(paths.home, channel, accountId, options.journal ?? {}).pipe(Scope.provide(journalScope))
        let connection = yield* Deferred.make<ChannelConnection>()
        // Outbound `send` finds the account here.
        bound.set(`${channel}:${accountId}`, { current: () => connection, journal, settings: settingsOf })
        let attachedOnce = false
        /** The connection attached now, if any: a reply that failed after it went away is left for the next run. */
        let live: ChannelConnection | undefined
        let knownSelfId: string | undefined
        const lanes = new Map<string, Array<Job>>()
        let botLoopSettings: BotLoopSettings = resolveBotLoopSettings()
        const botLoop = makeBotLoopGuard(() => botLoopSettings)

        const chunkingNow = Effect.map(settingsOf, (settings): ChannelJournal.Chunking => ({ maxChars: settings.textChunkLimit, maxLines: settings.maxLinesPerMessage }))

        /** `mediaOf`: the text is a model's reply in that session, whose `MEDIA:` lines become attachments. */
        const send = (conn: ChannelConnection, job: Job, text: string, replyTo: "first" | "all" | "off", key: string, chunk?: ChannelJournal.Chunking, mediaOf?: string) =>
          Effect.gen(function*() {
            const cut = chunk ?? (yield* chunkingNow)
            const reply = mediaOf === undefined ? { text, files: [], notes: [] } : yield* replyMedia(text, mediaOf)
            const interaction = job.message.interaction
            const pieces = replyPieces({
              target: { chatId: job.message.chatId },
              ...reply,
              chunk: cut,
              key,
              replyTo: (index) => interaction === undefined && (replyTo === "all" || (replyTo === "first" && index === 0)) ? job.message.messageId : undefined
            })
            // A native command is answered through its interaction: the first piece fills the deferred answer
            // (an edit, safe to repeat); the others are follow-ups, which Discord cannot de-duplicate, so each
            // is posted at most once.
            return yield* deliver(conn, journal, interaction === undefined ? pieces : pieces.map((piece, index) => ({
              ...piece,
              interaction: { ...interaction, createdAt: job.message.timestamp, original: index === 0 },
              ...(index === 0 ? {} : { atMostOnce: true })
            })))
          })

        /**
         * The session remembers where this message came from (its last route),
         * unless main-DM pinning says a DM from someone other than the owner
         * must not move the main session's route.
         */
        const recordRoute = (job: Extract<Job, { _tag: "Turn" }>) =>
          Effect.gen(function*() {
            const settings = yield* settingsOf
            const route = resolveAgentRoute(routeInputOf(job.message), routeConfigOf(yield* appConfig.get))
            const mainSessionKey = Result.isSuccess(route) ? route.success.mainSessionKey : undefined
            if (!updatesLastRoute({ message: job.message, sessionKey: job.sessionKey, mainSessionKey: mainSessionKey ?? "", allowFrom: settings.policy.allowFrom })) return
            yield* sessions.patch(job.sessionKey, { lastRoute: routeOf(job.message) }).pipe(
              Effect.catch((error) => Effect.logWarning(`channel ${channel}:${accountId}: could not record the last route of ${job.sessionKey}: ${describe(error)}`))
            )
          })

        /** Typing until the scope closes; failures only mean no indicator. */
        const typingWhile = (conn: ChannelConnection, chatId: string) =>
          Effect.forkScoped(Effect.forever(conn.typing({ chatId }).pipe(Effect.ignore, Effect.andThen(Effect.sleep(TYPING_REFRESH)))))

        const runTurn = (conn: ChannelConnection, job: Extract<Job, { _tag: "Turn" }>) =>
          Effect.scoped(Effect.gen(function*() {
            // A native command's deferred answer already shows that the bot is working, and it has no message to react to.
            const native = job.message.interaction !== undefined
            if (!native) yield* typingWhile(conn, job.message.chatId)
            if (!native && job.mentioned && job.message.chatType !== "direct") {
              yield* conn.react({ chatId: job.message.chatId }, job.message.messageId, ACK_REACTION).pipe(Effect.ignore)
            }
            const { images, notes } = yield* fetchImages(job.message)
            const input = {
              runId: `${channel}:${job.message.messageId}`,
              text: bodyForAgent(job.message, notes),
              ...(images.length === 0 ? {} : { images }),
              ...(job.newSession === undefined ? {} : { newSession: job.newSession })
            }
            return yield* sessions.send(job.sessionKey, input).pipe(
              Stream.runFold(() => "", (text, event) => event._tag === "TurnCompleted" ? event.text : text),
              Effect.map((text): { readonly text: string; readonly aborted: boolean } => ({ text, aborted: false })),
              Effect.catchTag("TurnAborted", () => Effect.succeed({ text: "", aborted: true })),
              Effect.catch((error) => Effect.succeed({ text: `⚠️ Sorry, that did not work: ${describe(error)}`, aborted: false }))
            )
          }))

        const command = (job: Extract<Job, { _tag: "Command" }>) =>
          Effect.gen(function*() {
            const key = job.route.sessionKey
            const c = job.command
            switch (c._tag) {
              case "Help":
                return HELP_TEXT
              case "New":
              case "Reset": {
                // A message after the command runs as a turn instead (freshTurn); here only the reset and the model.
                const model = c._tag === "New" ? resolveNewArgs(c.args, modelCatalogOf(yield* appConfig.get, job.route.agentId)).model : undefined
                yield* sessions.reset(key)
                if (model !== undefined) {
                  yield* sessions.patch(key, { modelOverride: model })
                  return `✅ New session started with ${model}.`
                }
                return c._tag === "New" ? "✅ New session started." : "✅ Session reset."
              }
              case "Stop":
                return (yield* sessions.abort(key)) ? "⏹️ Stopped." : "Nothing is running."
              case "Model": {
                if (c.name === undefined) {
                  const row = (yield* sessions.list(job.route.agentId)).find((r) => r.key === key)
                  return `Model: ${row?.entry.model ?? "the agent's default"}`
                }
                yield* sessions.patch(key, { modelOverride: c.name })
                return `✅ Model set to ${c.name}.`
              }
              case "Think": {
                if (c.unknownLevel !== undefined) return `Unknown thinking level "${c.unknownLevel}". Use off, minimal, low, medium, high or xhigh.`
                if (c.level === undefined) {
                  const row = (yield* sessions.list(job.route.agentId)).find((r) => r.key === key)
                  return `Thinking: ${row?.entry.thinkingLevel ?? "the agent's default"}`
                }
                yield* sessions.patch(key, { thinkingLevel: c.level })
                return `✅ Thinking set to ${c.level}.`
              }
              case "Status": {
                const row = (yield* sessions.list(job.route.agentId)).find((r) => r.key === key)
                if (row === undefined) return `Session ${key} (agent ${job.route.agentId}) has no messages yet.`
                return [
                  `Session ${key} (agent ${job.route.agentId})`,
                  `Model: ${row.entry.model ?? "the agent's default"}${row.entry.thinkingLevel === undefined ? "" : ` · thinking ${row.entry.thinkingLevel}`}`,
                  `Tokens: ${row.entry.totalTokens} (in ${row.entry.inputTokens}, out ${row.entry.outputTokens})`,
                  ...(row.entry.compactionCount > 0 ? [`🧹 Compactions: ${row.entry.compactionCount}`] : [])
                ].join("\n")
              }
              case "Compact": {
                const outcome = yield* sessions.compact(key, c.instructions).pipe(
                  Effect.mapError((error) => new Error(`Compaction failed, the conversation is unchanged: ${describe(error)}`))
                )
                if (!outcome.compacted) {
                  return outcome.reason === "already compacted"
                    ? "Nothing to compact yet: nothing was said since the last compaction."
                    : outcome.reason === "no transcript"
                    ? "Nothing to compact yet: this conversation is empty."
                    : "Nothing to compact yet: the conversation still fits in the recent part that compaction keeps."
                }
                return `✅ Compacted: ${outcome.summarisedTokens.toLocaleString("en-US")} tokens summarised (context about ${outcome.tokensBefore.toLocaleString("en-US")} → ${outcome.tokensAfter.toLocaleString("en-US")} tokens).`
              }
            }
          }).pipe(Effect.catch((error) => Effect.succeed(`⚠️ ${describe(error)}`)))

        /**
         * `/new [model] <message>` and `/reset <message>`: the message is the
         * fresh session's first turn. It goes down the Turn path under the
         * command's journal id (reply recorded, then delivered under the reply's
         * keys), and the reset rides in the turn's own envelope, so nothing runs
         * between them. A crash before the reply was recorded replays the
         * command, which resets and asks again: answered once, never lost.
         */
        const freshTurn = (job: Extract<Job, { _tag: "Command" }>) =>
          Effect.gen(function*() {
            const c = job.command
            const split: { readonly model?: string | undefined; readonly message?: string | undefined } = c._tag === "New"
              ? resolveNewArgs(c.args, modelCatalogOf(yield* appConfig.get, job.route.agentId))
              : c._tag === "Reset" ? { message: c.message } : {}
            if (split.message === undefined) return undefined
            const turn: Extract<Job, { _tag: "Turn" }> = {
              _tag: "Turn",
              id: job.id,
              message: { ...job.message, body: split.message },
              sessionKey: job.route.sessionKey,
              mentioned: job.message.wasMentioned,
              reply: undefined,
              newSession: split.model === undefined ? {} : { model: split.model }
            }
            return turn
          })

        /**
         * Whether a delivered job is finished. Pieces that failed while this
         * connection was still the live one are final (dead-lettered); pieces that
         * failed because the connection went away (a stop, a restart) leave the job
         * open in the journal, and the next run sends what is missing.
         */
        const finished = (conn: ChannelConnection, job: Job, results: ReadonlyArray<PieceResult>, retry: Extract<Job, { _tag: "Deliver" }>, lane: string) =>
          Effect.gen(function*() {
            if (results.every((result) => result.error === undefined) || live === conn) return true
            yield* Effect.logWarning(`channel ${channel}:${accountId}: the reply to ${job.message.messageId} could not be sent before the connection closed; it goes out when the account is connected again`)
            yield* enqueue(lane, retry)
            return false
          })

        const process = (job: Job): Effect.Effect<void> =>
          Effect.gen(function*() {
            const conn = yield* Deferred.await(connection)
            busyLanes++
            yield* Effect.addFinalizer(() => Effect.sync(() => busyLanes--))
            const settings = yield* settingsOf
            switch (job._tag) {
              case "Turn": {
                let reply = job.reply
                let chunk = job.chunk
                if (reply === undefined) {
                  yield* recordRoute(job)
                  const result = yield* runTurn(conn, job)
                  if (result.aborted) return yield* journal.done(job.id)
                  reply = result.text
                  chunk = yield* chunkingNow
                  if (!(yield* recordReply(job.id, job.message, reply, chunk))) return
                }
                const silent = reply.trim() === "" || reply.trim().toUpperCase() === SILENT_TOKEN
                // A native command's deferred answer says "thinking…" until it is filled, so silence gets a word too.
                if (silent && job.message.interaction !== undefined) reply = SILENT_NATIVE_TEXT
                if (!silent || job.message.interaction !== undefined) {
                  const key = `${channel}:${accountId}:${job.id}:reply`
                  const results = yield* send(conn, job, reply, settings.replyToMode, key, chunk, job.sessionKey)
                  const retry = { _tag: "Deliver" as const, id: job.id, message: job.message, text: reply, key, replyTo: settings.replyToMode, chunk, mediaOf: job.sessionKey }
                  if (!(yield* finished(conn, job, results, retry, job.sessionKey))) return
                }
                return yield* journal.done(job.id)
              }
              case "Command": {
                const turn = yield* freshTurn(job)
                if (turn !== undefined) return yield* process(turn)
                // A summary takes a model call: typing meanwhile, as for a turn.
                const text = job.command._tag === "Compact" && job.message.interaction === undefined
                  ? yield* Effect.scoped(Effect.andThen(typingWhile(conn, job.message.chatId), command(job)))
                  : yield* command(job)
                const key = `${channel}:${accountId}:${job.id}:command`
                const chunk = yield* chunkingNow
                const results = yield* send(conn, job, text, "off", key, chunk)
                const retry = { _tag: "Deliver" as const, id: job.id, message: job.message, text, key, replyTo: "off" as const, chunk }
                if (!(yield* finished(conn, job, results, retry, job.route.sessionKey))) return
                return yield* journal.done(job.id)
              }
              case "Deliver": {
                const results = yield* send(conn, job, job.text, job.replyTo, job.key, job.chunk, job.mediaOf)
                if (!(yield* finished(conn, job, results, job, `deliver:${job.id}`))) return
                return yield* journal.done(job.id)
              }
              case "Notice":
                yield* send(conn, job, job.text, "off", job.key)
                return
            }
          }).pipe(
            Effect.scoped,
            // A job never takes its lane down: whatever escaped is logged, and the job stays in the journal for a restart.
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logError(`channel ${channel}:${accountId}: job ${job.id} failed`, cause)
            )
          )

        /** Queues a job on its lane, starting the lane's worker if it is idle. */
        const enqueue = (lane: string, job: Job): Effect.Effect<void> =>
          Effect.suspend(() => {
            const queued = lanes.get(lane)
            if (queued !== undefined) {
              queued.push(job)
              return Effect.void
            }
            const jobs: Array<Job> = [job]
            lanes.set(lane, jobs)
            // The lane leaves the map in the same synchronous step that finds it empty, so a job
            // enqueued meanwhile either lands in this queue before the check or starts a new lane.
            const release = () => {
              if (lanes.get(lane) === jobs) lanes.delete(lane)
            }
            const worker = Effect.gen(function*() {
              while (true) {
                const next = jobs.shift()
                if (next === undefined) return release()
                yield* process(next)
              }
            }).pipe(Effect.ensuring(Effect.sync(release)))
            return Effect.asVoid(FiberSet.run(laneFibers, worker))
          })

        const again = (message: InboundMessage) => Effect.logInfo(`channel ${channel}:${accountId}: message ${message.messageId} was delivered again; answered once`)

        /**
         * The answer to a native command from a DM sender who is not paired yet:
         * the pairing code of their request (created now, or still pending, shown
         * again since the deferred answer must say something and only they see it),
         * or "not authorized" when no request can be made (too many pending).
         */
        const pairingAnswer = (message: InboundMessage) =>
          Effect.gen(function*() {
            const request = yield* pairing.upsertRequest({ channel, accountId, senderId: message.senderId, name: message.senderName }).pipe(
              Effect.catch((error) => Effect.as(Effect.logError(`pairing request failed: ${describe(error)}`), undefined))
            )
            if (request?.code !== undefined) return pairingText(message, request.code)
            if (request !== undefined) yield* Effect.logWarning(`channel ${channel}:${accountId}: pairing request from ${message.senderId} refused (too many pending requests)`)
            return NOT_AUTHORIZED_TEXT
          })

        /**
         * Journals an accepted message. When the record cannot be written the
         * message is not marked seen and gets no answer: an answer the journal
         * cannot vouch for could be given twice after a restart, while a
         * redelivery of an unanswered message is tried again.
         */
        const accept = (id: string, sessionKey: string, message: InboundMessage) =>
          journal.accepted(id, sessionKey, message).pipe(
            Effect.as(true),
            Effect.catch((error) =>
              Effect.as(
                Effect.logError(`channel ${channel}:${accountId}: message ${message.messageId} from ${message.senderId} in ${message.chatId} is NOT answered: the journal could not record it (${error.message}); it is not marked seen, so a redelivery is tried again`),
                false
              )
            )
          )

        /**
         * Records a reply before it is sent. When it cannot be recorded it is not
         * sent: the message stays open, and a restart finishes it (asks again)
         * instead of a restart answering a second time.
         */
        const recordReply = (id: string, message: InboundMessage, text: string, chunk: ChannelJournal.Chunking) =>
          journal.replied(id, text, chunk).pipe(
            Effect.as(true),
            Effect.catch((error) =>
              Effect.as(
                Effect.logError(`channel ${channel}:${accountId}: the reply to message ${message.messageId} in ${message.chatId} is NOT sent: the journal could not record it (${error.message}); it is finished after a restart`),
                false
              )
            )
          )

        const receive = (message: InboundMessage) =>
          Effect.gen(function*() {
            const settings = yield* settingsOf
            const config = yield* appConfig.get
            // Pairing approvals count for DMs only, so guild traffic never reads the pairing files.
            const paired = message.chatType !== "direct" ? [] : yield* pairing.allowFrom(channel, accountId).pipe(
              Effect.catch((error) => Effect.as(Effect.logError(`pairing store unreadable: ${describe(error)}`), []))
            )
            // The bot's id from the last connection: it does not change, and it must not be lost while a
            // stopping connection drains (mention gating needs it).
            const selfId = knownSelfId
            const verdict = preflight({ message, policy: settings.policy, routeConfig: routeConfigOf(config), pairedAllowFrom: paired, botUserId: selfId })
            if (message.interaction !== undefined && (verdict._tag === "Drop" || verdict._tag === "Pair")) {
              // A native command always gets an answer (Discord shows "thinking…" until it does). Under DM pairing,
              // as OpenClaw, the pairing code (the same pending-request rules as a DM); otherwise its "not authorized".
              // Journaled with its answer like any reply, so a restart still fills the deferred answer, once.
              const id = `${message.chatId}:${message.messageId}`
              if (journal.isOpen(id)) return yield* again(message)
              const text = verdict._tag === "Pair" ? yield* pairingAnswer(message) : NOT_AUTHORIZED_TEXT
              const reason = verdict._tag === "Pair" ? "pairing" : verdict.reason
              yield* Effect.logInfo(`channel ${channel}:${accountId}: refused native command ${message.body.split(/\s/)[0] ?? ""} from ${message.senderId} (${reason})`)
              const lane = `${verdict._tag === "Pair" ? PAIR_REFUSAL_LANE : DROP_REFUSAL_LANE}${id}`
              if (!(yield* accept(id, lane, message))) return
              if (!(yield* dedupe.firstSeen(dedupeKeyOf(message)))) {
                yield* journal.done(id)
                return yield* again(message)
              }
              const chunk = yield* chunkingNow
              if (!(yield* recordReply(id, message, text, chunk))) return
              return yield* enqueue(lane, { _tag: "Turn", id, message, sessionKey: lane, mentioned: false, reply: text, chunk })
            }
            if (verdict._tag === "Drop") {
              return yield* Effect.logDebug(`channel ${channel}:${accountId}: ignored message ${message.messageId} (${verdict.reason}${verdict.detail === undefined ? "" : `: ${verdict.detail}`})`)
            }
            if (message.isBot && selfId !== undefined) {
              // Two bots answering each other would never stop: a budget per pair of bots in a conversation.
              botLoopSettings = settings.botLoop
              const loop = yield* checkBotLoop(botLoop, botPairKey({ accountId, chatId: message.chatId, botA: selfId, botB: message.senderId }))
              if (!loop.allow) return yield* Effect.logWarning(`channel ${channel}:${accountId}: ignored bot ${message.senderId} in ${message.chatId} (bot-loop protection: ${loop.reason})`)
            }
            const id = `${message.chatId}:${message.messageId}`
            if (verdict._tag === "Pair") {
              if (!(yield* dedupe.firstSeen(dedupeKeyOf(message)))) return yield* again(message)
            } else {
              // Journaled before it is marked seen: a crash in between leaves it in the journal, finished after
              // the restart (which marks it seen then), never marked seen and lost.
              if (journal.isOpen(id)) return yield* again(message)
              if (!(yield* accept(id, verdict.route.sessionKey, message))) return
              if (!(yield* dedupe.firstSeen(dedupeKeyOf(message)))) {
                yield* journal.done(id)
                return yield* again(message)
              }
            }
            switch (verdict._tag) {
              case "Pair": {
                const request = yield* pairing.upsertRequest({ channel, accountId, senderId: message.senderId, name: message.senderName }).pipe(
                  Effect.catch((error) => Effect.as(Effect.logError(`pairing request failed: ${describe(error)}`), undefined))
                )
                if (request?.code !== undefined) {
                  // Keyed by the code, so each code is sent once (across restarts too) and a send that failed
                  // is tried again on the sender's next message, instead of leaving them without a code for an hour.
                  const key = `${channel}:${accountId}:pairing:${message.senderId}:${request.code}`
                  yield* enqueue(`pairing:${message.senderId}`, { _tag: "Notice", id, message, text: pairingText(message, request.code), key })
                } else if (request !== undefined) {
                  yield* Effect.logWarning(`channel ${channel}:${accountId}: pairing request from ${message.senderId} refused (too many pending requests)`)
                }
                return
              }
              case "Command":
                if (message.interaction !== undefined) {
                  // OpenClaw runs a native command in the invoker's slash session, targeting the routed conversation;
                  // every chat command here acts on its target, so the slash session itself holds nothing.
                  yield* Effect.logDebug(`channel ${channel}:${accountId}: native command in ${nativeCommandSessionKey(verdict.route.agentId, channel, message.senderId)} targets ${verdict.route.sessionKey}`)
                }
                // /stop must reach a running turn, so it does not queue behind it.
                if (verdict.command._tag === "Stop") return yield* enqueue(`stop:${id}`, { _tag: "Command", id, message, command: verdict.command, route: verdict.route })
                return yield* enqueue(verdict.route.sessionKey, { _tag: "Command", id, message, command: verdict.command, route: verdict.route })
              case "Turn":
                return yield* enqueue(verdict.route.sessionKey, { _tag: "Turn", id, message, sessionKey: verdict.route.sessionKey, mentioned: verdict.mentioned, reply: undefined })
            }
          }).pipe(
            Effect.catchCause((cause) =>
              Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : Effect.logError(`channel ${channel}:${accountId}: inbound message ${message.messageId} failed`, cause)
            )
          )

        // Jobs wait here for a live connection; a connection that goes away (its run's scope closes) is withdrawn.
        const attach = (conn: ChannelConnection) =>
          Effect.gen(function*() {
            yield* Effect.acquireRelease(
              Effect.gen(function*() {
                if (Deferred.isDoneUnsafe(connection)) connection = yield* Deferred.make<ChannelConnection>()
                yield* Deferred.succeed(connection, conn)
                live = conn
                if (conn.selfId !== undefined) knownSelfId = conn.selfId
              }),
              () =>
                Effect.gen(function*() {
                  // Released before the platform client is closed: replies being made now get to go out first.
                  const deadline = (yield* Clock.currentTimeMillis) + SHUTDOWN_GRACE_MS
                  if (lanes.size > 0) yield* Effect.logInfo(`channel ${channel}:${accountId}: waiting up to ${SHUTDOWN_GRACE_MS / 1000}s for ${lanes.size} conversation(s) to finish`)
                  while (lanes.size > 0 && (yield* Clock.currentTimeMillis) < deadline) yield* Effect.sleep("50 millis")
                  live = undefined
                  if (Deferred.isDoneUnsafe(connection)) connection = yield* Deferred.make<ChannelConnection>()
                })
            )
            if (attachedOnce) return
            attachedOnce = true
            // What the last run accepted but did not finish: the reply if it was made, else the turn again.
            const config = yield* appConfig.get
            for (const pending of journal.pending) {
              // A redelivery of it from the platform is then a duplicate.
              yield* dedupe.firstSeen(dedupeKeyOf(pending.message))
              yield* Effect.logInfo(`channel ${channel}:${accountId}: finishing message ${pending.message.messageId} accepted before the restart`)
              const command = parseChatCommand(commandBody(pending.message.body))
              // A refused native command is never run: without its recorded answer (a crash between the two
              // records), it is refused again.
              const refused = pending.sessionKey.startsWith(REFUSAL_LANE)
              if (command === undefined || pending.reply !== undefined || refused) {
                // A pairing refusal shows the sender's (pending) code again, as it did the first time.
                const refusal = pending.reply !== undefined || !refused
                  ? undefined
                  : pending.sessionKey.startsWith(PAIR_REFUSAL_LANE)
                  ? yield* pairingAnswer(pending.message)
                  : NOT_AUTHORIZED_TEXT
                yield* enqueue(pending.sessionKey, {
                  _tag: "Turn",
                  id: pending.id,
                  message: pending.message,
                  sessionKey: pending.sessionKey,
                  mentioned: false,
                  reply: pending.reply ?? refusal,
                  chunk: pending.chunk
                })
                continue
              }
              // A command is a command again, not a prompt; a /stop has nothing left to stop.
              const route = resolveAgentRoute(routeInputOf(pending.message), routeConfigOf(config))
              if (command._tag === "Stop" || Result.isFailure(route)) {
                yield* journal.done(pending.id)
                continue
              }
              yield* enqueue(route.success.sessionKey, { _tag: "Command", id: pending.id, message: pending.message, command, route: route.success })
            }
          })

        return {
          endpoint: { receive, attach } satisfies AccountEndpoint,
          setSettings: (next: Effect.Effect<AccountSettings>) => {
            currentSettings = next
          }
        }
      })

    return ChannelHost.of({ bind, send })
  }))

  static readonly layer = ChannelHost.layerWith()
}

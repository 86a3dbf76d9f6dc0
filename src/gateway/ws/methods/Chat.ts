/**
 * chat.send / chat.history / chat.abort / chat.inject, agent / agent.wait,
 * and send (openclaw-gateway.md §2.12.2-§2.12.3).
 */
import { Deferred, Duration, Effect, Schema } from "effect"
import type { ImagePart, Message } from "../../../agent/Message.ts"
import { AgentDirectory } from "../../../agent/AgentDirectory.ts"
import { AppConfig } from "../../../config/AppConfig.ts"
import type { ThinkingLevel } from "../../../provider/Provider.ts"
import { ChannelHost } from "../../../channels/ChannelHost.ts"
import { Sessions } from "../../../session/Sessions.ts"
import type * as Transcript from "../../../session/Transcript.ts"
import { invalidRequest, MethodError, unavailable } from "../Frames.ts"
import type { Hub, RunRecord } from "../Hub.ts"
import * as Runs from "../Runs.ts"
import { decodeParams, type Handler, type MethodContext, NonEmptyString, resolveModel, resolveSessionKey, sessionError } from "./Method.ts"

const MAX_ATTACHMENT_BYTES = 5_000_000
const HISTORY_TEXT_LIMIT = 12_000
const HISTORY_MESSAGE_LIMIT_BYTES = 128 * 1024
const HISTORY_TOTAL_LIMIT_BYTES = 6 * 1024 * 1024
const STOP_COMMANDS = new Set(["/stop", "/abort"])

const SessionKeyParam = NonEmptyString.check(Schema.isMaxLength(512))

const Attachment = Schema.Struct({
  type: Schema.optionalKey(Schema.String),
  mimeType: Schema.optionalKey(Schema.String),
  fileName: Schema.optionalKey(Schema.String),
  content: Schema.String
})

const ChatSendParams = Schema.Struct({
  sessionKey: SessionKeyParam,
  message: Schema.String,
  thinking: Schema.optionalKey(Schema.String),
  deliver: Schema.optionalKey(Schema.Boolean),
  attachments: Schema.optionalKey(Schema.Array(Attachment)),
  timeoutMs: Schema.optionalKey(Schema.Number),
  sessionId: Schema.optionalKey(Schema.String),
  idempotencyKey: NonEmptyString
})

/** OpenClaw's message hygiene: NFC, no NUL, control characters other than tab and newlines stripped. */
export const sanitizeMessage = (message: string): Effect.Effect<string, MethodError> => {
  if (message.includes("\u0000")) return Effect.fail(invalidRequest("message must not contain null bytes"))
  // eslint-disable-next-line no-control-regex
  return Effect.succeed(message.normalize("NFC").replace(/[\u0001-\u0008\u000b\u000c\u000e-\u001f\u007f]/g, ""))
}

const decodeAttachments = (attachments: ReadonlyArray<typeof Attachment.Type>): Effect.Effect<ReadonlyArray<ImagePart>, MethodError> =>
  Effect.forEach(attachments, (attachment, index) => {
    const mimeType = attachment.mimeType ?? ""
    if (!mimeType.startsWith("image/")) {
      return Effect.fail(invalidRequest(`attachments[${index}]: only image attachments are supported (got ${mimeType === "" ? "no mimeType" : mimeType})`))
    }
    const data = attachment.content.replace(/^data:[^,]*,/, "")
    const bytes = Buffer.from(data, "base64")
    if (bytes.length === 0) return Effect.fail(invalidRequest(`attachments[${index}]: content is not base64 data`))
    if (bytes.length > MAX_ATTACHMENT_BYTES) return Effect.fail(invalidRequest(`attachments[${index}]: ${bytes.length} bytes is over the ${MAX_ATTACHMENT_BYTES}-byte limit`))
    return Effect.succeed({ type: "image" as const, data: bytes.toString("base64"), mimeType })
  })

const runningRunsOf = (hub: Hub, sessionKey: string): ReadonlyArray<RunRecord> =>
  [...hub.runs.values()].filter((run) => run.sessionKey === sessionKey && run.status === "running")

const chatSend: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("chat.send", ChatSendParams, params)
    const key = yield* resolveSessionKey(decoded.sessionKey)
    const text = yield* sanitizeMessage(decoded.message)
    const images = yield* decodeAttachments(decoded.attachments ?? [])
    if (text.trim() === "" && images.length === 0) return yield* Effect.fail(invalidRequest("message or attachment required"))
    const thinking = yield* turnThinking(decoded.thinking)
    if (STOP_COMMANDS.has(text.trim().toLowerCase())) {
      const runIds = runningRunsOf(context.hub, key.key).map((run) => run.runId)
      const aborted = yield* (yield* Sessions).abort(key.key).pipe(Effect.mapError(sessionError))
      return { ok: true, aborted, runIds }
    }
    const runId = decoded.idempotencyKey
    const existing = context.hub.runs.get(runId)
    if (existing !== undefined) {
      if (existing.sessionKey !== key.key) return yield* Effect.fail(invalidRequest("idempotencyKey already used for another session"))
      return existing.status === "running" ? { runId, status: "in_flight" } : { runId, status: "started" }
    }
    yield* Runs.start(context.hub, { runId, sessionKey: key.key, text, images: images.length > 0 ? images : undefined, kind: "chat", thinking })
    return { runId, status: "started" }
  })

const ChatHistoryParams = Schema.Struct({
  sessionKey: SessionKeyParam,
  limit: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(1000))),
  maxChars: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1)))
})

const truncateText = (text: string, limit: number): string => text.length > limit ? `${text.slice(0, limit)}\n...(truncated)...` : text

/** A transcript message as chat.history shows it: usage and signatures dropped, images summarised, long text cut. */
export const historyMessage = (message: Message, maxChars: number): Record<string, unknown> | undefined => {
  if (message.role === "assistant") {
    const content: Array<Record<string, unknown>> = message.content.map((part): Record<string, unknown> => {
      if (part.type === "text") return { type: "text", text: truncateText(part.text, maxChars) }
      if (part.type === "thinking") return { type: "thinking", thinking: truncateText(part.thinking, maxChars) }
      return { type: "toolCall", id: part.id, name: part.name, arguments: part.arguments }
    })
    const only = message.content.length === 1 ? message.content[0] : undefined
    if (only?.type === "text" && only.text.trim() === "NO_REPLY") return undefined
    return { role: "assistant", content, timestamp: message.timestamp, provider: message.provider, model: message.model, stopReason: message.stopReason, ...(message.errorMessage === undefined ? {} : { errorMessage: message.errorMessage }) }
  }
  const parts = typeof message.content === "string" ? [{ type: "text" as const, text: message.content }] : message.content
  const content = parts.map((part) =>
    part.type === "text"
      ? { type: "text", text: truncateText(part.text, maxChars) }
      : { type: "image", mimeType: part.mimeType, omitted: true, bytes: Math.floor(part.data.length * 3 / 4) }
  )
  if (message.role === "user") return { role: "user", content, timestamp: message.timestamp }
  return { role: "toolResult", toolCallId: message.toolCallId, toolName: message.toolName, content, isError: message.isError, timestamp: message.timestamp }
}

export const historyMessages = (entries: ReadonlyArray<Transcript.Entry>, limit: number, maxChars: number): Array<Record<string, unknown>> => {
  const rendered: Array<Record<string, unknown>> = []
  for (const entry of entries) {
    if (entry.type !== "message" || !("message" in entry)) continue
    const shown = historyMessage(entry.message, maxChars)
    if (shown === undefined) continue
    const size = JSON.stringify(shown).length
    rendered.push(size > HISTORY_MESSAGE_LIMIT_BYTES
      ? { role: shown["role"], timestamp: shown["timestamp"], content: [{ type: "text", text: "[chat.history omitted: message too large]" }], __openclaw: { truncated: true, reason: "oversized" } }
      : shown)
  }
  const selected = rendered.slice(-limit)
  // Keep the newest messages within the total budget.
  let total = 0
  let first = selected.length
  while (first > 0) {
    const size = JSON.stringify(selected[first - 1]).length
    if (total + size > HISTORY_TOTAL_LIMIT_BYTES) break
    total += size
    first -= 1
  }
  return selected.slice(first)
}

const chatHistory: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("chat.history", ChatHistoryParams, params)
    const key = yield* resolveSessionKey(decoded.sessionKey)
    const sessions = yield* Sessions
    const entries = yield* sessions.history(key.key).pipe(Effect.mapError(sessionError))
    const rows = yield* sessions.list(key.agentId).pipe(Effect.mapError(sessionError))
    const entry = rows.find((row) => row.key === key.key)?.entry
    return {
      sessionKey: key.key,
      ...(entry === undefined ? {} : { sessionId: entry.sessionId }),
      messages: historyMessages(entries, decoded.limit ?? 200, decoded.maxChars ?? HISTORY_TEXT_LIMIT),
      thinkingLevel: entry?.thinkingLevel ?? "off",
      verboseLevel: "off"
    }
  })

const ChatAbortParams = Schema.Struct({ sessionKey: SessionKeyParam, runId: Schema.optionalKey(NonEmptyString) })

const chatAbort: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("chat.abort", ChatAbortParams, params)
    const key = yield* resolveSessionKey(decoded.sessionKey)
    if (decoded.runId !== undefined) {
      const run = context.hub.runs.get(decoded.runId)
      if (run !== undefined && run.sessionKey !== key.key) return yield* Effect.fail(invalidRequest("runId does not match sessionKey"))
      if (run === undefined || run.status !== "running") return { ok: true, aborted: false, runIds: [] }
    }
    const runIds = runningRunsOf(context.hub, key.key).map((run) => run.runId)
    const aborted = yield* (yield* Sessions).abort(key.key).pipe(Effect.mapError(sessionError))
    return { ok: true, aborted, runIds: aborted ? runIds : [] }
  })

const ChatInjectParams = Schema.Struct({
  sessionKey: SessionKeyParam,
  message: Schema.String,
  label: Schema.optionalKey(Schema.String.check(Schema.isMaxLength(100))),
  idempotencyKey: Schema.optionalKey(Schema.String)
})

const INJECT_IDEMPOTENCY_KEPT = 1000

/** Appends an assistant note (no agent run) and shows it to chat clients as a final message, as OpenClaw does. */
const chatInject = (seen: Map<string, { readonly sessionKey: string; readonly messageId: string }>): Handler => (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("chat.inject", ChatInjectParams, params)
    const key = yield* resolveSessionKey(decoded.sessionKey)
    const text = yield* sanitizeMessage(decoded.message)
    if (text.trim() === "") return yield* Effect.fail(invalidRequest("message required"))
    const label = decoded.label?.trim() || undefined
    const idempotencyKey = decoded.idempotencyKey === undefined || decoded.idempotencyKey === "" ? undefined : decoded.idempotencyKey
    if (idempotencyKey !== undefined) {
      const previous = seen.get(idempotencyKey)
      if (previous !== undefined) {
        if (previous.sessionKey !== key.key) return yield* Effect.fail(invalidRequest("idempotencyKey already used for another session"))
        return { ok: true, messageId: previous.messageId }
      }
    }
    const { messageId } = yield* (yield* Sessions).inject(key.key, text, label).pipe(Effect.mapError(sessionError))
    if (idempotencyKey !== undefined) {
      seen.set(idempotencyKey, { sessionKey: key.key, messageId })
      if (seen.size > INJECT_IDEMPOTENCY_KEPT) {
        const oldest = seen.keys().next()
        if (oldest.done !== true) seen.delete(oldest.value)
      }
    }
    context.hub.broadcast("chat", {
      runId: `inject-${messageId}`,
      sessionKey: key.key,
      seq: 0,
      state: "final",
      message: { role: "assistant", content: [{ type: "text", text: label === undefined ? text : `[${label}] ${text}` }], timestamp: Date.now() }
    }, { sessionKey: key.key })
    return { ok: true, messageId }
  })

const AgentParams = Schema.Struct({
  message: Schema.String,
  agentId: Schema.optionalKey(NonEmptyString),
  /** A model for this run only (`openclaw agent --model`); admin callers only, as OpenClaw. */
  provider: Schema.optionalKey(Schema.String),
  model: Schema.optionalKey(Schema.String),
  to: Schema.optionalKey(Schema.String),
  replyTo: Schema.optionalKey(Schema.String),
  sessionId: Schema.optionalKey(Schema.String),
  sessionKey: Schema.optionalKey(SessionKeyParam),
  thinking: Schema.optionalKey(Schema.String),
  deliver: Schema.optionalKey(Schema.Boolean),
  attachments: Schema.optionalKey(Schema.Array(Attachment)),
  channel: Schema.optionalKey(Schema.String),
  replyChannel: Schema.optionalKey(Schema.String),
  accountId: Schema.optionalKey(Schema.String),
  replyAccountId: Schema.optionalKey(Schema.String),
  threadId: Schema.optionalKey(Schema.String),
  groupId: Schema.optionalKey(Schema.String),
  timeout: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  lane: Schema.optionalKey(Schema.String),
  extraSystemPrompt: Schema.optionalKey(Schema.String),
  label: Schema.optionalKey(Schema.String),
  idempotencyKey: NonEmptyString
})

const TURN_THINKING_LEVELS: ReadonlyArray<ThinkingLevel> = ["off", "minimal", "low", "medium", "high", "xhigh"]

/**
 * The other names OpenClaw's normalizeThinkLevel takes for a level: its CLI
 * (`openclaw agent --thinking max`) and TUI send what the user typed.
 * `adaptive` / `auto` are a level of their own there, which BeamClaw lacks.
 */
const THINKING_ALIASES: ReadonlyMap<string, ThinkingLevel> = new Map<string, ThinkingLevel>([
  ["on", "low"], ["enable", "low"], ["enabled", "low"], ["thinkhard", "low"], ["think-hard", "low"], ["think_hard", "low"],
  ["min", "minimal"], ["think", "minimal"],
  ["mid", "medium"], ["med", "medium"], ["thinkharder", "medium"], ["think-harder", "medium"], ["harder", "medium"],
  ["ultra", "high"], ["ultrathink", "high"], ["thinkhardest", "high"], ["highest", "high"], ["max", "high"]
])

/** A run's own thinking level (chat.send / agent `thinking`), by its name or OpenClaw's aliases; blank is none. */
const turnThinking = (requested: string | undefined): Effect.Effect<ThinkingLevel | undefined, MethodError> => {
  const level = requested?.trim().toLowerCase()
  if (level === undefined || level === "") return Effect.succeed(undefined)
  // As OpenClaw: x-high, x_high and extra high are xhigh.
  const collapsed = level.replace(/[\s_-]+/g, "")
  const known = TURN_THINKING_LEVELS.find((candidate) => candidate === level) ??
    (collapsed === "xhigh" || collapsed === "extrahigh" ? "xhigh" : THINKING_ALIASES.get(level))
  return known === undefined
    ? Effect.fail(invalidRequest(`invalid thinking level: ${JSON.stringify(requested)} (use ${TURN_THINKING_LEVELS.join(", ")})`))
    : Effect.succeed(known)
}

/**
 * The run's own model from `provider` and `model` (OpenClaw's override): a
 * `provider/model`, an alias, or a bare model id under `provider` (by default
 * the provider of the agent's own model). Only an admin may choose one, as
 * OpenClaw's agent preflight.
 */
const turnModel = (decoded: { readonly provider?: string | undefined; readonly model?: string | undefined }, agentId: string, context: MethodContext) =>
  Effect.gen(function*() {
    const provider = decoded.provider?.trim() ?? ""
    const model = decoded.model?.trim() ?? ""
    if (provider === "" && model === "") return undefined
    if (!context.scopes.includes("operator.admin")) return yield* Effect.fail(invalidRequest("provider/model overrides are not authorized for this caller."))
    if (model === "") return yield* Effect.fail(invalidRequest(`provider ${provider} needs a model (provider/model overrides name the model)`))
    const primary = (yield* (yield* AgentDirectory).settings(agentId).pipe(Effect.mapError(sessionError))).modelChain[0] ?? ""
    return yield* resolveModel(model, provider !== "" ? provider : primary.slice(0, Math.max(0, primary.indexOf("/"))))
  })

/**
 * The session an agent run without a `sessionKey` goes to when it names a
 * `sessionId`: the agent's session with that id, else a session of its own
 * under OpenClaw's explicit-id key (`agent:<id>:explicit:<sessionId>`), so
 * the next run with the same id continues it.
 */
const sessionForId = (sessionId: string, agentId: string | undefined) =>
  Effect.gen(function*() {
    const agents = yield* AgentDirectory
    const owner = agentId?.toLowerCase() ?? (yield* agents.defaultAgentId)
    const rows = yield* (yield* Sessions).list(owner).pipe(Effect.mapError(sessionError))
    return rows.find((row) => row.entry.sessionId === sessionId)?.key ?? `agent:${owner}:explicit:${sessionId}`
  })

const agentFinal = (run: RunRecord): Effect.Effect<unknown, MethodError> => {
  if (run.status === "ok") {
    return Effect.succeed({
      runId: run.runId,
      status: "ok",
      summary: "completed",
      result: {
        payloads: run.text === "" ? [] : [{ text: run.text }],
        meta: {
          durationMs: (run.endedAt ?? Date.now()) - run.startedAt,
          agentMeta: {
            ...(run.sessionId === undefined ? {} : { sessionId: run.sessionId }),
            ...(run.model === undefined ? {} : { provider: run.model.split("/")[0], model: run.model.split("/").slice(1).join("/") || run.model }),
            ...(run.usage === undefined ? {} : { usage: run.usage })
          }
        }
      }
    })
  }
  if (run.status === "aborted") {
    return Effect.succeed({ runId: run.runId, status: "ok", summary: "aborted", result: { payloads: run.text === "" ? [] : [{ text: run.text }], meta: { durationMs: (run.endedAt ?? Date.now()) - run.startedAt, aborted: true } } })
  }
  return Effect.fail(new MethodError({ code: run.errorCode ?? "UNAVAILABLE", message: run.error ?? "the run failed", details: { runId: run.runId } }))
}

/**
 * Where `agent` with `deliver: true` sends its answer. With a `to`: there, on
 * `replyChannel` or `channel` (by default the one enabled channel). Without
 * one, OpenClaw's default channel "last": the session's last route, the
 * conversation its last channel message came from.
 */
const deliveryTarget = (decoded: typeof AgentParams.Type, sessionKey: string) =>
  Effect.gen(function*() {
    const requested = decoded.replyChannel ?? decoded.channel
    const wantsLast = requested === undefined || requested === "last"
    const needsRoute = decoded.to === undefined || decoded.to.trim() === "" || requested === "last"
    const entry = needsRoute ? yield* (yield* Sessions).entry(sessionKey).pipe(Effect.mapError(sessionError)) : undefined
    const last = entry?.deliveryContext ?? (entry?.lastChannel !== undefined && entry.lastTo !== undefined ? { channel: entry.lastChannel, to: entry.lastTo, accountId: entry.lastAccountId } : undefined)
    if (decoded.to === undefined || decoded.to.trim() === "") {
      if (last === undefined) {
        return yield* Effect.fail(invalidRequest(`deliver needs \`to\` (e.g. user:<id> or channel:<id>): session ${sessionKey} has no last route yet (no channel message has reached it)`))
      }
      if (!wantsLast && requested !== last.channel) {
        return yield* Effect.fail(invalidRequest(`deliver to channel ${requested} needs \`to\`: the last route of ${sessionKey} is on ${last.channel}`))
      }
      return { channel: last.channel, accountId: decoded.replyAccountId ?? decoded.accountId ?? last.accountId ?? "default", to: last.to }
    }
    const config = yield* (yield* AppConfig).get
    const channel = (wantsLast ? last?.channel : requested) ?? (config.channels.discord.enabled ? "discord" : undefined)
    if (channel === undefined) return yield* Effect.fail(unavailable(`cannot deliver to ${decoded.to}: no channel is configured`, { code: "CHANNEL_NOT_CONFIGURED" }))
    return { channel, accountId: decoded.replyAccountId ?? decoded.accountId ?? "default", to: decoded.to }
  })

const agent: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("agent", AgentParams, params)
    const sessionId = decoded.sessionId?.trim() ?? ""
    const requestedKey = decoded.sessionKey ?? (sessionId === "" ? undefined : yield* sessionForId(sessionId, decoded.agentId))
    const key = yield* resolveSessionKey(requestedKey, decoded.agentId)
    if (decoded.agentId !== undefined && key.agentId !== decoded.agentId.toLowerCase()) {
      return yield* Effect.fail(invalidRequest(`sessionKey ${key.key} belongs to agent ${key.agentId}, not ${decoded.agentId}`))
    }
    const delivery = decoded.deliver === true ? yield* deliveryTarget(decoded, key.key) : undefined
    const text = yield* sanitizeMessage(decoded.message)
    const images = yield* decodeAttachments(decoded.attachments ?? [])
    if (text.trim() === "" && images.length === 0) return yield* Effect.fail(invalidRequest("message or attachment required"))
    const modelOverride = yield* turnModel(decoded, key.agentId, context)
    const thinking = yield* turnThinking(decoded.thinking)
    const runId = decoded.idempotencyKey
    const existing = context.hub.runs.get(runId)
    // As chat.send: a key already used by a run of another session is not that run.
    if (existing !== undefined && existing.sessionKey !== key.key) return yield* Effect.fail(invalidRequest("idempotencyKey already used for another session"))
    const run = existing ?? (yield* Runs.start(context.hub, {
      runId,
      sessionKey: key.key,
      text,
      images: images.length > 0 ? images : undefined,
      kind: "agent",
      modelOverride,
      thinking,
      extraSystemPrompt: decoded.extraSystemPrompt
    }))
    if (existing === undefined && delivery !== undefined) {
      // Owned by the gateway like the run, so the answer is delivered even if this client leaves.
      const host = yield* ChannelHost
      yield* context.hub.fork(Effect.gen(function*() {
        yield* Deferred.await(run.done)
        if (run.status !== "ok" || run.text.trim() === "") return
        yield* host.send({ ...delivery, text: run.text, replyOfSession: key.key, idempotencyKey: `agent:${runId}` }).pipe(
          Effect.catch((error) => Effect.logError(`agent ${runId}: the answer could not be delivered to ${delivery.to}: ${error.message}`))
        )
      }))
    }
    context.respondInterim({ runId, status: "accepted", acceptedAt: run.startedAt })
    yield* Deferred.await(run.done)
    return yield* agentFinal(run)
  })

const AgentWaitParams = Schema.Struct({
  runId: NonEmptyString,
  timeoutMs: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0)))
})

const agentWait: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("agent.wait", AgentWaitParams, params)
    const timeoutMs = decoded.timeoutMs ?? 30_000
    // The run may not have started yet when the wait arrives; look for it until the deadline.
    const deadline = Date.now() + timeoutMs
    let run = context.hub.runs.get(decoded.runId)
    while (run === undefined && Date.now() < deadline) {
      yield* Effect.sleep(Duration.millis(Math.min(100, Math.max(1, deadline - Date.now()))))
      run = context.hub.runs.get(decoded.runId)
    }
    if (run === undefined) return { runId: decoded.runId, status: "timeout" }
    const remaining = Math.max(0, deadline - Date.now())
    yield* Deferred.await(run.done).pipe(Effect.timeoutOption(Duration.millis(remaining)))
    return Runs.waitResult(run)
  })

const SendParams = Schema.Struct({
  to: NonEmptyString,
  message: Schema.optionalKey(Schema.String),
  mediaUrl: Schema.optionalKey(Schema.String),
  mediaUrls: Schema.optionalKey(Schema.Array(Schema.String)),
  gifPlayback: Schema.optionalKey(Schema.Boolean),
  channel: Schema.optionalKey(Schema.String),
  accountId: Schema.optionalKey(Schema.String),
  threadId: Schema.optionalKey(Schema.String),
  sessionKey: Schema.optionalKey(Schema.String),
  idempotencyKey: NonEmptyString
})

/** Direct outbound delivery through a channel account (OpenClaw's `send`); the idempotency key makes a retry send nothing twice. */
const send: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("send", SendParams, params)
    const mediaUrls = [...(decoded.mediaUrl === undefined ? [] : [decoded.mediaUrl]), ...(decoded.mediaUrls ?? [])]
    const text = yield* sanitizeMessage(decoded.message ?? "")
    if (text.trim() === "" && mediaUrls.length === 0) return yield* Effect.fail(invalidRequest("send: message or media required"))
    const config = yield* (yield* AppConfig).get
    const channel = decoded.channel ?? (config.channels.discord.enabled ? "discord" : undefined)
    if (channel === undefined) {
      return yield* Effect.fail(unavailable(`cannot send to ${decoded.to}: no channel is configured`, { code: "CHANNEL_NOT_CONFIGURED" }))
    }
    // On Discord a thread is a channel of its own: a threadId sends there.
    const to = decoded.threadId === undefined ? decoded.to : `channel:${decoded.threadId}`
    const sent = yield* (yield* ChannelHost).send({ channel, accountId: decoded.accountId ?? "default", to, text, mediaUrls, idempotencyKey: decoded.idempotencyKey }).pipe(
      Effect.mapError((error) => error.code === "INVALID_TARGET" ? invalidRequest(error.message) : unavailable(error.message, { code: error.code }))
    )
    return { runId: decoded.idempotencyKey, messageId: sent.messageIds[0] ?? "", messageIds: sent.messageIds, channel, chatId: sent.chatId }
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "chat.send": chatSend,
  "chat.history": chatHistory,
  "chat.abort": chatAbort,
  "chat.inject": chatInject(new Map()),
  agent,
  "agent.wait": agentWait,
  send
})

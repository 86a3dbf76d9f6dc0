/**
 * sessions.list / get / preview / patch / reset / delete / compact / cleanup (openclaw-gateway.md §2.12.4).
 * patch covers what BeamClaw sessions have (label, thinkingLevel, model);
 * OpenClaw's other fields are refused by name rather than dropped.
 */
import * as Path from "node:path"
import { Effect, Result, Schema } from "effect"
import { AgentDirectory } from "../../../agent/AgentDirectory.ts"
import { textOf } from "../../../agent/Message.ts"
import { AppConfig } from "../../../config/AppConfig.ts"
import { Paths } from "../../../config/Paths.ts"
import * as SessionKey from "../../../session/SessionKey.ts"
import { SessionChanged } from "../../../session/SessionActor.ts"
import { type SessionRow, Sessions } from "../../../session/Sessions.ts"
import { SessionMaintenance } from "../../../session/SessionMaintenance.ts"
import { invalidRequest } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler, NonEmptyString, PositiveInt, resolveModel, resolveSessionKey, sessionError } from "./Method.ts"

/** A session key's kind as OpenClaw's session rows name it. */
export const kindOf = (key: string): "direct" | "group" | "global" | "unknown" => {
  const parsed = SessionKey.parse(key)
  if (Result.isFailure(parsed)) return key === "global" ? "global" : "unknown"
  const kind = parsed.success.kind
  return kind === "group" || kind === "channel" ? "group" : "direct"
}

export const sessionRow = (row: SessionRow, hub: Hub, mainKey: string) => {
  const entry = row.entry
  const active = [...hub.runs.values()].filter((run) => run.sessionKey === row.key && run.status === "running").map((run) => run.runId)
  return {
    key: row.key,
    kind: kindOf(row.key),
    // The agent's main session, which cannot be deleted (`openclaw sessions delete --dry-run` refuses it from this).
    isMain: row.key === SessionKey.mainKey(entry.agentId, mainKey),
    ...(entry.label === undefined ? {} : { label: entry.label }),
    ...(entry.displayName === undefined ? {} : { displayName: entry.displayName }),
    ...(entry.channel === undefined ? {} : { channel: entry.channel }),
    ...(entry.chatType === undefined ? {} : { chatType: entry.chatType }),
    updatedAt: entry.updatedAt,
    sessionId: entry.sessionId,
    agentId: entry.agentId,
    ...(entry.thinkingLevel === undefined ? {} : { thinkingLevel: entry.thinkingLevel }),
    ...(entry.abortedLastRun === undefined ? {} : { abortedLastRun: entry.abortedLastRun }),
    ...(entry.modelProvider === undefined ? {} : { modelProvider: entry.modelProvider }),
    ...(entry.model === undefined ? {} : { model: entry.model }),
    inputTokens: entry.inputTokens,
    outputTokens: entry.outputTokens,
    totalTokens: entry.totalTokens,
    contextTokens: entry.contextTokens,
    // The last route, as OpenClaw's rows show it (where `agent` with deliver and no `to` sends).
    ...(entry.deliveryContext === undefined ? {} : { deliveryContext: entry.deliveryContext }),
    ...(entry.lastChannel === undefined ? {} : { lastChannel: entry.lastChannel }),
    ...(entry.lastTo === undefined ? {} : { lastTo: entry.lastTo }),
    ...(entry.lastAccountId === undefined ? {} : { lastAccountId: entry.lastAccountId }),
    ...(entry.lastThreadId === undefined ? {} : { lastThreadId: entry.lastThreadId }),
    live: row.live,
    hasActiveRun: active.length > 0,
    activeRunIds: active
  }
}

const ListParams = Schema.Struct({
  limit: Schema.optionalKey(PositiveInt),
  offset: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  activeMinutes: Schema.optionalKey(PositiveInt),
  /** Only sessions with a run going now. */
  activeOnly: Schema.optionalKey(Schema.Boolean),
  // BeamClaw keeps one activity time per session (updatedAt), so every order is by it.
  sortBy: Schema.optionalKey(Schema.Literals(["updatedAt", "lastInteractionAt", "activity"])),
  /**
   * OpenClaw's archived sessions: true lists only them, "all" them and the
   * active ones. BeamClaw sessions are never archived (a deleted session's
   * transcript is, but the session is gone), so true lists nothing.
   */
  archived: Schema.optionalKey(Schema.Union([Schema.Boolean, Schema.Literal("all")])),
  // Every agent BeamClaw lists sessions for is configured; it has no subagent, cron or system sessions to leave out.
  configuredAgentsOnly: Schema.optionalKey(Schema.Boolean),
  excludeSubagents: Schema.optionalKey(Schema.Boolean),
  excludeCron: Schema.optionalKey(Schema.Boolean),
  excludeSystem: Schema.optionalKey(Schema.Boolean),
  includeGlobal: Schema.optionalKey(Schema.Boolean),
  includeUnknown: Schema.optionalKey(Schema.Boolean),
  includeDerivedTitles: Schema.optionalKey(Schema.Boolean),
  includeLastMessage: Schema.optionalKey(Schema.Boolean),
  label: Schema.optionalKey(Schema.String),
  spawnedBy: Schema.optionalKey(Schema.String),
  agentId: Schema.optionalKey(NonEmptyString),
  search: Schema.optionalKey(Schema.String)
})

const list: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.list", ListParams, params)
    const sessions = yield* Sessions
    const agents = yield* AgentDirectory
    const paths = yield* Paths
    const defaultId = yield* agents.defaultAgentId
    const agentId = decoded.agentId?.toLowerCase()
    if (agentId !== undefined && !(yield* agents.agentIds).includes(agentId)) return yield* Effect.fail(invalidRequest(`unknown agent id "${agentId}"`))
    const rows = yield* sessions.list(agentId).pipe(Effect.mapError(sessionError))
    const now = Date.now()
    const search = decoded.search?.trim().toLowerCase()
    const running = new Set([...context.hub.runs.values()].filter((run) => run.status === "running").map((run) => run.sessionKey))
    const matching = rows
      .filter(() => decoded.archived !== true)
      .filter((row) => decoded.activeOnly !== true || running.has(row.key))
      .filter((row) => decoded.activeMinutes === undefined || now - row.entry.updatedAt <= decoded.activeMinutes * 60_000)
      .filter((row) => decoded.label === undefined || row.entry.label === decoded.label)
      .filter((row) => search === undefined || search === "" || row.key.includes(search) || (row.entry.label ?? "").toLowerCase().includes(search) || (row.entry.displayName ?? "").toLowerCase().includes(search))
      .sort((a, b) => b.entry.updatedAt - a.entry.updatedAt)
    const offset = decoded.offset ?? 0
    const limited = decoded.limit === undefined ? matching.slice(offset) : matching.slice(offset, offset + decoded.limit)
    const nextOffset = offset + limited.length
    const policy = yield* agents.sessionPolicy
    const settings = yield* agents.settings(agentId ?? defaultId).pipe(Effect.mapError(sessionError))
    const primary = settings.modelChain[0] ?? ""
    const slash = primary.indexOf("/")
    return {
      ts: now,
      path: Path.join(paths.home, "agents", agentId ?? defaultId, "sessions", "sessions.json"),
      count: limited.length,
      totalCount: matching.length,
      limitApplied: decoded.limit !== undefined && matching.length > limited.length,
      // OpenClaw's paging: clients walk the list with `offset` while `hasMore`.
      hasMore: nextOffset < matching.length,
      ...(nextOffset < matching.length ? { nextOffset } : {}),
      defaults: {
        modelProvider: slash > 0 ? primary.slice(0, slash) : null,
        model: slash > 0 ? primary.slice(slash + 1) : null,
        contextTokens: settings.contextTokens
      },
      sessions: limited.map((row) => sessionRow(row, context.hub, policy.mainKey))
    }
  })

const KeyParams = Schema.Struct({ key: NonEmptyString })

const findRow = (requested: string) =>
  Effect.gen(function*() {
    const key = yield* resolveSessionKey(requested)
    const rows = yield* (yield* Sessions).list(key.agentId).pipe(Effect.mapError(sessionError))
    return { key, row: rows.find((row) => row.key === key.key) }
  })

const get: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.get", KeyParams, params)
    const { key, row } = yield* findRow(decoded.key)
    if (row === undefined) return yield* Effect.fail(invalidRequest(`session not found: ${key.key}`))
    const policy = yield* (yield* AgentDirectory).sessionPolicy
    return { ok: true, key: key.key, entry: row.entry, session: sessionRow(row, context.hub, policy.mainKey) }
  })

const PreviewParams = Schema.Struct({
  keys: Schema.Array(NonEmptyString).check(Schema.isMinLength(1)),
  limit: Schema.optionalKey(PositiveInt),
  maxChars: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(20)))
})

const preview: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.preview", PreviewParams, params)
    const sessions = yield* Sessions
    const limit = decoded.limit ?? 12
    const maxChars = decoded.maxChars ?? 240
    const previews = yield* Effect.forEach(decoded.keys, (requested) =>
      Effect.gen(function*() {
        const { key, row } = yield* findRow(requested)
        if (row === undefined) return { key: key.key, status: "missing", items: [] }
        const entries = yield* sessions.history(key.key).pipe(Effect.mapError(sessionError))
        const items = entries.flatMap((entry) => {
          if (entry.type !== "message" || !("message" in entry)) return []
          const text = textOf(entry.message).trim()
          if (text === "") return []
          const role = entry.message.role === "toolResult" ? "tool" : entry.message.role
          return [{ role, text: text.length > maxChars ? `${text.slice(0, maxChars - 1)}…` : text }]
        }).slice(-limit)
        return { key: key.key, status: items.length === 0 ? "empty" : "ok", items }
      }).pipe(Effect.catch((error) => Effect.succeed({ key: requested, status: "error", items: [], error: error.message }))))
    return { ts: Date.now(), previews }
  })

const ResetParams = Schema.Struct({ key: NonEmptyString, reason: Schema.optionalKey(Schema.Literals(["new", "reset"])) })

const reset: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.reset", ResetParams, params)
    const key = yield* resolveSessionKey(decoded.key)
    const entry = yield* (yield* Sessions).reset(key.key).pipe(Effect.mapError(sessionError))
    context.hub.broadcast("sessions.changed", { sessionKey: key.key, reason: decoded.reason ?? "reset", agentId: key.agentId })
    return { ok: true, key: key.key, entry }
  })

/** Fields OpenClaw's sessions.patch knows that BeamClaw sessions do not have; asking to set one is refused by name. */
const UNSUPPORTED_PATCH_FIELDS: ReadonlyArray<string> = [
  "verboseLevel", "reasoningLevel", "responseUsage", "elevatedLevel", "execHost", "execSecurity", "execAsk", "execNode",
  "spawnedBy", "sendPolicy", "groupActivation", "fastMode", "traceLevel", "spawnDepth", "subagentRole", "envelope", "contextWindow",
  // Control UI organisation and lifecycle fields (`openclaw sessions archive` sends archived: true).
  "autoLabel", "icon", "color", "category", "boardFace", "boardPresentation", "pinned", "archived", "unread", "agentRuntime",
  "permissionMode", "sandboxMode"
]
const SUPPORTED_PATCH_FIELDS = ["label", "thinkingLevel", "model"]

const THINKING_LEVELS = ["off", "minimal", "low", "medium", "high", "xhigh"] as const

const PatchParams = Schema.Struct({
  key: NonEmptyString,
  agentId: Schema.optionalKey(NonEmptyString),
  /** Applies only while the session is still this one (not reset or replaced since the client read it). */
  expectedSessionId: Schema.optionalKey(NonEmptyString),
  label: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(100)))),
  thinkingLevel: Schema.optionalKey(Schema.NullOr(Schema.Literals(THINKING_LEVELS))),
  model: Schema.optionalKey(Schema.NullOr(Schema.String))
})

const splitModel = (ref: string | undefined) => {
  const slash = ref?.indexOf("/") ?? -1
  return ref === undefined || slash <= 0 ? { modelProvider: null, model: ref ?? null } : { modelProvider: ref.slice(0, slash), model: ref.slice(slash + 1) }
}

const sessionChanged = (key: string, expected: string) =>
  invalidRequest(`Session changed: ${key} is no longer session ${expected}; re-read it and retry`, { code: "SESSION_CHANGED" })

/** Session-layer failures of a change made with `expectedSessionId`: a replaced session is OpenClaw's SESSION_CHANGED. */
const changeError = (error: { readonly _tag: string; readonly message: string }) =>
  error instanceof SessionChanged ? invalidRequest(error.message, { code: "SESSION_CHANGED" }) : sessionError(error)

/**
 * OpenClaw's `expectedSessionId`: a lifecycle change applies only to the
 * session the client read, not one reset or replaced since (a new session id).
 * Checked here first, so a delete of a session already replaced aborts none
 * of its turns; the session checks again when the change reaches it
 * (Sessions.patch / delete), since a reset may be queued ahead of it.
 */
const expectSession = (key: string, expected: string | undefined) =>
  Effect.gen(function*() {
    if (expected === undefined) return
    const entry = yield* (yield* Sessions).entry(key).pipe(Effect.mapError(sessionError))
    if (entry?.sessionId !== expected) return yield* Effect.fail(sessionChanged(key, expected))
  })

const patch: Handler = (params, context) =>
  Effect.gen(function*() {
    if (typeof params === "object" && params !== null && !Array.isArray(params)) {
      const unsupported = Object.entries(params).filter(([name, value]) => UNSUPPORTED_PATCH_FIELDS.includes(name) && value !== null).map(([name]) => name)
      if (unsupported.length > 0) {
        return yield* Effect.fail(invalidRequest(
          `sessions.patch: ${unsupported.join(", ")} ${unsupported.length === 1 ? "is" : "are"} not supported by BeamClaw sessions (supported: ${SUPPORTED_PATCH_FIELDS.join(", ")})`,
          { code: "UNSUPPORTED_FIELDS", fields: unsupported }
        ))
      }
    }
    // null for an unsupported field asks to clear what BeamClaw never sets: nothing to do, so it is accepted.
    const stripped = typeof params === "object" && params !== null && !Array.isArray(params)
      ? Object.fromEntries(Object.entries(params).filter(([name]) => !UNSUPPORTED_PATCH_FIELDS.includes(name)))
      : params
    const decoded = yield* decodeParams("sessions.patch", PatchParams, stripped)
    const key = yield* subscriptionKey(decoded.key, decoded.agentId)
    yield* expectSession(key.key, decoded.expectedSessionId)
    const sessions = yield* Sessions
    let label: string | null | undefined = decoded.label
    if (typeof label === "string") {
      label = label.trim()
      if (label === "") return yield* Effect.fail(invalidRequest("invalid label: empty (send null to clear it)"))
      const wanted = label
      const rows = yield* sessions.list(key.agentId).pipe(Effect.mapError(sessionError))
      if (rows.some((row) => row.key !== key.key && row.entry.label === wanted)) return yield* Effect.fail(invalidRequest(`label already in use: ${wanted}`))
    }
    const modelOverride = decoded.model === undefined || decoded.model === null ? decoded.model : yield* resolveModel(decoded.model)
    const entry = yield* sessions.patch(key.key, {
      ...(label === undefined ? {} : { label }),
      ...(decoded.thinkingLevel === undefined ? {} : { thinkingLevel: decoded.thinkingLevel }),
      ...(modelOverride === undefined ? {} : { modelOverride })
    }, { expectedSessionId: decoded.expectedSessionId }).pipe(Effect.mapError(changeError))
    const settings = yield* (yield* AgentDirectory).settings(key.agentId).pipe(Effect.mapError(sessionError))
    const paths = yield* Paths
    context.hub.broadcast("sessions.changed", { sessionKey: key.key, reason: "patch", agentId: key.agentId })
    return {
      ok: true,
      path: Path.join(paths.home, "agents", key.agentId, "sessions", "sessions.json"),
      key: key.key,
      entry,
      resolved: splitModel(entry.modelOverride ?? settings.modelChain[0])
    }
  })

const DeleteParams = Schema.Struct({
  key: NonEmptyString,
  agentId: Schema.optionalKey(NonEmptyString),
  deleteTranscript: Schema.optionalKey(Schema.Boolean),
  expectedSessionId: Schema.optionalKey(NonEmptyString),
  /** Delete only an archived session; BeamClaw sessions are never archived, so it is refused. */
  archivedOnly: Schema.optionalKey(Schema.Boolean)
})

const remove: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.delete", DeleteParams, params)
    const key = yield* subscriptionKey(decoded.key, decoded.agentId)
    if (decoded.archivedOnly === true) return yield* Effect.fail(invalidRequest(`Session ${key.key} is not archived (BeamClaw sessions are never archived)`))
    const policy = yield* (yield* AgentDirectory).sessionPolicy
    if (key.key === SessionKey.mainKey(key.agentId, policy.mainKey)) {
      return yield* Effect.fail(invalidRequest(`Cannot delete the main session (${key.key}).`))
    }
    if (decoded.deleteTranscript === false) {
      return yield* Effect.fail(invalidRequest("sessions.delete: deleteTranscript false is not supported; BeamClaw always archives the transcript of a deleted session (as *.deleted.<ts>, nothing is erased)"))
    }
    yield* expectSession(key.key, decoded.expectedSessionId)
    const { deleted } = yield* (yield* Sessions).delete(key.key, { expectedSessionId: decoded.expectedSessionId }).pipe(Effect.mapError(changeError))
    if (deleted) context.hub.broadcast("sessions.changed", { sessionKey: key.key, reason: "delete", agentId: key.agentId })
    return { ok: true, key: key.key, deleted }
  })

const CompactParams = Schema.Struct({
  key: NonEmptyString,
  agentId: Schema.optionalKey(NonEmptyString),
  maxLines: Schema.optionalKey(PositiveInt),
  /** BeamClaw's addition: focus for the summary, as `/compact <instructions>` in a chat. */
  instructions: Schema.optionalKey(Schema.String)
})

/**
 * sessions.compact: the LLM summary of OpenClaw's current method (the older
 * part of the history becomes a compaction entry; the recent tail is kept).
 * Its `maxLines` truncation is refused: BeamClaw never erases history.
 */
const compact: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.compact", CompactParams, params)
    if (decoded.maxLines !== undefined) {
      return yield* Effect.fail(invalidRequest("sessions.compact: maxLines is not supported; BeamClaw does not truncate transcripts, it summarises the older history (omit maxLines)"))
    }
    const key = yield* subscriptionKey(decoded.key, decoded.agentId)
    const outcome = yield* (yield* Sessions).compact(key.key, decoded.instructions).pipe(Effect.mapError(sessionError))
    if (!outcome.compacted) return { ok: true, key: key.key, compacted: false, reason: outcome.reason }
    context.hub.broadcast("sessions.changed", { sessionKey: key.key, reason: "compact", agentId: key.agentId })
    return { ok: true, key: key.key, compacted: true, result: { tokensBefore: outcome.tokensBefore, tokensAfter: outcome.tokensAfter } }
  })

const SubscribeParams = Schema.Struct({
  key: NonEmptyString,
  agentId: Schema.optionalKey(NonEmptyString),
  includeApprovals: Schema.optionalKey(Schema.Literal(true))
})
const UnsubscribeParams = Schema.Struct({ key: NonEmptyString, agentId: Schema.optionalKey(NonEmptyString) })

/** The store key a subscription names; an explicit agentId must be a configured agent. */
const subscriptionKey = (key: string, agentId: string | undefined) =>
  Effect.gen(function*() {
    if (agentId !== undefined) {
      const known = yield* (yield* AgentDirectory).agentIds
      if (!known.includes(agentId)) return yield* Effect.fail(invalidRequest(`unknown agent id "${agentId}"`))
    }
    return yield* resolveSessionKey(key, agentId)
  })

/**
 * A session-scoped client (connect caps `session-scoped-events`) receives a
 * session's `agent` and `chat` events only after subscribing to it.
 */
const messagesSubscribe: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.messages.subscribe", SubscribeParams, params)
    if (decoded.includeApprovals === true) {
      return yield* Effect.fail(invalidRequest("sessions.messages.subscribe: includeApprovals is not supported (BeamClaw has no exec approvals yet)"))
    }
    const key = yield* subscriptionKey(decoded.key, decoded.agentId)
    context.hub.subscribe(context.connId, key.key)
    return { subscribed: true, key: key.key }
  })

const messagesUnsubscribe: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.messages.unsubscribe", UnsubscribeParams, params)
    const key = yield* subscriptionKey(decoded.key, decoded.agentId)
    context.hub.unsubscribe(context.connId, key.key)
    return { subscribed: false, key: key.key }
  })

const CleanupParams = Schema.Struct({
  agent: Schema.optionalKey(NonEmptyString),
  allAgents: Schema.optionalKey(Schema.Boolean),
  enforce: Schema.optionalKey(Schema.Boolean),
  activeKey: Schema.optionalKey(NonEmptyString),
  fixMissing: Schema.optionalKey(Schema.Boolean),
  fixDmScope: Schema.optionalKey(Schema.Boolean),
  /** BeamClaw's addition: report what would be removed without removing it. */
  dryRun: Schema.optionalKey(Schema.Boolean)
})

/**
 * sessions.cleanup: a session maintenance pass now (session/SessionMaintenance.ts),
 * for one agent (`agent`, else the default one) or all (`allAgents`); the
 * summary in OpenClaw's shape, one store's alone or `{allAgents, stores}`.
 */
const cleanup: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.cleanup", CleanupParams, params)
    if (decoded.fixDmScope === true) {
      return yield* Effect.fail(invalidRequest("sessions.cleanup: fixDmScope is not supported (BeamClaw keeps no peer-keyed DM rows to retire when dmScope is main)"))
    }
    if (decoded.agent !== undefined && decoded.allAgents === true) {
      return yield* Effect.fail(invalidRequest("sessions.cleanup: give agent or allAgents, not both"))
    }
    const agents = yield* AgentDirectory
    const agentId = decoded.allAgents === true ? undefined : (decoded.agent?.toLowerCase() ?? (yield* agents.defaultAgentId))
    if (agentId !== undefined && !(yield* agents.agentIds).includes(agentId)) return yield* Effect.fail(invalidRequest(`unknown agent id "${agentId}"`))
    const activeKey = decoded.activeKey === undefined ? undefined : (yield* resolveSessionKey(decoded.activeKey, agentId)).key
    const summaries = yield* (yield* SessionMaintenance).run({
      agentId,
      enforce: decoded.enforce,
      dryRun: decoded.dryRun,
      activeKey,
      fixMissing: decoded.fixMissing
    }).pipe(Effect.mapError(sessionError))
    // sessions.changed goes out from the hub, for this pass as for automatic ones (WsRoutes.ts).
    const first = summaries[0]
    if (decoded.allAgents !== true && first !== undefined) return first
    const mode = first?.mode ?? (yield* (yield* AppConfig).get).session.maintenance.mode
    return { allAgents: true, mode, dryRun: first?.dryRun ?? decoded.dryRun === true, stores: summaries }
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "sessions.messages.subscribe": messagesSubscribe,
  "sessions.messages.unsubscribe": messagesUnsubscribe,
  "sessions.list": list,
  "sessions.get": get,
  "sessions.preview": preview,
  "sessions.patch": patch,
  "sessions.reset": reset,
  "sessions.delete": remove,
  "sessions.compact": compact,
  "sessions.cleanup": cleanup
})

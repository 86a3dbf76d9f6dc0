/**
 * sessions.list / get / preview / patch / reset / delete (openclaw-gateway.md §2.12.4).
 */
import * as Path from "node:path"
import { Effect, Result, Schema } from "effect"
import { AgentDirectory } from "../../../agent/AgentDirectory.ts"
import { textOf } from "../../../agent/Message.ts"
import { Paths } from "../../../config/Paths.ts"
import * as SessionKey from "../../../session/SessionKey.ts"
import { type SessionRow, Sessions } from "../../../session/Sessions.ts"
import { invalidRequest, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler, NonEmptyString, PositiveInt, resolveSessionKey, sessionError } from "./Method.ts"

const kindOf = (key: string): "direct" | "group" | "global" | "unknown" => {
  const parsed = SessionKey.parse(key)
  if (Result.isFailure(parsed)) return key === "global" ? "global" : "unknown"
  const kind = parsed.success.kind
  return kind === "group" || kind === "channel" ? "group" : "direct"
}

export const sessionRow = (row: SessionRow, hub: Hub) => {
  const entry = row.entry
  const active = [...hub.runs.values()].filter((run) => run.sessionKey === row.key && run.status === "running").map((run) => run.runId)
  return {
    key: row.key,
    kind: kindOf(row.key),
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
    live: row.live,
    hasActiveRun: active.length > 0,
    activeRunIds: active
  }
}

const ListParams = Schema.Struct({
  limit: Schema.optionalKey(PositiveInt),
  activeMinutes: Schema.optionalKey(PositiveInt),
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
    const matching = rows
      .filter((row) => decoded.activeMinutes === undefined || now - row.entry.updatedAt <= decoded.activeMinutes * 60_000)
      .filter((row) => decoded.label === undefined || row.entry.label === decoded.label)
      .filter((row) => search === undefined || search === "" || row.key.includes(search) || (row.entry.label ?? "").toLowerCase().includes(search) || (row.entry.displayName ?? "").toLowerCase().includes(search))
      .sort((a, b) => b.entry.updatedAt - a.entry.updatedAt)
    const limited = decoded.limit === undefined ? matching : matching.slice(0, decoded.limit)
    const settings = yield* agents.settings(agentId ?? defaultId).pipe(Effect.mapError(sessionError))
    const primary = settings.modelChain[0] ?? ""
    const slash = primary.indexOf("/")
    return {
      ts: now,
      path: Path.join(paths.home, "agents", agentId ?? defaultId, "sessions", "sessions.json"),
      count: limited.length,
      totalCount: matching.length,
      limitApplied: decoded.limit !== undefined && matching.length > limited.length,
      defaults: {
        modelProvider: slash > 0 ? primary.slice(0, slash) : null,
        model: slash > 0 ? primary.slice(slash + 1) : null,
        contextTokens: settings.contextTokens
      },
      sessions: limited.map((row) => sessionRow(row, context.hub))
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
    return { ok: true, key: key.key, entry: row.entry, session: sessionRow(row, context.hub) }
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

const PatchParams = Schema.Struct({
  key: NonEmptyString,
  label: Schema.optionalKey(Schema.NullOr(Schema.String.check(Schema.isMaxLength(100)))),
  thinkingLevel: Schema.optionalKey(Schema.NullOr(Schema.String)),
  verboseLevel: Schema.optionalKey(Schema.NullOr(Schema.String)),
  reasoningLevel: Schema.optionalKey(Schema.NullOr(Schema.String)),
  responseUsage: Schema.optionalKey(Schema.NullOr(Schema.Literals(["off", "tokens", "full", "on"]))),
  model: Schema.optionalKey(Schema.NullOr(Schema.String)),
  sendPolicy: Schema.optionalKey(Schema.NullOr(Schema.Literals(["allow", "deny"])))
})

// The index entry is written by the session's actor; Sessions has no patch operation yet.
const patch: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.patch", PatchParams, params)
    yield* resolveSessionKey(decoded.key)
    return yield* Effect.fail(unavailable("sessions.patch is not available yet: the session layer has no patch operation (Sessions.patch)"))
  })

const DeleteParams = Schema.Struct({ key: NonEmptyString, deleteTranscript: Schema.optionalKey(Schema.Boolean) })

const remove: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("sessions.delete", DeleteParams, params)
    const key = yield* resolveSessionKey(decoded.key)
    const policy = yield* (yield* AgentDirectory).sessionPolicy
    if (key.key === SessionKey.mainKey(key.agentId, policy.mainKey)) {
      return yield* Effect.fail(invalidRequest(`Cannot delete the main session (${key.key}).`))
    }
    return yield* Effect.fail(unavailable("sessions.delete is not available yet: the session layer has no delete operation (Sessions.delete)"))
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "sessions.list": list,
  "sessions.get": get,
  "sessions.preview": preview,
  "sessions.patch": patch,
  "sessions.reset": reset,
  "sessions.delete": remove
})

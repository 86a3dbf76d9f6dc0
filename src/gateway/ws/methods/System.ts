/**
 * health, status, system-presence, last-heartbeat, logs.tail, models.list,
 * agents.list, channels.status (openclaw-gateway.md §2.12.1, §2.12.7).
 */
import * as Path from "node:path"
import { Effect, Option, Schema } from "effect"
import { AgentDirectory } from "../../../agent/AgentDirectory.ts"
import { AppConfig } from "../../../config/AppConfig.ts"
import { agentModel, defaultAgentId } from "../../../config/ConfigSchema.ts"
import { Paths } from "../../../config/Paths.ts"
import type { SessionEntry } from "../../../session/SessionStore.ts"
import { Sessions } from "../../../session/Sessions.ts"
import { SessionMaintenance } from "../../../session/SessionMaintenance.ts"
import { type AccountStatus, ChannelSupervisor } from "../../../channels/ChannelSupervisor.ts"
import { Readiness } from "../../Readiness.ts"
import { LogRing } from "../LogRing.ts"
import type { Hub } from "../Hub.ts"
import { invalidRequest } from "../Frames.ts"
import { isLoopbackAddress } from "../../auth/GatewayAuth.ts"
import { decodeParams, type Handler, NonEmptyString, sessionError } from "./Method.ts"
import { kindOf } from "./SessionMethods.ts"

const HEALTH_RECENT = 5

/**
 * OpenClaw's heartbeat summary for an agent. BeamClaw runs no heartbeats yet,
 * so every agent reads as disabled (the CLI prints "disabled (<agent>)").
 */
const heartbeatSummary = { enabled: false, every: "disabled", everyMs: null }

/**
 * OpenClaw's HealthSummary, from what BeamClaw has (channels are reported by
 * channels.status, no heartbeat). `agents` carries OpenClaw's per-agent rows
 * ({agentId, isDefault, heartbeat, sessions}): `openclaw health` labels its
 * "Agents:" line and picks the default agent's session store from them.
 */
export const healthSummary = Effect.gen(function*() {
  const started = Date.now()
  const agents = yield* AgentDirectory
  const config = yield* (yield* AppConfig).get
  const paths = yield* Paths
  const sessions = yield* Sessions
  const readiness = yield* Readiness
  const report = yield* readiness.report
  const defaultId = yield* agents.defaultAgentId
  const ids = yield* agents.agentIds
  const now = Date.now()
  const sessionsOf = (id: string) =>
    sessions.list(id).pipe(
      Effect.catch(() => Effect.succeed([])),
      Effect.map((rows) => ({
        path: Path.join(paths.home, "agents", id, "sessions", "sessions.json"),
        count: rows.length,
        recent: [...rows].sort((a, b) => b.entry.updatedAt - a.entry.updatedAt).slice(0, HEALTH_RECENT)
          .map((row) => ({ key: row.key, updatedAt: row.entry.updatedAt, age: now - row.entry.updatedAt }))
      }))
    )
  const perAgent = yield* Effect.forEach(ids, (id) =>
    sessionsOf(id).pipe(Effect.map((agentSessions) => {
      const name = config.agents.list.find((agent) => agent.id === id)?.name
      return { agentId: id, ...(name === undefined ? {} : { name }), isDefault: id === defaultId, heartbeat: heartbeatSummary, sessions: agentSessions }
    })))
  const defaultSessions = perAgent.find((agent) => agent.isDefault)?.sessions ?? (yield* sessionsOf(defaultId))
  return {
    ok: report.ready,
    ts: now,
    durationMs: Date.now() - started,
    heartbeatSeconds: 0,
    defaultAgentId: defaultId,
    agents: perAgent,
    sessions: defaultSessions,
    channels: {},
    channelOrder: [],
    channelLabels: {}
  }
})

const HealthParams = Schema.Struct({ probe: Schema.optionalKey(Schema.Boolean) })

const health: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("health", HealthParams, params)
    return yield* healthSummary
  })

const StatusParams = Schema.Struct({
  includeChannelSummary: Schema.optionalKey(Schema.Boolean),
  includeCliProjection: Schema.optionalKey(Schema.Boolean)
})

const STATUS_RECENT = 10
const TASK_STATUSES = ["queued", "running", "succeeded", "failed", "timed_out", "cancelled", "lost"] as const
const TASK_RUNTIMES = ["subagent", "acp", "cli", "cron"] as const
const TASK_AUDIT_CODES = ["stale_queued", "stale_running", "lost", "delivery_failed", "missing_cleanup", "inconsistent_timestamps"] as const
const zeroes = (keys: ReadonlyArray<string>) => Object.fromEntries(keys.map((key) => [key, 0]))

/** A session as a row of OpenClaw's status summary. */
const statusSessionRow = (row: { readonly key: string; readonly entry: SessionEntry }, now: number, contextTokens: number) => {
  const entry = row.entry
  return {
    agentId: entry.agentId,
    key: row.key,
    kind: kindOf(row.key),
    sessionId: entry.sessionId,
    updatedAt: entry.updatedAt,
    age: now - entry.updatedAt,
    ...(entry.thinkingLevel === undefined ? {} : { thinkingLevel: entry.thinkingLevel }),
    ...(entry.abortedLastRun === undefined ? {} : { abortedLastRun: entry.abortedLastRun }),
    inputTokens: entry.inputTokens,
    outputTokens: entry.outputTokens,
    cacheRead: entry.cacheRead,
    cacheWrite: entry.cacheWrite,
    totalTokens: entry.totalTokens,
    totalTokensFresh: true,
    remainingTokens: Math.max(0, contextTokens - entry.totalTokens),
    percentUsed: contextTokens > 0 ? Math.min(999, Math.round(entry.totalTokens / contextTokens * 100)) : null,
    model: entry.model ?? null,
    ...(entry.modelProvider === undefined || entry.model === undefined ? {} : { selectedModel: `${entry.modelProvider}/${entry.model}` }),
    contextTokens,
    flags: [
      ...(entry.thinkingLevel === undefined ? [] : [`think:${entry.thinkingLevel}`]),
      ...(entry.abortedLastRun === true ? ["aborted"] : []),
      `id:${entry.sessionId}`
    ]
  }
}

/**
 * OpenClaw's StatusSummary (heartbeat, tasks, sessions by agent, and with
 * `includeCliProjection` the agent roster `openclaw status --json` reads),
 * plus what BeamClaw adds: process facts, session host stats under
 * `sessions`, fibers, connections and process memory. A client without
 * admin gets OpenClaw's redacted summary (its redactSensitiveStatusSummary):
 * no store paths, default model or recent session rows, only the counts.
 */
const status: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("status", StatusParams, params)
    const sessions = yield* Sessions
    const agents = yield* AgentDirectory
    const config = yield* (yield* AppConfig).get
    const paths = yield* Paths
    const stats = yield* sessions.stats
    const rows = yield* sessions.list().pipe(Effect.mapError(sessionError))
    const memory = process.memoryUsage()
    const running = [...context.hub.runs.values()].filter((run) => run.status === "running").length
    const maintenance = yield* (yield* SessionMaintenance).last
    const defaultId = yield* agents.defaultAgentId
    const ids = yield* agents.agentIds
    const now = Date.now()
    const defaults = yield* agents.settings(defaultId).pipe(Effect.mapError(sessionError))
    // Each agent's context window, against which a session's use is a percentage (the entry's contextTokens is its use).
    const windows = new Map(yield* Effect.forEach(ids, (id) =>
      agents.settings(id).pipe(Effect.map((settings) => [id, settings.contextTokens] as const), Effect.mapError(sessionError))))
    const newest = (of: ReadonlyArray<(typeof rows)[number]>) =>
      [...of].sort((a, b) => b.entry.updatedAt - a.entry.updatedAt).slice(0, STATUS_RECENT)
        .map((row) => statusSessionRow(row, now, windows.get(row.entry.agentId) ?? defaults.contextTokens))
    const storePath = (id: string) => Path.join(paths.home, "agents", id, "sessions", "sessions.json")
    const primary = defaults.modelChain[0]
    // OpenClaw's status passes includeSensitive only to admin callers: the others see no paths and no sessions by name.
    const sensitive = context.scopes.includes("operator.admin")
    return {
      runtimeVersion: context.hub.options.version,
      ...(decoded.includeCliProjection === true
        ? {
          cliProjection: {
            agents: {
              defaultId,
              ownership: ids.length === 1 ? "sole" : "explicit",
              selectionRequired: false,
              rows: ids.map((id) => {
                const name = config.agents.list.find((agent) => agent.id === id)?.name
                return name === undefined ? { id } : { id, name }
              })
            },
            updateChannel: null,
            // BeamClaw has no memory plugin slot, so the CLI shows memory as off rather than probing one.
            memoryPlugin: { enabled: false, slot: null, reason: "not provided by this gateway" }
          }
        }
        : {}),
      heartbeat: {
        defaultAgentId: defaultId,
        agents: ids.map((id) => ({ agentId: id, ...heartbeatSummary, waitingForRoute: false }))
      },
      channelSummary: [],
      queuedSystemEvents: [],
      degradedSecretOwners: [],
      degradedPlugins: [],
      // BeamClaw has no background task registry: the counts OpenClaw reports are all zero.
      tasks: { total: 0, active: 0, terminal: 0, failures: 0, byStatus: zeroes(TASK_STATUSES), byRuntime: zeroes(TASK_RUNTIMES) },
      taskAudit: { total: 0, warnings: 0, errors: 0, byCode: zeroes(TASK_AUDIT_CODES) },
      ok: true,
      ts: now,
      version: context.hub.options.version,
      uptimeMs: now - context.hub.startedAt,
      pid: process.pid,
      platform: process.platform,
      node: process.version,
      defaultAgentId: defaultId,
      authMode: config.gateway.auth.mode,
      sessions: {
        paths: sensitive ? ids.map(storePath) : [],
        count: rows.length,
        defaults: sensitive
          ? { model: primary === undefined ? null : primary.slice(primary.indexOf("/") + 1), contextTokens: defaults.contextTokens }
          : { model: null, contextTokens: null },
        recent: sensitive ? newest(rows) : [],
        byAgent: ids.map((id) => {
          const own = rows.filter((row) => row.entry.agentId === id)
          return { agentId: id, path: sensitive ? storePath(id) : "[redacted]", count: own.length, recent: sensitive ? newest(own) : [] }
        }),
        live: stats.live,
        restarts: stats.restarts,
        passivations: stats.passivations,
        gaveUp: stats.gaveUp,
        // The last session maintenance pass (session/SessionMaintenance.ts): when, why, and what it removed.
        maintenance: maintenance === undefined ? null : {
          mode: config.session.maintenance.mode,
          lastPassAt: maintenance.at,
          trigger: maintenance.trigger,
          removed: maintenance.summaries.reduce((sum, summary) => sum + (summary.dryRun ? 0 : summary.actions.length), 0),
          overBudget: maintenance.summaries.some((summary) => summary.diskBudget?.overBudget === true)
        }
      },
      // Live session actors are fibers; runs are the gateway-owned fibers draining chat and agent turns.
      fibers: { sessionActors: stats.live, runs: running },
      connections: context.hub.clients.size,
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external, arrayBuffers: memory.arrayBuffers },
      // OpenClaw's name and units for the same numbers.
      processMemory: { rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, heapTotalBytes: memory.heapTotal, externalBytes: memory.external, arrayBuffersBytes: memory.arrayBuffers }
    }
  })

const systemPresence: Handler = (params, context) =>
  decodeParams("system-presence", Schema.Struct({}), params).pipe(Effect.as(context.hub.presenceList()))

// No heartbeat runs yet, so there is never a last one.
const lastHeartbeat: Handler = (params) => decodeParams("last-heartbeat", Schema.Struct({}), params).pipe(Effect.as(null))

const LogsTailParams = Schema.Struct({
  cursor: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))),
  limit: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(5000))),
  maxBytes: Schema.optionalKey(Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1), Schema.isLessThanOrEqualTo(1_000_000)))
})

const logsTail: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("logs.tail", LogsTailParams, params)
    const ring = yield* Effect.serviceOption(LogRing)
    const options = { cursor: decoded.cursor, limit: decoded.limit ?? 500, maxBytes: decoded.maxBytes ?? 250_000 }
    if (Option.isNone(ring)) return { file: "(memory)", cursor: 0, size: 0, lines: [] }
    const tail = ring.value.tail(options)
    return {
      file: "(memory)",
      cursor: tail.cursor,
      size: tail.size,
      lines: tail.lines,
      ...(tail.truncated ? { truncated: true } : {}),
      ...(tail.reset ? { reset: true } : {})
    }
  })

// OpenClaw's models.list params. BeamClaw's catalogue is the configuration (there is no provider discovery), so
// every view lists it, `refresh` and `preparedOnly` have nothing to refresh or wait for, and `sessionKey` /
// `authProfileId` (a session's or an auth profile's view) see the same models.
const ModelsListParams = Schema.Struct({
  agentId: Schema.optionalKey(NonEmptyString),
  sessionKey: Schema.optionalKey(NonEmptyString),
  authProfileId: Schema.optionalKey(NonEmptyString),
  provider: Schema.optionalKey(NonEmptyString),
  includeDetails: Schema.optionalKey(Schema.Boolean),
  includeProviderCapabilities: Schema.optionalKey(Schema.Boolean),
  includeDefaultModels: Schema.optionalKey(Schema.Boolean),
  preparedOnly: Schema.optionalKey(Schema.Boolean),
  refresh: Schema.optionalKey(Schema.Boolean),
  view: Schema.optionalKey(Schema.Literals(["default", "configured", "provider-config", "all"]))
})

interface ModelRow {
  id: string
  name: string
  provider: string
  alias?: string
  tags: Array<string>
  contextWindow?: number
  reasoning?: boolean
  local?: boolean
}

const isLocalBaseUrl = (baseUrl: string): boolean => {
  try {
    return isLoopbackAddress(new URL(baseUrl).hostname.replace(/^\[|\]$/g, ""))
  } catch {
    return false
  }
}

/**
 * The published catalogue (hello-ok advertises `published-model-catalog`):
 * the agent's model and fallbacks, the configured model settings and every
 * model a provider declares, tagged as OpenClaw tags them (`default`,
 * `fallback#n`, `configured`) for the agent asked about.
 */
const modelsList: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("models.list", ModelsListParams, params)
    const config = yield* (yield* AppConfig).get
    const agents = yield* AgentDirectory
    const agentId = decoded.agentId?.toLowerCase() ?? (yield* agents.defaultAgentId)
    if (!(yield* agents.agentIds).includes(agentId)) return yield* Effect.fail(invalidRequest(`unknown agent id "${agentId}"`))
    const providerFilter = decoded.provider?.toLowerCase()
    const seen = new Map<string, ModelRow>()
    const add = (ref: string, tag: string | undefined) => {
      const slash = ref.indexOf("/")
      if (slash <= 0) return
      const existing = seen.get(ref)
      if (existing !== undefined) {
        if (tag !== undefined && !existing.tags.includes(tag)) existing.tags.push(tag)
        return
      }
      const provider = ref.slice(0, slash)
      const id = ref.slice(slash + 1)
      const settings = config.models.providers[provider]
      const declared = settings?.models.find((model) => model.id === id)
      const alias = config.agents.defaults.models[ref]?.alias
      seen.set(ref, {
        id,
        name: declared?.name ?? id,
        provider,
        ...(alias === undefined ? {} : { alias }),
        tags: tag === undefined ? [] : [tag],
        ...(declared?.contextWindow === undefined ? {} : { contextWindow: declared.contextWindow }),
        ...(declared?.reasoning === undefined ? {} : { reasoning: declared.reasoning }),
        ...(decoded.includeDetails === true && settings !== undefined ? { local: isLocalBaseUrl(settings.baseUrl) } : {})
      })
    }
    const selection = agentModel(config, agentId)
    add(selection.primary, "default")
    selection.fallbacks.forEach((ref, index) => add(ref, `fallback#${index + 1}`))
    Object.keys(config.agents.defaults.models).forEach((ref) => add(ref, "configured"))
    // The defaults' and other agents' models are still models this gateway serves.
    for (const other of [config.agents.defaults.model, ...config.agents.list.map((entry) => agentModel(config, entry.id))]) {
      for (const ref of [other.primary, ...other.fallbacks]) add(ref, undefined)
    }
    for (const [provider, settings] of Object.entries(config.models.providers)) {
      for (const model of settings.models) add(`${provider}/${model.id}`, undefined)
    }
    const models = [...seen.values()]
      .filter((row) => providerFilter === undefined || row.provider.toLowerCase() === providerFilter)
      .map(({ tags, ...row }) => tags.length === 0 ? row : { ...row, tags })
    return { models }
  })

const agentsList: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("agents.list", Schema.Struct({}), params)
    const config = yield* (yield* AppConfig).get
    const agents = yield* AgentDirectory
    const policy = yield* agents.sessionPolicy
    const ids = yield* agents.agentIds
    const list = yield* Effect.forEach(ids, (id) =>
      agents.settings(id).pipe(
        Effect.map((settings) => {
          const entry = config.agents.list.find((agent) => agent.id === id)
          const model = agentModel(config, id)
          return {
            id,
            ...(entry?.name === undefined ? {} : { name: entry.name, identity: { name: entry.name } }),
            workspace: settings.workspace,
            model: { primary: model.primary, fallbacks: model.fallbacks }
          }
        }),
        Effect.catch(() => Effect.succeed({ id }))
      ))
    return { defaultId: defaultAgentId(config), mainKey: policy.mainKey, scope: "per-sender", agents: list }
  })

// Channels arrive with issue #4; until then the summary is empty but well-formed.
const channelsStatus: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("channels.status", Schema.Struct({ probe: Schema.optionalKey(Schema.Boolean), timeoutMs: Schema.optionalKey(Schema.Number) }), params)
    const statuses = yield* (yield* ChannelSupervisor).status
    const ids = [...new Set(statuses.map((status) => status.channel))]
    // OpenClaw's ChannelAccountSnapshot fields, from what the supervisor knows.
    const snapshot = (status: AccountStatus) => ({
      accountId: status.accountId,
      enabled: true,
      configured: true,
      running: status.running,
      connected: status.connected,
      state: status.state,
      reconnectAttempts: status.reconnectAttempts,
      ...(status.lastStartAt === undefined ? {} : { lastStartAt: status.lastStartAt }),
      ...(status.lastConnectedAt === undefined ? {} : { lastConnectedAt: status.lastConnectedAt }),
      ...(status.lastDisconnectAt === undefined ? {} : { lastDisconnect: { at: status.lastDisconnectAt, ...(status.lastError === undefined ? {} : { error: status.lastError }) } }),
      ...(status.lastError === undefined ? {} : { lastError: status.lastError }),
      ...(status.lastInboundAt === undefined ? {} : { lastInboundAt: status.lastInboundAt }),
      ...(status.lastOutboundAt === undefined ? {} : { lastOutboundAt: status.lastOutboundAt })
    })
    const of = (id: string) => statuses.filter((status) => status.channel === id)
    return {
      ts: Date.now(),
      channelOrder: ids,
      channelLabels: Object.fromEntries(ids.map((id) => [id, id === "discord" ? "Discord" : id])),
      channels: Object.fromEntries(ids.map((id) => [id, {
        configured: true,
        running: of(id).some((status) => status.running),
        connected: of(id).some((status) => status.connected),
        ...(of(id).find((status) => status.lastError !== undefined)?.lastError === undefined ? {} : { lastError: of(id).find((status) => status.lastError !== undefined)?.lastError })
      }])),
      channelAccounts: Object.fromEntries(ids.map((id) => [id, of(id).map(snapshot)])),
      channelDefaultAccountId: Object.fromEntries(ids.map((id) => [id, "default"]))
    }
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  health,
  status,
  "system-presence": systemPresence,
  "last-heartbeat": lastHeartbeat,
  "logs.tail": logsTail,
  "models.list": modelsList,
  "agents.list": agentsList,
  "channels.status": channelsStatus
})

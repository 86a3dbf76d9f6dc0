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
import { Sessions } from "../../../session/Sessions.ts"
import { SessionMaintenance } from "../../../session/SessionMaintenance.ts"
import { type AccountStatus, ChannelSupervisor } from "../../../channels/ChannelSupervisor.ts"
import { Readiness } from "../../Readiness.ts"
import { LogRing } from "../LogRing.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler, sessionError } from "./Method.ts"

const HEALTH_RECENT = 5

/** OpenClaw's HealthSummary, from what BeamClaw has (no channels yet, no heartbeat). */
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
  const rows = yield* sessions.list(defaultId).pipe(Effect.catch(() => Effect.succeed([])))
  const now = Date.now()
  const recent = [...rows].sort((a, b) => b.entry.updatedAt - a.entry.updatedAt).slice(0, HEALTH_RECENT)
  return {
    ok: report.ready,
    ts: now,
    durationMs: Date.now() - started,
    heartbeatSeconds: 0,
    defaultAgentId: defaultId,
    agents: ids.map((id) => {
      const name = config.agents.list.find((agent) => agent.id === id)?.name
      return name === undefined ? { id } : { id, name }
    }),
    sessions: {
      path: Path.join(paths.home, "agents", defaultId, "sessions", "sessions.json"),
      count: rows.length,
      recent: recent.map((row) => ({ key: row.key, updatedAt: row.entry.updatedAt, age: now - row.entry.updatedAt }))
    },
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

const status: Handler = (params, context) =>
  Effect.gen(function*() {
    yield* decodeParams("status", Schema.Struct({}), params)
    const sessions = yield* Sessions
    const agents = yield* AgentDirectory
    const config = yield* (yield* AppConfig).get
    const stats = yield* sessions.stats
    const rows = yield* sessions.list().pipe(Effect.mapError(sessionError))
    const memory = process.memoryUsage()
    const running = [...context.hub.runs.values()].filter((run) => run.status === "running").length
    const maintenance = yield* (yield* SessionMaintenance).last
    return {
      ok: true,
      ts: Date.now(),
      version: context.hub.options.version,
      uptimeMs: Date.now() - context.hub.startedAt,
      pid: process.pid,
      platform: process.platform,
      node: process.version,
      defaultAgentId: yield* agents.defaultAgentId,
      authMode: config.gateway.auth.mode,
      sessions: {
        count: rows.length,
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
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external, arrayBuffers: memory.arrayBuffers }
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

const ModelsListParams = Schema.Struct({ view: Schema.optionalKey(Schema.Literals(["default", "configured", "all"])) })

const modelsList: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("models.list", ModelsListParams, params)
    const config = yield* (yield* AppConfig).get
    const seen = new Map<string, { id: string; name: string; provider: string; alias?: string; contextWindow?: number; reasoning?: boolean }>()
    const add = (ref: string) => {
      const slash = ref.indexOf("/")
      if (slash <= 0 || seen.has(ref)) return
      const provider = ref.slice(0, slash)
      const id = ref.slice(slash + 1)
      const declared = config.models.providers[provider]?.models.find((model) => model.id === id)
      const alias = config.agents.defaults.models[ref]?.alias
      seen.set(ref, {
        id,
        name: declared?.name ?? id,
        provider,
        ...(alias === undefined ? {} : { alias }),
        ...(declared?.contextWindow === undefined ? {} : { contextWindow: declared.contextWindow }),
        ...(declared?.reasoning === undefined ? {} : { reasoning: declared.reasoning })
      })
    }
    const selections = [config.agents.defaults.model, ...config.agents.list.map((agent) => agentModel(config, agent.id))]
    for (const selection of selections) [selection.primary, ...selection.fallbacks].forEach(add)
    Object.keys(config.agents.defaults.models).forEach(add)
    for (const [provider, settings] of Object.entries(config.models.providers)) {
      for (const model of settings.models) add(`${provider}/${model.id}`)
    }
    return { models: [...seen.values()] }
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

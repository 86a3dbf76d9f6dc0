/**
 * The server side of `BeamclawRpcs`: every procedure over the one session
 * layer (through SessionEvents, so RPC turns reach subscribers), the config
 * service and the host's stats.
 */
import { randomUUID } from "node:crypto"
import { Effect, Layer, Result, Stream } from "effect"
import packageJson from "../../../package.json" with { type: "json" }
import { AgentDirectory } from "../../agent/AgentDirectory.ts"
import { ChannelSupervisor } from "../../channels/ChannelSupervisor.ts"
import { PairingStore } from "../../channels/PairingStore.ts"
import { ConfigWriter } from "../../config/ConfigWriter.ts"
import * as SessionKey from "../../session/SessionKey.ts"
import { Sessions } from "../../session/Sessions.ts"
import { SessionMaintenance } from "../../session/SessionMaintenance.ts"
import * as ConfigPatch from "./ConfigPatch.ts"
import { BeamclawRpcs, InvalidRequest } from "./Rpcs.ts"
import { SessionEvents } from "./SessionEvents.ts"

interface SessionTarget {
  readonly sessionKey?: string | undefined
  readonly agentId?: string | undefined
}

export const layer = BeamclawRpcs.toLayer(Effect.gen(function*() {
  const sessions = yield* Sessions
  const agents = yield* AgentDirectory
  const events = yield* SessionEvents
  const configWriter = yield* ConfigWriter
  const channels = yield* ChannelSupervisor
  const pairing = yield* PairingStore
  const maintenance = yield* SessionMaintenance
  // The process's start, not this layer's: the server layer is rebuilt when the listener moves.
  const startedAt = Math.round(performance.timeOrigin)

  /** The store key a client means, as OpenClaw's toAgentStoreSessionKey; the agent must exist. */
  const resolve = (target: SessionTarget) =>
    Effect.gen(function*() {
      const agentId = target.agentId ?? (yield* agents.defaultAgentId)
      yield* agents.settings(agentId)
      const policy = yield* agents.sessionPolicy
      const parsed = SessionKey.toStoreKey(target.sessionKey, { agentId: agentId.toLowerCase(), mainKey: policy.mainKey })
      if (Result.isFailure(parsed)) return yield* parsed.failure
      if (parsed.success.agentId !== agentId.toLowerCase()) yield* agents.settings(parsed.success.agentId)
      return parsed.success.key
    })

  return BeamclawRpcs.of({
    Send: (payload) =>
      Stream.unwrap(Effect.gen(function*() {
        if (payload.text.trim() === "" && (payload.images?.length ?? 0) === 0) {
          return yield* new InvalidRequest({ message: "text must not be empty" })
        }
        if (payload.runId !== undefined && (payload.runId.trim() === "" || payload.runId.length > 200)) {
          return yield* new InvalidRequest({ message: "runId must be 1 to 200 characters" })
        }
        const key = yield* resolve(payload)
        return events.send(key, { runId: payload.runId ?? randomUUID(), text: payload.text, images: payload.images })
      })),

    ListSessions: ({ agentId }) =>
      Effect.gen(function*() {
        if (agentId !== undefined) yield* agents.settings(agentId)
        const rows = yield* sessions.list(agentId?.toLowerCase())
        return rows.map((row) => ({ key: row.key, live: row.live, entry: row.entry }))
      }),

    History: (payload) =>
      Effect.gen(function*() {
        const sessionKey = yield* resolve(payload)
        const entries = yield* sessions.history(sessionKey)
        return { sessionKey, entries: payload.limit === undefined ? entries : entries.slice(-payload.limit) }
      }),

    Reset: (payload) =>
      Effect.gen(function*() {
        const sessionKey = yield* resolve(payload)
        const entry = yield* sessions.reset(sessionKey)
        return { sessionKey, entry }
      }),

    CleanupSessions: (payload) =>
      Effect.gen(function*() {
        if (payload.allAgents === true && payload.agentId !== undefined) {
          return yield* new InvalidRequest({ message: "give agentId or allAgents, not both" })
        }
        const agentId = payload.allAgents === true ? undefined : (payload.agentId ?? (yield* agents.defaultAgentId)).toLowerCase()
        if (agentId !== undefined) yield* agents.settings(agentId)
        const activeKey = payload.activeKey === undefined ? undefined : yield* resolve({ sessionKey: payload.activeKey, agentId })
        return yield* maintenance.run({ agentId, dryRun: payload.dryRun, enforce: payload.enforce, activeKey, fixMissing: payload.fixMissing })
      }),

    GetConfig: () => ConfigPatch.snapshot(configWriter),

    PatchConfig: (payload) => ConfigPatch.patch(configWriter, payload),

    Status: () =>
      Effect.gen(function*() {
        const rows = yield* sessions.list()
        const actors = yield* sessions.stats
        const memory = process.memoryUsage()
        const now = Date.now()
        return {
          version: packageJson.version,
          pid: process.pid,
          startedAt,
          uptimeMs: now - startedAt,
          sessions: rows.length,
          actors,
          memory: { rss: memory.rss, heapTotal: memory.heapTotal, heapUsed: memory.heapUsed, external: memory.external }
        }
      }),

    Subscribe: (payload) =>
      Stream.unwrap(Effect.map(resolve(payload), (sessionKey) => events.subscribe(sessionKey))),

    ChannelsStatus: () => channels.status,

    PairingList: (payload) => pairing.list(payload.channel, payload.accountId),

    PairingApprove: (payload) => pairing.approve(payload.channel, payload.code, payload.accountId),

    PairingReject: (payload) => pairing.reject(payload.channel, payload.code, payload.accountId)
  })
}))

/** The handlers with the fan-out they publish to. */
export const layerWithEvents = layer.pipe(Layer.provideMerge(SessionEvents.layer))

/**
 * AgentDirectory over the live config: each call reads the current value, so
 * an edit to agents or session settings applies to the next turn.
 */
import { Effect, Layer, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import { agentModel, type BeamclawConfig, defaultAgentId, findAgent } from "../config/ConfigSchema.ts"
import { Paths, resolveAgentWorkspace } from "../config/Paths.ts"
import { AgentDirectory, type SessionPolicy, UnknownAgent } from "./AgentDirectory.ts"
import type { AgentSettings } from "./AgentSettings.ts"
import * as RunLane from "../session/RunLane.ts"

const knownAgents = (config: BeamclawConfig): ReadonlyArray<string> =>
  config.agents.list.length === 0 ? [defaultAgentId(config)] : config.agents.list.map((agent) => agent.id)

export const layer = Layer.effect(AgentDirectory, Effect.gen(function*() {
  const config = yield* AppConfig
  let policyOf: { readonly config: BeamclawConfig; readonly policy: SessionPolicy } | undefined
  const paths = yield* Paths
  // Built once per config value: it is read several times per turn.
  const sessionPolicy = config.get.pipe(Effect.map((current) => {
    if (current === policyOf?.config) return policyOf.policy
    const policy: SessionPolicy = {
      mainKey: current.session.mainKey,
      resetTriggers: current.session.resetTriggers,
      reset: { mode: current.session.reset.mode, atHour: current.session.reset.atHour, idleMinutes: current.session.reset.idleMinutes },
      passivateAfterMs: current.session.idle.passivateAfterSeconds * 1000,
      maxConcurrent: current.agents.defaults.maxConcurrent ?? RunLane.defaultMaxConcurrent(),
      supervisor: {
        maxRestarts: current.session.supervisor.maxRestarts,
        withinMs: current.session.supervisor.withinSeconds * 1000,
        backoffMs: current.session.supervisor.backoffMs
      }
    }
    policyOf = { config: current, policy }
    return policy
  }))
  // Built once per config value and agent, as the policy: read on every turn.
  let settingsOf: { readonly config: BeamclawConfig; readonly byAgent: Map<string, AgentSettings> } | undefined
  return AgentDirectory.of({
    defaultAgentId: config.get.pipe(Effect.map(defaultAgentId)),
    agentIds: config.get.pipe(Effect.map(knownAgents)),
    settings: (agentId) =>
      Effect.gen(function*() {
        const current = yield* config.get
        const id = agentId.toLowerCase()
        if (settingsOf?.config !== current) settingsOf = { config: current, byAgent: new Map() }
        const known = settingsOf.byAgent.get(id)
        if (known !== undefined) return known
        if (!knownAgents(current).includes(id)) {
          return yield* new UnknownAgent({ agentId, message: `unknown agent ${JSON.stringify(agentId)}; configured agents: ${knownAgents(current).join(", ")}` })
        }
        const defaults = current.agents.defaults
        const model = agentModel(current, id)
        const settings: AgentSettings = {
          agentId: id,
          name: findAgent(current, id)?.name,
          workspace: resolveAgentWorkspace(paths, current, id),
          modelChain: [model.primary, ...model.fallbacks],
          timeoutSeconds: defaults.timeoutSeconds,
          contextTokens: defaults.contextTokens,
          maxTokens: defaults.maxTokens,
          thinking: defaults.thinkingDefault,
          bootstrapMaxChars: defaults.bootstrapMaxChars,
          bootstrapTotalMaxChars: defaults.bootstrapTotalMaxChars,
          skipBootstrap: defaults.skipBootstrap,
          reserveTokens: defaults.compaction.reserveTokens,
          keepRecentTokens: defaults.compaction.keepRecentTokens,
          userTimezone: defaults.userTimezone,
          heartbeatPrompt: defaults.heartbeat.prompt
        }
        settingsOf.byAgent.set(id, settings)
        return settings
      }),
    sessionPolicy,
    sessionPolicyChanges: config.watch((current) => [current.session, current.agents.defaults.maxConcurrent]).pipe(
      Stream.mapEffect(() => sessionPolicy)
    )
  })
}))

/**
 * Where sessions and turns read their settings from: the agents and the
 * session policy of the current config. Reading through this service (not a
 * captured value) is what makes a config edit apply to the next turn.
 */
import { Context, type Effect, Schema, type Stream } from "effect"
import type { AgentSettings } from "./AgentSettings.ts"

export interface SessionPolicy {
  readonly mainKey: string
  readonly resetTriggers: ReadonlyArray<string>
  readonly reset: { readonly mode: "daily" | "idle"; readonly atHour: number; readonly idleMinutes: number | undefined }
  readonly passivateAfterMs: number
  /** Agent runs at once across all sessions (`agents.defaults.maxConcurrent`; OpenClaw's default when unset). */
  readonly maxConcurrent: number
  readonly supervisor: { readonly maxRestarts: number; readonly withinMs: number; readonly backoffMs: number }
}

export class UnknownAgent extends Schema.TaggedError<UnknownAgent>()("UnknownAgent", {
  agentId: Schema.String,
  message: Schema.String
}) {}

export class AgentDirectory extends Context.Service<AgentDirectory, {
  readonly defaultAgentId: Effect.Effect<string>
  readonly agentIds: Effect.Effect<ReadonlyArray<string>>
  readonly settings: (agentId: string) => Effect.Effect<AgentSettings, UnknownAgent>
  readonly sessionPolicy: Effect.Effect<SessionPolicy>
  /** The session policy now, then each time a config change alters it: for what must act at once (the run lane's size). */
  readonly sessionPolicyChanges: Stream.Stream<SessionPolicy>
}>()("beamclaw/agent/AgentDirectory") {}

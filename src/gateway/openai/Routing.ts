/**
 * Which agent and which session an OpenAI request runs in. The `model` field
 * names an agent, never a provider model (OpenClaw's agent-first contract);
 * headers can override both, and a `user` gives a stable session.
 */
import { createHash, randomUUID } from "node:crypto"
import { Result } from "effect"
import * as SessionKey from "../../session/SessionKey.ts"
import { openAiError, type OpenAiError } from "./OpenAiError.ts"

const AGENT_ID = "[a-z0-9][a-z0-9_-]{0,63}"
const PREFIXED = new RegExp(`^(?:beamclaw|openclaw)[:/](${AGENT_ID})$`, "i")
const AGENT_ALIAS = new RegExp(`^agent:(${AGENT_ID})$`, "i")

/** The agent a `model` string names: "default" for the default agent, or an id; undefined if it is not an agent target. */
export const agentOfModel = (model: string | undefined): string | undefined => {
  if (model === undefined) return "default"
  const trimmed = model.trim()
  const lower = trimmed.toLowerCase()
  if (lower === "beamclaw" || lower === "openclaw") return "default"
  const match = PREFIXED.exec(trimmed) ?? AGENT_ALIAS.exec(trimmed)
  return match?.[1]?.toLowerCase()
}

/** Model ids listed by /v1/models: the default alias, then one per agent. */
export const modelIds = (agentIds: ReadonlyArray<string>): ReadonlyArray<string> =>
  ["beamclaw", "beamclaw/default", ...agentIds.map((id) => `beamclaw/${id}`)]

export interface AgentChoice {
  readonly agentIds: ReadonlyArray<string>
  readonly defaultAgentId: string
}

export const resolveAgent = (
  model: string | undefined,
  headerAgentId: string | undefined,
  agents: AgentChoice
): Result.Result<{ readonly agentId: string; readonly explicit: boolean }, OpenAiError> => {
  if (headerAgentId !== undefined) {
    const id = headerAgentId.toLowerCase()
    if (!agents.agentIds.includes(id)) {
      return Result.fail(openAiError(400, `Unknown agent ${JSON.stringify(headerAgentId)} in the agent-id header; known agents: ${agents.agentIds.join(", ")}.`, { param: "x-beamclaw-agent-id", code: "agent_not_found" }))
    }
    return Result.succeed({ agentId: id, explicit: true })
  }
  const target = agentOfModel(model)
  if (target === undefined) {
    return Result.fail(openAiError(400, `Invalid \`model\` ${JSON.stringify(model)}. Use \`beamclaw\` or \`beamclaw/<agentId>\` (OpenClaw's \`openclaw\`, \`openclaw/<agentId>\`, \`openclaw:<agentId>\` and \`agent:<agentId>\` work too); the model picks an agent, not a provider model.`, { param: "model", code: "invalid_model" }))
  }
  if (target === "default") return Result.succeed({ agentId: agents.defaultAgentId, explicit: false })
  if (!agents.agentIds.includes(target)) {
    return Result.fail(openAiError(404, `The model ${JSON.stringify(model)} does not exist: there is no agent ${JSON.stringify(target)} (known agents: ${agents.agentIds.join(", ")}).`, { param: "model", code: "model_not_found" }))
  }
  return Result.succeed({ agentId: target, explicit: true })
}

/** Namespaces the gateway keeps for its own runs (OpenClaw: sub-agents, cron, ACP). */
const RESERVED = ["subagent:", "cron:", "acp:"]

/**
 * A `user` string as one key segment: lower-cased, and if anything had to be
 * replaced, a short hash of the original keeps different users apart.
 */
export const userSegment = (user: string): string => {
  const lower = user.trim().toLowerCase()
  const safe = lower.replace(/[^a-z0-9._+=@#~-]/g, "-").replace(/^\.+/, "").slice(0, 160)
  if (safe === lower && safe !== "") return safe
  const hash = createHash("sha256").update(user).digest("hex").slice(0, 12)
  return `${safe === "" ? "user" : safe}-${hash}`
}

export interface SessionChoice {
  readonly agentId: string
  readonly sessionKey: string
  readonly stateless: boolean
}

export const resolveSession = (
  options: {
    readonly headerKey: string | undefined
    readonly user: string | undefined
    readonly agentId: string
    readonly agentExplicit: boolean
    readonly agentIds: ReadonlyArray<string>
    readonly mainKey: string
    /** The surface's namespace, as OpenClaw's resolveSessionKey prefix: `openai` (default) or `openresponses`. */
    readonly prefix?: string | undefined
  }
): Result.Result<SessionChoice, OpenAiError> => {
  const { headerKey, agentId } = options
  if (headerKey !== undefined) {
    const lower = headerKey.toLowerCase()
    const rest = lower.startsWith("agent:") ? lower.split(":").slice(2).join(":") : lower
    const reserved = openAiError(400, `Invalid session key ${JSON.stringify(headerKey)}: the ${RESERVED.join(", ")} namespaces are reserved for the gateway's own runs.`, { param: "x-beamclaw-session-key", code: "reserved_session_key" })
    if (RESERVED.some((prefix) => rest.startsWith(prefix) || rest.includes(`:${prefix}`))) return Result.fail(reserved)
    const parsed = SessionKey.toStoreKey(headerKey, { agentId, mainKey: options.mainKey })
    if (Result.isFailure(parsed)) {
      return Result.fail(openAiError(400, parsed.failure.message, { param: "x-beamclaw-session-key", code: "invalid_session_key" }))
    }
    const key = parsed.success
    // However it is spelled (`subagent` as any segment, a bare `cron`): a key the session layer would take for a
    // sub-agent's or a cron run's is theirs (their prompt, their retention), never a client's.
    if (key.kind === "subagent" || key.kind === "cron" || key.rest.split(":").includes("acp")) return Result.fail(reserved)
    if (key.agentId !== agentId) {
      if (options.agentExplicit) {
        return Result.fail(openAiError(400, `The session key ${JSON.stringify(headerKey)} belongs to agent ${JSON.stringify(key.agentId)}, but the request selects agent ${JSON.stringify(agentId)}.`, { param: "x-beamclaw-session-key", code: "agent_mismatch" }))
      }
      if (!options.agentIds.includes(key.agentId)) {
        return Result.fail(openAiError(400, `The session key ${JSON.stringify(headerKey)} names an unknown agent ${JSON.stringify(key.agentId)}.`, { param: "x-beamclaw-session-key", code: "agent_not_found" }))
      }
    }
    return Result.succeed({ agentId: key.agentId, sessionKey: key.key, stateless: false })
  }
  const prefix = options.prefix ?? "openai"
  if (options.user !== undefined) {
    return Result.succeed({ agentId, sessionKey: `agent:${agentId}:${prefix}-user:${userSegment(options.user)}`, stateless: false })
  }
  return Result.succeed({ agentId, sessionKey: `agent:${agentId}:${prefix}:${randomUUID()}`, stateless: true })
}

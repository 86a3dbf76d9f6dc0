/**
 * OpenClaw's session-key grammar. A key names a conversation, never a file:
 * transcripts are named by session id, so a key cannot reach outside the
 * state directory however it is spelled.
 */
import { Result, Schema } from "effect"

export const AGENT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/
const SEGMENT_PATTERN = /^[a-z0-9_+=@#~-][a-z0-9._+=@#~-]{0,199}$/
const MAX_KEY_LENGTH = 512

export type SessionKind = "main" | "direct" | "group" | "channel" | "thread" | "subagent" | "cron" | "hook" | "openai" | "other"

export interface ParsedSessionKey {
  readonly key: string
  readonly agentId: string
  /** The key without its `agent:<id>:` prefix, as OpenClaw's request keys. */
  readonly rest: string
  readonly kind: SessionKind
}

export class InvalidSessionKey extends Schema.TaggedError<InvalidSessionKey>()("InvalidSessionKey", {
  key: Schema.String,
  message: Schema.String
}) {}

const kindOf = (segments: ReadonlyArray<string>, mainKey: string): SessionKind => {
  if (segments.includes("thread") || segments.includes("topic")) return "thread"
  if (segments.includes("subagent")) return "subagent"
  const head = segments[0]
  if (segments.length === 1 && head === mainKey) return "main"
  if (head === "cron") return "cron"
  if (head === "hook") return "hook"
  if (head === "openai-user" || head === "openai" || head === "openresponses" || head === "openresponses-user") return "openai"
  if (segments.includes("direct") || segments.includes("dm")) return "direct"
  if (segments.includes("group")) return "group"
  if (segments.includes("channel") || segments.includes("room")) return "channel"
  return "other"
}

/** Validates a canonical store key (`agent:<agentId>:<rest>`). */
export const parse = (input: string, options?: { readonly mainKey?: string | undefined }): Result.Result<ParsedSessionKey, InvalidSessionKey> => {
  const fail = (message: string) => Result.fail(new InvalidSessionKey({ key: input, message: `invalid session key ${JSON.stringify(input)}: ${message}` }))
  if (input.length === 0) return fail("it is empty")
  if (input.length > MAX_KEY_LENGTH) return fail(`it is longer than ${MAX_KEY_LENGTH} characters`)
  const key = input.toLowerCase()
  const segments = key.split(":")
  if (segments[0] !== "agent") return fail("it must start with `agent:<agentId>:`")
  const agentId = segments[1] ?? ""
  if (!AGENT_ID_PATTERN.test(agentId)) return fail(`agent id ${JSON.stringify(agentId)} must match ${AGENT_ID_PATTERN}`)
  const restSegments = segments.slice(2)
  if (restSegments.length === 0) return fail("nothing follows the agent id")
  for (const segment of restSegments) {
    if (segment.length === 0) return fail("it has an empty segment (`::` or a trailing `:`)")
    if (!SEGMENT_PATTERN.test(segment)) {
      return fail(`segment ${JSON.stringify(segment)} may only use a-z 0-9 . _ - + = @ # ~ and must not start with a dot`)
    }
  }
  return Result.succeed({ key, agentId, rest: restSegments.join(":"), kind: kindOf(restSegments, options?.mainKey ?? "main") })
}

export const mainKey = (agentId: string, main = "main"): string => `agent:${agentId}:${main}`

/**
 * Turns what a client sent into a store key, as OpenClaw's toAgentStoreSessionKey:
 * empty or `main` is the agent's main session, an `agent:` key is kept, a bare
 * `cron:<id>`-style key moves under the agent's namespace.
 */
export const toStoreKey = (
  requested: string | undefined,
  options: { readonly agentId: string; readonly mainKey?: string | undefined }
): Result.Result<ParsedSessionKey, InvalidSessionKey> => {
  const main = options.mainKey ?? "main"
  const trimmed = (requested ?? "").trim()
  if (trimmed === "" || trimmed.toLowerCase() === main) return parse(mainKey(options.agentId, main), { mainKey: main })
  if (trimmed.toLowerCase().startsWith("agent:")) return parse(trimmed, { mainKey: main })
  return parse(`agent:${options.agentId}:${trimmed}`, { mainKey: main })
}

/** Session ids name transcript files, so they are held to OpenClaw's file-safe pattern. */
export const SESSION_ID_PATTERN = /^[a-z0-9][a-z0-9._-]{0,127}$/i
export const isValidSessionId = (id: string): boolean => SESSION_ID_PATTERN.test(id) && !id.includes("..")

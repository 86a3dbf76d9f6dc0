/**
 * From an inbound message to an agent and a session key, as OpenClaw's
 * `resolveAgentRoute`: `bindings` pick the agent by tiers (peer, parent peer,
 * peer wildcard, guild + roles, guild, account, channel, default agent), and
 * `session.dmScope` (or the binding's override) shapes DM session keys.
 *
 * Everything here is pure. Keys are built in OpenClaw's grammar and checked
 * with `SessionKey.parse`, so an id that could spell another key or a path
 * is refused instead of routed.
 */
import { Result } from "effect"
import { type BeamclawConfig, defaultAgentId, type DmScope } from "../config/ConfigSchema.ts"
import { InvalidSessionKey, mainKey as buildMainKey, type ParsedSessionKey, parse as parseSessionKey } from "../session/SessionKey.ts"
import type { Binding, BindingPeer } from "./Bindings.ts"
import type { ChatType, InboundMessage } from "./InboundMessage.ts"

// ---------------------------------------------------------------------------
// Account ids
// ---------------------------------------------------------------------------

export const DEFAULT_ACCOUNT_ID = "default"

const ACCOUNT_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/

/**
 * OpenClaw's `normalizeAccountId`: trimmed and lower-cased; missing or empty
 * is `default`; characters outside `a-z 0-9 _ -` collapse to `-`, so the
 * result is always safe as a file-name part and a session-key segment.
 */
export const normalizeAccountId = (raw: string | undefined): string => {
  const trimmed = (raw ?? "").trim().toLowerCase()
  if (trimmed === "") return DEFAULT_ACCOUNT_ID
  if (ACCOUNT_ID_PATTERN.test(trimmed)) return trimmed
  const collapsed = trimmed.replace(/[^a-z0-9_-]+/g, "-").replace(/^[-_]+/, "").slice(0, 64).replace(/-+$/, "")
  return collapsed === "" ? DEFAULT_ACCOUNT_ID : collapsed
}

// ---------------------------------------------------------------------------
// Route resolution
// ---------------------------------------------------------------------------

export interface RoutePeer {
  readonly kind: ChatType
  readonly id: string
}

export interface RouteInput {
  readonly channel: string
  /** Missing means the default account. */
  readonly accountId?: string | undefined
  /** Who the conversation is with: the sender for a DM, the group or channel (the thread itself in a thread) otherwise. */
  readonly peer: RoutePeer
  /** A thread's parent channel: the thread inherits the parent's binding. */
  readonly parentPeer?: RoutePeer | undefined
  readonly guildId?: string | undefined
  readonly memberRoleIds?: ReadonlyArray<string> | undefined
}

/** What routing reads from the config; see `routeConfigOf`. */
export interface RouteConfig {
  readonly bindings: ReadonlyArray<Binding>
  /** The agents that exist; a binding naming another falls back to the default agent. */
  readonly agentIds: ReadonlyArray<string>
  readonly defaultAgentId: string
  readonly dmScope: DmScope
  readonly mainKey: string
}

/**
 * The route config of a decoded config. `bindings` is read when the config
 * has it (once it is wired into the schema); until then pass it separately.
 */
export const routeConfigOf = (
  config: BeamclawConfig & { readonly bindings?: ReadonlyArray<Binding> | undefined },
  bindings: ReadonlyArray<Binding> = config.bindings ?? []
): RouteConfig => {
  const fallback = defaultAgentId(config)
  return {
    bindings,
    // The same rule as AgentDirectory: an empty list means only the default agent exists.
    agentIds: config.agents.list.length === 0 ? [fallback] : config.agents.list.map((agent) => agent.id),
    defaultAgentId: fallback,
    dmScope: config.session.dmScope,
    mainKey: config.session.mainKey
  }
}

export type MatchedBy =
  | "binding.peer"
  | "binding.peer.parent"
  | "binding.peer.wildcard"
  | "binding.guild+roles"
  | "binding.guild"
  | "binding.account"
  | "binding.channel"
  | "default"

export interface ResolvedRoute {
  readonly agentId: string
  readonly channel: string
  readonly accountId: string
  readonly sessionKey: string
  /** `agent:<agentId>:<mainKey>`: where DMs land under `dmScope: main`, and what `lastRoute` pins. */
  readonly mainSessionKey: string
  /** `main` when the message lands in the main session (its lastRoute is the main one), else `session`. */
  readonly lastRoutePolicy: "main" | "session"
  readonly matchedBy: MatchedBy
  /** The binding that matched, if any (its index in `bindings`). */
  readonly bindingIndex: number | undefined
  /** Set when the matched binding named an agent that does not exist, so the default agent was used. */
  readonly unknownAgentId: string | undefined
}

/** Group and channel peers are the same thing seen from different platforms. */
const sameKind = (a: ChatType, b: ChatType): boolean => a === b || (a !== "direct" && b !== "direct")

const samePeer = (binding: BindingPeer, peer: RoutePeer | undefined): boolean =>
  peer !== undefined && binding.id !== "*" && sameKind(binding.kind, peer.kind) && binding.id === peer.id

const accountMatches = (pattern: string | undefined, accountId: string): boolean => {
  const trimmed = (pattern ?? "").trim()
  if (trimmed === "*") return true
  if (trimmed === "") return accountId === DEFAULT_ACCOUNT_ID
  return normalizeAccountId(trimmed) === accountId
}

const rolesOf = (binding: Binding): ReadonlyArray<string> => binding.match.roles ?? []

interface Tier {
  readonly matchedBy: MatchedBy
  readonly matches: (binding: Binding) => boolean
}

export const resolveAgentRoute = (input: RouteInput, config: RouteConfig): Result.Result<ResolvedRoute, InvalidSessionKey> => {
  const channel = input.channel.trim().toLowerCase()
  const accountId = normalizeAccountId(input.accountId)
  const peer: RoutePeer = { kind: input.peer.kind, id: input.peer.id.trim() }
  const parentPeer = input.parentPeer === undefined ? undefined : { kind: input.parentPeer.kind, id: input.parentPeer.id.trim() }
  const guildId = input.guildId?.trim() || undefined
  const memberRoles = new Set((input.memberRoleIds ?? []).map((role) => role.trim()))

  /** Every constraint a binding states beyond its peer must hold. */
  const scopeHolds = (binding: Binding): boolean =>
    (binding.match.guildId === undefined || binding.match.guildId === guildId) &&
    (rolesOf(binding).length === 0 || rolesOf(binding).some((role) => memberRoles.has(role)))
  const noPeerOrGuild = (binding: Binding): boolean =>
    binding.match.peer === undefined && binding.match.guildId === undefined && rolesOf(binding).length === 0

  const tiers: ReadonlyArray<Tier> = [
    { matchedBy: "binding.peer", matches: (b) => b.match.peer !== undefined && samePeer(b.match.peer, peer) && scopeHolds(b) },
    { matchedBy: "binding.peer.parent", matches: (b) => b.match.peer !== undefined && samePeer(b.match.peer, parentPeer) && scopeHolds(b) },
    {
      matchedBy: "binding.peer.wildcard",
      matches: (b) => b.match.peer !== undefined && b.match.peer.id === "*" && sameKind(b.match.peer.kind, peer.kind) && scopeHolds(b)
    },
    {
      matchedBy: "binding.guild+roles",
      matches: (b) => b.match.peer === undefined && guildId !== undefined && b.match.guildId === guildId && rolesOf(b).length > 0 && scopeHolds(b)
    },
    { matchedBy: "binding.guild", matches: (b) => b.match.peer === undefined && guildId !== undefined && b.match.guildId === guildId && rolesOf(b).length === 0 },
    { matchedBy: "binding.account", matches: (b) => noPeerOrGuild(b) && (b.match.accountId ?? "").trim() !== "*" },
    { matchedBy: "binding.channel", matches: (b) => noPeerOrGuild(b) && (b.match.accountId ?? "").trim() === "*" }
  ]

  const candidates = config.bindings
    .map((binding, index) => ({ binding, index }))
    .filter(({ binding }) => binding.match.channel === channel && accountMatches(binding.match.accountId, accountId))

  let matched: { readonly binding: Binding; readonly index: number; readonly matchedBy: MatchedBy } | undefined
  for (const tier of tiers) {
    const found = candidates.find(({ binding }) => tier.matches(binding))
    if (found !== undefined) {
      matched = { ...found, matchedBy: tier.matchedBy }
      break
    }
  }

  const defaultAgent = config.defaultAgentId.toLowerCase()
  const wanted = matched?.binding.agentId.toLowerCase()
  const known = wanted !== undefined && config.agentIds.some((id) => id.toLowerCase() === wanted)
  const agentId = known ? wanted : defaultAgent
  const dmScope = matched?.binding.session?.dmScope ?? config.dmScope

  return Result.gen(function*() {
    const session = yield* buildPeerSessionKey({ agentId, channel, accountId, peer, dmScope, mainKey: config.mainKey })
    const main = yield* parseSessionKey(buildMainKey(agentId, config.mainKey), { mainKey: config.mainKey })
    return {
      agentId,
      channel,
      accountId,
      sessionKey: session.key,
      mainSessionKey: main.key,
      lastRoutePolicy: session.key === main.key ? "main" : "session",
      matchedBy: matched?.matchedBy ?? "default",
      bindingIndex: matched?.index,
      unknownAgentId: wanted !== undefined && !known ? wanted : undefined
    } satisfies ResolvedRoute
  })
}

// ---------------------------------------------------------------------------
// Session keys
// ---------------------------------------------------------------------------

export interface PeerSessionKeyInput {
  readonly agentId: string
  readonly channel: string
  readonly accountId: string
  readonly peer: RoutePeer
  readonly dmScope: DmScope
  readonly mainKey: string
}

/**
 * OpenClaw's `buildAgentPeerSessionKey`:
 *
 * | peer | key |
 * |---|---|
 * | direct, `main` | `agent:<a>:<mainKey>` |
 * | direct, `per-peer` | `agent:<a>:direct:<peer>` |
 * | direct, `per-channel-peer` | `agent:<a>:<channel>:direct:<peer>` |
 * | direct, `per-account-channel-peer` | `agent:<a>:<channel>:<account>:direct:<peer>` |
 * | group | `agent:<a>:<channel>:group:<id>` |
 * | channel (a Discord thread too: its own id, no `:thread:` suffix) | `agent:<a>:<channel>:channel:<id>` |
 *
 * Keys are lower-cased. Each id must be one key segment: a `:` (which would
 * add segments and could spell another key) or a character `SessionKey`
 * refuses fails with `InvalidSessionKey`.
 */
export const buildPeerSessionKey = (input: PeerSessionKeyInput): Result.Result<ParsedSessionKey, InvalidSessionKey> => {
  const { accountId, agentId, channel, dmScope, mainKey, peer } = input
  const fail = (key: string, message: string) => Result.fail(new InvalidSessionKey({ key, message }))
  for (const [what, value] of [["peer id", peer.id], ["channel", channel], ["account id", accountId]] as const) {
    if (value.includes(":")) return fail(value, `${what} ${JSON.stringify(value)} cannot be part of a session key: it contains ":"`)
  }
  const key = peer.kind === "direct"
    ? dmScope === "main"
      ? buildMainKey(agentId, mainKey)
      : dmScope === "per-peer"
      ? `agent:${agentId}:direct:${peer.id}`
      : dmScope === "per-channel-peer"
      ? `agent:${agentId}:${channel}:direct:${peer.id}`
      : `agent:${agentId}:${channel}:${accountId}:direct:${peer.id}`
    : `agent:${agentId}:${channel}:${peer.kind}:${peer.id}`
  return parseSessionKey(key, { mainKey })
}

/**
 * The routing input of a normalized message: a DM's peer is its sender, a
 * group or channel's peer is the chat (the thread itself in a thread), and a
 * thread's parent channel is the parent peer.
 */
export const routeInputOf = (message: InboundMessage): RouteInput => ({
  channel: message.channel,
  accountId: message.accountId,
  peer: message.chatType === "direct"
    ? { kind: "direct", id: message.senderId }
    : { kind: message.chatType, id: message.chatId },
  parentPeer: message.threadId !== undefined && message.parentId !== undefined
    ? { kind: message.chatType === "group" ? "group" : "channel", id: message.parentId }
    : undefined,
  guildId: message.guildId,
  memberRoleIds: message.memberRoleIds
})

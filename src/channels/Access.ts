/**
 * Who may reach the agent, and when a message is for it: OpenClaw's DM and
 * group policy, the Discord guild allowlist, mention gating, command
 * authorization, bot-authored messages and bot-loop protection.
 *
 * All pure. Each function takes the facts it needs (config values, message
 * facts, the pairing store's approvals) and returns a decision with a reason
 * code, so the adapter can log why a message was dropped and tests can state
 * the rules directly. The Discord adapter composes them in OpenClaw's
 * preflight order (own message, bots, DM policy, guild allowlist, mention and
 * command gates).
 */
import { Effect, Schema } from "effect"

// ---------------------------------------------------------------------------
// Allow lists
// ---------------------------------------------------------------------------

export type DmPolicy = "pairing" | "allowlist" | "open" | "disabled"
export type GroupPolicy = "open" | "disabled" | "allowlist"

/**
 * A Discord allow-list entry as an id: `discord:`, `user:` and `pk:` prefixes
 * and the `<@id>` / `<@!id>` mention wrapper are accepted, as OpenClaw's.
 * `*` stays `*`. Names never match (no `dangerouslyAllowNameMatching` here),
 * and `accessGroup:` entries are not supported yet, so they match nobody.
 */
export const normalizeDiscordAllowEntry = (entry: string): string => {
  let value = entry.trim()
  const mention = /^<@!?(\d+)>$/.exec(value)
  if (mention?.[1] !== undefined) return mention[1]
  for (let prefix = /^(?:discord|user|pk):/i; prefix.test(value);) value = value.replace(prefix, "").trim()
  return value
}

/** The sender is in the list, or the list holds `*`. */
export const discordSenderAllowed = (allowList: ReadonlyArray<string>, senderId: string): boolean =>
  allowList.some((entry) => {
    const id = normalizeDiscordAllowEntry(entry)
    return id === "*" || (id !== "" && id === senderId)
  })

// ---------------------------------------------------------------------------
// DM and group policy (§5.1)
// ---------------------------------------------------------------------------

export type AccessBlockReason =
  | "group_policy_disabled"
  | "group_policy_empty_allowlist"
  | "group_policy_not_allowlisted"
  | "dm_policy_disabled"
  | "dm_policy_not_allowlisted"

export type AccessAllowReason = "group_policy_open" | "group_policy_allowlisted" | "dm_policy_open" | "dm_policy_allowlisted"

export type AccessDecision =
  | { readonly decision: "allow"; readonly reason: AccessAllowReason }
  | { readonly decision: "block"; readonly reason: AccessBlockReason }
  | { readonly decision: "pairing"; readonly reason: "dm_policy_pairing_required" }

export interface DmGroupAccessInput {
  readonly isGroup: boolean
  readonly dmPolicy: DmPolicy
  readonly groupPolicy: GroupPolicy
  /** The configured DM allow list (`allowFrom`). */
  readonly allowFrom: ReadonlyArray<string>
  /** Senders approved through pairing. They count for `pairing` and `allowlist` DMs only: never for `open`, never in groups. */
  readonly storeAllowFrom: ReadonlyArray<string>
  /** The configured group sender allow list (platforms with one; Discord uses the guild allowlist instead). */
  readonly groupAllowFrom: ReadonlyArray<string>
  readonly isSenderAllowed: (allowList: ReadonlyArray<string>) => boolean
}

/** OpenClaw's `resolveDmGroupAccessDecision`. */
export const dmGroupAccessDecision = (input: DmGroupAccessInput): AccessDecision => {
  if (input.isGroup) {
    switch (input.groupPolicy) {
      case "disabled":
        return { decision: "block", reason: "group_policy_disabled" }
      case "open":
        return { decision: "allow", reason: "group_policy_open" }
      case "allowlist":
        if (input.groupAllowFrom.length === 0) return { decision: "block", reason: "group_policy_empty_allowlist" }
        return input.isSenderAllowed(input.groupAllowFrom)
          ? { decision: "allow", reason: "group_policy_allowlisted" }
          : { decision: "block", reason: "group_policy_not_allowlisted" }
    }
  }
  switch (input.dmPolicy) {
    case "disabled":
      return { decision: "block", reason: "dm_policy_disabled" }
    case "open":
      if (input.allowFrom.some((entry) => entry.trim() === "*")) return { decision: "allow", reason: "dm_policy_open" }
      return input.isSenderAllowed(input.allowFrom)
        ? { decision: "allow", reason: "dm_policy_allowlisted" }
        : { decision: "block", reason: "dm_policy_not_allowlisted" }
    case "pairing":
    case "allowlist":
      if (input.isSenderAllowed([...input.allowFrom, ...input.storeAllowFrom])) return { decision: "allow", reason: "dm_policy_allowlisted" }
      return input.dmPolicy === "pairing"
        ? { decision: "pairing", reason: "dm_policy_pairing_required" }
        : { decision: "block", reason: "dm_policy_not_allowlisted" }
  }
}

// ---------------------------------------------------------------------------
// Discord guild allowlist (§5.3)
// ---------------------------------------------------------------------------

/**
 * A `guilds.<id>.channels.<key>` entry. The config's `DiscordGuildChannelConfig`
 * fits it; `users`/`roles` per channel are read when the schema grows them.
 */
export interface DiscordChannelEntry {
  readonly allow?: boolean | undefined
  readonly requireMention?: boolean | undefined
  readonly users?: ReadonlyArray<string> | undefined
  readonly roles?: ReadonlyArray<string> | undefined
}

/** A `guilds.<key>` entry; the config's `DiscordGuildConfig` fits it. */
export interface DiscordGuildEntry {
  readonly requireMention?: boolean | undefined
  readonly users?: ReadonlyArray<string> | undefined
  readonly roles?: ReadonlyArray<string> | undefined
  readonly channels?: Readonly<Record<string, DiscordChannelEntry>> | undefined
}

/** OpenClaw's Discord slug: lower case, no leading `#`, runs of other characters as one `-`. */
export const discordSlug = (name: string): string =>
  name.trim().toLowerCase().replace(/^#/, "").replace(/[^a-z0-9_]+/g, "-").replace(/^-+|-+$/g, "")

/** The entry for `id`, else the one whose key is `name` as a slug. */
const lookupByIdOrName = <A>(entries: Readonly<Record<string, A>>, id: string, name: string | undefined): { key: string; entry: A } | undefined => {
  const byId = entries[id]
  if (byId !== undefined && Object.hasOwn(entries, id)) return { key: id, entry: byId }
  if (name === undefined) return undefined
  const slug = discordSlug(name)
  if (slug === "") return undefined
  for (const [key, entry] of Object.entries(entries)) {
    if (key !== "*" && discordSlug(key) === slug) return { key, entry }
  }
  return undefined
}

export interface DiscordGuildAccessInput {
  readonly groupPolicy: GroupPolicy
  readonly guilds: Readonly<Record<string, DiscordGuildEntry>>
  readonly guildId: string
  readonly guildName?: string | undefined
  /** The channel the message is in: the thread itself in a thread. */
  readonly channelId: string
  readonly channelName?: string | undefined
  /** A thread's parent channel: a thread uses its parent's entry when it has none of its own. */
  readonly parentId?: string | undefined
  readonly parentName?: string | undefined
  readonly isThread: boolean
  readonly senderId: string
  readonly memberRoleIds: ReadonlyArray<string>
}

export type DiscordGuildAccessReason =
  | "allowed"
  | "group_policy_disabled"
  | "guild_not_allowlisted"
  | "channel_not_allowlisted"
  | "channel_disabled"
  | "sender_not_allowlisted"

export interface DiscordGuildAccess {
  /** The guild, the channel and the sender all pass. */
  readonly allowed: boolean
  readonly reason: DiscordGuildAccessReason
  /** The `guilds` key that matched (`*` for the wildcard entry). */
  readonly guildKey: string | undefined
  /** The `channels` key that matched (a parent's key for a thread, or `*`). */
  readonly channelKey: string | undefined
  /** Channel entry, else guild entry, else true. */
  readonly requireMention: boolean
  /** The effective `users`/`roles` restrict senders (one of them is non-empty). */
  readonly memberAccessConfigured: boolean
  /** The sender is in the effective `users`, or holds one of the effective `roles`. */
  readonly senderInMemberList: boolean
}

/**
 * OpenClaw's Discord guild checks, in its order:
 * 1. `groupPolicy: disabled` blocks every guild message.
 * 2. The guild entry is `guilds[<id>]`, else the entry keyed by the guild's
 *    name as a slug, else `guilds["*"]`. With `allowlist` a guild without an
 *    entry is blocked; with `open` too, once `guilds` lists any guild.
 * 3. A guild entry with a non-empty `channels` map is an allowlist: the
 *    channel's entry is its id, else its name as a slug (never a thread's own
 *    name), else for a thread its parent's id or name, else `*`. No entry
 *    blocks; `allow: false` blocks.
 * 4. `users` and `roles` come from the channel entry, each falling back to
 *    the guild entry's; when either is non-empty the sender must match one
 *    (`*` matches anyone).
 */
export const discordGuildAccess = (input: DiscordGuildAccessInput): DiscordGuildAccess => {
  const blocked = (
    reason: DiscordGuildAccessReason,
    extra?: Partial<Pick<DiscordGuildAccess, "guildKey" | "channelKey" | "requireMention">>
  ): DiscordGuildAccess => ({
    allowed: false,
    reason,
    guildKey: extra?.guildKey,
    channelKey: extra?.channelKey,
    requireMention: extra?.requireMention ?? true,
    memberAccessConfigured: false,
    senderInMemberList: false
  })
  if (input.groupPolicy === "disabled") return blocked("group_policy_disabled")

  const guildHit = lookupByIdOrName(input.guilds, input.guildId, input.guildName) ??
    (Object.hasOwn(input.guilds, "*") && input.guilds["*"] !== undefined ? { key: "*", entry: input.guilds["*"] } : undefined)
  if (guildHit === undefined) {
    if (input.groupPolicy === "allowlist" || Object.keys(input.guilds).length > 0) return blocked("guild_not_allowlisted")
    return { allowed: true, reason: "allowed", guildKey: undefined, channelKey: undefined, requireMention: true, memberAccessConfigured: false, senderInMemberList: false }
  }
  const guild = guildHit.entry

  let channelHit: { key: string; entry: DiscordChannelEntry } | undefined
  const channels = guild.channels ?? {}
  const channelMapIsAllowlist = Object.keys(channels).length > 0
  if (channelMapIsAllowlist) {
    channelHit = lookupByIdOrName(channels, input.channelId, input.isThread ? undefined : input.channelName) ??
      (input.isThread && input.parentId !== undefined ? lookupByIdOrName(channels, input.parentId, input.parentName) : undefined) ??
      (Object.hasOwn(channels, "*") && channels["*"] !== undefined ? { key: "*", entry: channels["*"] } : undefined)
    if (channelHit === undefined) return blocked("channel_not_allowlisted", { guildKey: guildHit.key, requireMention: guild.requireMention ?? true })
  }
  const channel = channelHit?.entry
  const requireMention = channel?.requireMention ?? guild.requireMention ?? true
  if (channel?.allow === false) return blocked("channel_disabled", { guildKey: guildHit.key, channelKey: channelHit?.key, requireMention })

  const users = channel?.users ?? guild.users ?? []
  const roles = channel?.roles ?? guild.roles ?? []
  const memberAccessConfigured = users.length > 0 || roles.length > 0
  const senderInMemberList = discordSenderAllowed(users, input.senderId) ||
    roles.some((role) => role.trim() === "*" || input.memberRoleIds.includes(role.trim()))
  const allowed = !memberAccessConfigured || senderInMemberList
  return {
    allowed,
    reason: allowed ? "allowed" : "sender_not_allowlisted",
    guildKey: guildHit.key,
    channelKey: channelHit?.key,
    requireMention,
    memberAccessConfigured,
    senderInMemberList
  }
}

// ---------------------------------------------------------------------------
// Mentions (§5.4)
// ---------------------------------------------------------------------------

const FENCED_CODE = /```[\s\S]*?```/g
// A run of N backticks, content, and a run of exactly N backticks: CommonMark's inline code span.
const INLINE_CODE = /(?<!`)(`+)(?!`)[\s\S]*?[^`]\1(?!`)/g
const ESCAPED_MENTION = /\\<@[!&]?\d+>/g

/** The text as Discord would ping from it: code blocks, inline code and escaped `\<@id>` removed. */
export const stripCodeAndEscapes = (text: string): string =>
  text.replace(FENCED_CODE, " ").replace(INLINE_CODE, " ").replace(ESCAPED_MENTION, " ")

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** `<@id>` or `<@!id>` outside code; the fallback for messages whose mention list lacks the bot (OpenClaw #44183). */
export const textMentionsUser = (text: string, userId: string): boolean =>
  userId !== "" && new RegExp(`<@!?${escapeRegExp(userId)}>`).test(stripCodeAndEscapes(text))

/** The bot was mentioned explicitly: in the platform's mention list, or in the text. */
export const detectExplicitMention = (input: {
  readonly botUserId: string | undefined
  readonly mentionedUserIds: ReadonlyArray<string>
  readonly text: string
}): boolean =>
  input.botUserId !== undefined && input.botUserId !== "" &&
  (input.mentionedUserIds.includes(input.botUserId) || textMentionsUser(input.text, input.botUserId))

export interface MentionGateInput {
  /** A group or channel message; DMs never need a mention. */
  readonly isGroup: boolean
  readonly requireMention: boolean
  /** Whether a mention could be recognised at all (the bot's id is known); without it nothing is gated. */
  readonly canDetectMention: boolean
  readonly wasMentioned: boolean
  readonly hasAnyMention: boolean
  /** An implicit mention: a reply to the bot (when `implicitMentions.replyToBot` is on, the default). */
  readonly implicitMention: boolean
  readonly hasControlCommand: boolean
  readonly commandAuthorized: boolean
  readonly allowTextCommands?: boolean | undefined
}

export interface MentionGate {
  /** Explicit, implicit, or an authorized command standing in for a mention. */
  readonly effectiveWasMentioned: boolean
  /** An authorized control command with no mention at all runs anyway. */
  readonly bypassed: boolean
  /** Drop the message (it may still go into the pending group history). */
  readonly shouldSkip: boolean
}

/** OpenClaw's `resolveInboundMentionDecision`. */
export const mentionGate = (input: MentionGateInput): MentionGate => {
  const requireMention = input.isGroup && input.requireMention
  const bypassed = requireMention && !input.wasMentioned && !input.hasAnyMention && (input.allowTextCommands ?? true) &&
    input.commandAuthorized && input.hasControlCommand
  const effectiveWasMentioned = input.wasMentioned || input.implicitMention || bypassed
  return { effectiveWasMentioned, bypassed, shouldSkip: requireMention && input.canDetectMention && !effectiveWasMentioned }
}

// ---------------------------------------------------------------------------
// Command authorization (§5.5)
// ---------------------------------------------------------------------------

export interface CommandAuthorizer {
  /** This source of authority is set up (a non-empty list). */
  readonly configured: boolean
  readonly allowed: boolean
}

/** Authorized when a configured authorizer allows the sender (OpenClaw with access groups on, its default). */
export const commandAuthorized = (authorizers: ReadonlyArray<CommandAuthorizer>): boolean =>
  authorizers.some((authorizer) => authorizer.configured && authorizer.allowed)

export interface DiscordCommandAuthInput {
  readonly chatType: "direct" | "group" | "channel"
  /** The DM access decision: a DM sender allowed in is authorized (OpenClaw's `open`+allow, or a matched allow list). */
  readonly dmAccess?: AccessDecision | undefined
  /** The configured `allowFrom` (the owner list); pairing approvals never authorize group commands. */
  readonly allowFrom: ReadonlyArray<string>
  readonly senderId: string
  /** The guild access result, for guild messages. */
  readonly guildAccess?: DiscordGuildAccess | undefined
}

/**
 * Who may run chat commands on Discord: in a DM, whoever the DM policy let
 * in; in a guild, a sender in `allowFrom`, or in the effective `users`/`roles`
 * when those are set. With neither configured nobody is authorized in guilds.
 */
export const discordCommandAuthorized = (input: DiscordCommandAuthInput): boolean => {
  if (input.chatType === "direct") return input.dmAccess?.decision === "allow"
  return commandAuthorized([
    { configured: input.allowFrom.length > 0, allowed: discordSenderAllowed(input.allowFrom, input.senderId) },
    {
      configured: input.guildAccess?.memberAccessConfigured ?? false,
      allowed: input.guildAccess?.senderInMemberList ?? false
    }
  ])
}

/** An unauthorized control command is dropped (command-only messages are ignored, not sent to the agent). */
export const controlCommandGate = (input: {
  readonly hasControlCommand: boolean
  readonly commandAuthorized: boolean
  readonly allowTextCommands?: boolean | undefined
}): { readonly shouldBlock: boolean } => ({
  shouldBlock: (input.allowTextCommands ?? true) && input.hasControlCommand && !input.commandAuthorized
})

// ---------------------------------------------------------------------------
// Bot-authored messages (§8.2 steps 2, 4, 14)
// ---------------------------------------------------------------------------

/** `channels.discord.allowBots`: `false` (default), `true`, or `"mentions"` (only DMs, mentions of the bot and replies to it). */
export const AllowBots = Schema.Union([Schema.Boolean, Schema.Literal("mentions")])
export type AllowBots = typeof AllowBots.Type

export type BotMessageDecision =
  | { readonly allow: true }
  | { readonly allow: false; readonly reason: "own_message" | "bot_not_allowed" | "bot_not_mentioned" }

export const botMessageDecision = (input: {
  readonly senderId: string
  /** The bot's own user id, once known (Discord READY). */
  readonly botUserId: string | undefined
  readonly isBot: boolean
  readonly allowBots: AllowBots | undefined
  readonly isDirect: boolean
  readonly wasMentioned: boolean
  readonly replyToBot: boolean
}): BotMessageDecision => {
  if (input.botUserId !== undefined && input.senderId === input.botUserId) return { allow: false, reason: "own_message" }
  if (!input.isBot) return { allow: true }
  const allowBots = input.allowBots ?? false
  if (allowBots === false) return { allow: false, reason: "bot_not_allowed" }
  if (allowBots === "mentions" && !(input.isDirect || input.wasMentioned || input.replyToBot)) return { allow: false, reason: "bot_not_mentioned" }
  return { allow: true }
}

// ---------------------------------------------------------------------------
// Bot-loop protection (§5.6)
// ---------------------------------------------------------------------------

const PositiveInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(1))
const NonNegativeInt = Schema.Number.check(Schema.isInt(), Schema.isGreaterThanOrEqualTo(0))

/** `botLoopProtection` in the config; every key optional, layered over the narrower-first levels. */
export const BotLoopProtectionConfig = Schema.Struct({
  enabled: Schema.optionalKey(Schema.Boolean),
  maxEventsPerWindow: Schema.optionalKey(PositiveInt),
  windowSeconds: Schema.optionalKey(PositiveInt),
  cooldownSeconds: Schema.optionalKey(NonNegativeInt)
})
export type BotLoopProtectionConfig = typeof BotLoopProtectionConfig.Type

export interface BotLoopSettings {
  readonly enabled: boolean
  readonly maxEventsPerWindow: number
  readonly windowMs: number
  readonly cooldownMs: number
}

/** OpenClaw's built-ins: 20 events per 60 s window, then 60 s of silence. */
export const defaultBotLoopSettings: BotLoopSettings = { enabled: true, maxEventsPerWindow: 20, windowMs: 60_000, cooldownMs: 60_000 }

/** Key by key, the narrowest level that sets it wins (account, channel, defaults), then the built-ins. */
export const resolveBotLoopSettings = (...levels: ReadonlyArray<BotLoopProtectionConfig | undefined>): BotLoopSettings => {
  const pick = <K extends keyof BotLoopProtectionConfig>(key: K) => levels.find((level) => level?.[key] !== undefined)?.[key]
  const windowSeconds = pick("windowSeconds")
  const cooldownSeconds = pick("cooldownSeconds")
  return {
    enabled: pick("enabled") ?? defaultBotLoopSettings.enabled,
    maxEventsPerWindow: pick("maxEventsPerWindow") ?? defaultBotLoopSettings.maxEventsPerWindow,
    windowMs: windowSeconds === undefined ? defaultBotLoopSettings.windowMs : windowSeconds * 1000,
    cooldownMs: cooldownSeconds === undefined ? defaultBotLoopSettings.cooldownMs : cooldownSeconds * 1000
  }
}

/** One bot pair's recent events in one conversation. */
export interface BotPairState {
  /** Times of the events still inside the window, oldest first. */
  readonly events: ReadonlyArray<number>
  /** While set and in the future, every event of the pair is suppressed. */
  readonly cooldownUntil: number | undefined
}

export type BotLoopVerdict =
  | { readonly allow: true }
  | { readonly allow: false; readonly reason: "budget_exceeded" | "cooldown" }

/**
 * The pair's key: account, conversation, and the two bots in either order
 * (A answering B and B answering A are the same loop).
 */
export const botPairKey = (input: {
  readonly accountId: string
  readonly chatId: string
  readonly botA: string
  readonly botB: string
}): string => {
  const [first, second] = input.botA <= input.botB ? [input.botA, input.botB] : [input.botB, input.botA]
  return JSON.stringify([input.accountId, input.chatId, first, second])
}

/**
 * One event of a bot pair at `now`: events older than the window fall out;
 * during a cooldown the event is suppressed (and not counted); an event
 * beyond the budget is suppressed and starts the cooldown. Returns the next
 * state, `undefined` once there is nothing left to remember.
 */
export const stepBotLoop = (
  state: BotPairState | undefined,
  now: number,
  settings: BotLoopSettings
): { readonly state: BotPairState | undefined; readonly verdict: BotLoopVerdict } => {
  if (!settings.enabled) return { state: undefined, verdict: { allow: true } }
  if (state?.cooldownUntil !== undefined && now < state.cooldownUntil) return { state, verdict: { allow: false, reason: "cooldown" } }
  const recent = (state?.events ?? []).filter((at) => at > now - settings.windowMs && at <= now)
  if (recent.length >= settings.maxEventsPerWindow) {
    return {
      state: settings.cooldownMs > 0 ? { events: [], cooldownUntil: now + settings.cooldownMs } : undefined,
      verdict: { allow: false, reason: "budget_exceeded" }
    }
  }
  return { state: { events: [...recent, now], cooldownUntil: undefined }, verdict: { allow: true } }
}

/** A pair whose events have all left the window and whose cooldown is over carries no information. */
export const botPairIsIdle = (state: BotPairState, now: number, settings: BotLoopSettings): boolean =>
  (state.cooldownUntil === undefined || now >= state.cooldownUntil) && state.events.every((at) => at <= now - settings.windowMs)

/**
 * The bot-loop guard an account keeps: `stepBotLoop` over a map of pairs,
 * pruned of idle pairs as it goes so a long-lived account does not collect
 * every bot it ever saw. Synchronous and single-threaded by construction.
 */
export interface BotLoopGuard {
  readonly check: (key: string, now: number) => BotLoopVerdict
  readonly size: () => number
}

export const makeBotLoopGuard = (settings: () => BotLoopSettings = () => defaultBotLoopSettings): BotLoopGuard => {
  const pairs = new Map<string, BotPairState>()
  let checks = 0
  return {
    check: (key, now) => {
      const current = settings()
      const { state, verdict } = stepBotLoop(pairs.get(key), now, current)
      if (state === undefined) pairs.delete(key)
      else pairs.set(key, state)
      // An occasional sweep keeps the map bounded by the pairs active in the last window.
      if (++checks % 256 === 0) {
        for (const [other, value] of pairs) if (botPairIsIdle(value, now, current)) pairs.delete(other)
      }
      return verdict
    },
    size: () => pairs.size
  }
}

/** The guard as an Effect-friendly check, reading the time from the Clock. */
export const checkBotLoop = (guard: BotLoopGuard, key: string): Effect.Effect<BotLoopVerdict> =>
  Effect.clockWith((clock) => Effect.sync(() => guard.check(key, clock.currentTimeMillisUnsafe())))

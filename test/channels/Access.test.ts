import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  type AccessDecision,
  AllowBots,
  botMessageDecision,
  botPairKey,
  BotLoopProtectionConfig,
  type BotPairState,
  checkBotLoop,
  controlCommandGate,
  defaultBotLoopSettings,
  detectExplicitMention,
  discordCommandAuthorized,
  discordGuildAccess,
  type DiscordGuildAccessInput,
  type DiscordGuildEntry,
  discordSenderAllowed,
  discordSlug,
  dmGroupAccessDecision,
  type DmGroupAccessInput,
  makeBotLoopGuard,
  mentionGate,
  type MentionGateInput,
  normalizeDiscordAllowEntry,
  resolveBotLoopSettings,
  stepBotLoop,
  stripCodeAndEscapes,
  textMentionsUser
} from "../../src/channels/Access.ts"
import { BeamclawConfig } from "../../src/config/ConfigSchema.ts"

const ALICE = "111111111111111111"
const BOB = "222222222222222222"
const BOT = "999999999999999999"
const GUILD = "500000000000000000"
const GENERAL = "600000000000000001"
const HELP = "600000000000000002"
const THREAD = "600000000000000099"
const MOD_ROLE = "700000000000000001"

describe("Access: allow lists", () => {
  it("reads Discord allow entries as ids", () => {
    assert.strictEqual(normalizeDiscordAllowEntry(" discord:123 "), "123")
    assert.strictEqual(normalizeDiscordAllowEntry("user:123"), "123")
    assert.strictEqual(normalizeDiscordAllowEntry("Discord:user:123"), "123")
    assert.strictEqual(normalizeDiscordAllowEntry("<@123>"), "123")
    assert.strictEqual(normalizeDiscordAllowEntry("<@!123>"), "123")
    assert.strictEqual(normalizeDiscordAllowEntry("*"), "*")
  })

  it("matches the sender exactly, or anyone with *", () => {
    assert.isTrue(discordSenderAllowed([`discord:${ALICE}`], ALICE))
    assert.isFalse(discordSenderAllowed([`discord:${ALICE}`], BOB))
    assert.isFalse(discordSenderAllowed([ALICE.slice(0, 10)], ALICE))
    assert.isFalse(discordSenderAllowed(["alice", "accessGroup:ops", "", "discord:"], ALICE))
    assert.isTrue(discordSenderAllowed(["*"], BOB))
    assert.isFalse(discordSenderAllowed([], ALICE))
  })
})

describe("Access: DM and group policy", () => {
  const decide = (input: Partial<DmGroupAccessInput> & { readonly sender?: string }): AccessDecision =>
    dmGroupAccessDecision({
      isGroup: false,
      dmPolicy: "pairing",
      groupPolicy: "allowlist",
      allowFrom: [],
      storeAllowFrom: [],
      groupAllowFrom: [],
      isSenderAllowed: (list) => discordSenderAllowed(list, input.sender ?? ALICE),
      ...input
    })

  it("pairing: configured or approved senders in, everyone else gets a code", () => {
    assert.deepStrictEqual(decide({}), { decision: "pairing", reason: "dm_policy_pairing_required" })
    assert.strictEqual(decide({ allowFrom: [ALICE] }).decision, "allow")
    assert.strictEqual(decide({ storeAllowFrom: [ALICE] }).decision, "allow")
    assert.strictEqual(decide({ storeAllowFrom: [BOB] }).decision, "pairing")
  })

  it("allowlist: configured or approved senders in, everyone else blocked", () => {
    assert.deepStrictEqual(decide({ dmPolicy: "allowlist" }), { decision: "block", reason: "dm_policy_not_allowlisted" })
    assert.strictEqual(decide({ dmPolicy: "allowlist", storeAllowFrom: [ALICE] }).decision, "allow")
    assert.strictEqual(decide({ dmPolicy: "allowlist", allowFrom: [`user:${ALICE}`] }).decision, "allow")
  })

  it("open: public only with *, and pairing approvals never widen it", () => {
    assert.deepStrictEqual(decide({ dmPolicy: "open", allowFrom: ["*"] }), { decision: "allow", reason: "dm_policy_open" })
    assert.deepStrictEqual(decide({ dmPolicy: "open", allowFrom: [ALICE] }), { decision: "allow", reason: "dm_policy_allowlisted" })
    assert.deepStrictEqual(decide({ dmPolicy: "open", allowFrom: [BOB], storeAllowFrom: [ALICE] }), { decision: "block", reason: "dm_policy_not_allowlisted" })
    assert.strictEqual(decide({ dmPolicy: "open" }).decision, "block")
  })

  it("disabled blocks everyone, even listed senders", () => {
    assert.deepStrictEqual(decide({ dmPolicy: "disabled", allowFrom: ["*", ALICE] }), { decision: "block", reason: "dm_policy_disabled" })
  })

  it("groups follow groupPolicy and never the pairing store", () => {
    assert.deepStrictEqual(decide({ isGroup: true, groupPolicy: "disabled", groupAllowFrom: ["*"] }), { decision: "block", reason: "group_policy_disabled" })
    assert.deepStrictEqual(decide({ isGroup: true, groupPolicy: "open" }), { decision: "allow", reason: "group_policy_open" })
    assert.deepStrictEqual(decide({ isGroup: true, storeAllowFrom: [ALICE], allowFrom: [ALICE] }), { decision: "block", reason: "group_policy_empty_allowlist" })
    assert.deepStrictEqual(decide({ isGroup: true, groupAllowFrom: [BOB] }), { decision: "block", reason: "group_policy_not_allowlisted" })
    assert.deepStrictEqual(decide({ isGroup: true, groupAllowFrom: [ALICE] }), { decision: "allow", reason: "group_policy_allowlisted" })
  })
})

describe("Access: Discord guild allowlist", () => {
  const access = (guilds: Record<string, DiscordGuildEntry>, extra: Partial<DiscordGuildAccessInput> = {}) =>
    discordGuildAccess({
      groupPolicy: "allowlist",
      guilds,
      guildId: GUILD,
      channelId: GENERAL,
      isThread: false,
      senderId: ALICE,
      memberRoleIds: [],
      ...extra
    })

  it("accepts the config's own guild entries", () => {
    const config = Schema.decodeUnknownSync(BeamclawConfig)({
      channels: { discord: { guilds: { [GUILD]: { requireMention: false, channels: { [GENERAL]: { allow: true } } } } } }
    })
    const result = access(config.channels.discord.guilds)
    assert.isTrue(result.allowed)
    assert.isFalse(result.requireMention)
  })

  it("disabled blocks, allowlist needs the guild, open admits any guild until guilds are listed", () => {
    assert.strictEqual(access({ [GUILD]: {} }, { groupPolicy: "disabled" }).reason, "group_policy_disabled")
    assert.strictEqual(access({}).reason, "guild_not_allowlisted")
    assert.strictEqual(access({ "123": {} }).reason, "guild_not_allowlisted")
    assert.isTrue(access({}, { groupPolicy: "open" }).allowed)
    assert.isTrue(access({}, { groupPolicy: "open" }).requireMention)
    assert.strictEqual(access({ "123": {} }, { groupPolicy: "open" }).reason, "guild_not_allowlisted")
    assert.isTrue(access({ [GUILD]: {} }).allowed)
  })

  it("slugs names as OpenClaw", () => {
    assert.strictEqual(discordSlug("#General Chat!"), "general-chat")
    assert.strictEqual(discordSlug("  dev_ops  "), "dev_ops")
    assert.strictEqual(discordSlug("!!!"), "")
  })

  it("finds the guild by id, by name as a slug, or the * entry", () => {
    assert.strictEqual(access({ "my-server": {} }, { guildName: "My Server!" }).guildKey, "my-server")
    assert.strictEqual(access({ "*": { requireMention: false } }).guildKey, "*")
    assert.isFalse(access({ "*": { requireMention: false } }).requireMention)
    assert.strictEqual(access({ "*": {}, [GUILD]: {} }).guildKey, GUILD)
  })

  it("turns a channels map into an allowlist; * keeps the rest of the guild open", () => {
    const guilds = { [GUILD]: { channels: { [HELP]: { requireMention: false } } } }
    assert.strictEqual(access(guilds).reason, "channel_not_allowlisted")
    assert.isTrue(access(guilds, { channelId: HELP }).allowed)
    const withStar = { [GUILD]: { channels: { [HELP]: { requireMention: false }, "*": {} } } }
    assert.strictEqual(access(withStar).channelKey, "*")
    assert.isTrue(access(withStar).requireMention)
    assert.isFalse(access(withStar, { channelId: HELP }).requireMention)
    assert.isTrue(access({ [GUILD]: { channels: {} } }).allowed, "an empty map allows every channel")
  })

  it("matches channels by id or name, a thread by its parent, never by its own name", () => {
    const guilds = { [GUILD]: { channels: { general: { requireMention: false } } } }
    assert.strictEqual(access(guilds, { channelName: "#General" }).channelKey, "general")
    const thread = { channelId: THREAD, isThread: true, parentId: GENERAL }
    assert.strictEqual(access(guilds, { ...thread, channelName: "general" }).reason, "channel_not_allowlisted")
    assert.strictEqual(access(guilds, { ...thread, parentName: "general" }).channelKey, "general")
    assert.strictEqual(access({ [GUILD]: { channels: { [GENERAL]: {} } } }, thread).channelKey, GENERAL)
    assert.strictEqual(access({ [GUILD]: { channels: { [THREAD]: { requireMention: false }, [GENERAL]: {} } } }, thread).channelKey, THREAD)
  })

  it("blocks a disabled channel entry", () => {
    assert.strictEqual(access({ [GUILD]: { channels: { [GENERAL]: { allow: false }, "*": {} } } }).reason, "channel_disabled")
  })

  it("resolves requireMention channel first, then guild, then true", () => {
    assert.isTrue(access({ [GUILD]: {} }).requireMention)
    assert.isFalse(access({ [GUILD]: { requireMention: false } }).requireMention)
    assert.isTrue(access({ [GUILD]: { requireMention: false, channels: { [GENERAL]: { requireMention: true } } } }).requireMention)
    assert.isFalse(access({ [GUILD]: { channels: { [GENERAL]: { requireMention: false } } } }).requireMention)
  })

  it("restricts senders by users OR roles, the channel entry overriding the guild's", () => {
    const guild = { [GUILD]: { users: [BOB], roles: [MOD_ROLE] } }
    assert.strictEqual(access(guild).reason, "sender_not_allowlisted")
    assert.isTrue(access(guild, { senderId: BOB }).allowed)
    assert.isTrue(access(guild, { memberRoleIds: [MOD_ROLE] }).allowed)
    assert.isTrue(access(guild).memberAccessConfigured)
    const opened = { [GUILD]: { users: [BOB], channels: { [GENERAL]: { users: ["*"] }, [HELP]: {} } } }
    assert.isTrue(access(opened).allowed)
    assert.isFalse(access(opened, { channelId: HELP }).allowed, "the other channel keeps the guild's users")
    assert.isFalse(access({ [GUILD]: {} }).memberAccessConfigured)
  })
})

describe("Access: mentions", () => {
  it("ignores mentions inside code and escaped mentions", () => {
    assert.isTrue(textMentionsUser(`hey <@${BOT}> look`, BOT))
    assert.isTrue(textMentionsUser(`hey <@!${BOT}>`, BOT))
    assert.isFalse(textMentionsUser(`see \`<@${BOT}>\``, BOT))
    assert.isFalse(textMentionsUser(`see \`\`a \` <@${BOT}>\`\``, BOT))
    assert.isFalse(textMentionsUser(`\`\`\`\n<@${BOT}>\n\`\`\``, BOT))
    assert.isFalse(textMentionsUser(`\\<@${BOT}>`, BOT))
    assert.isFalse(textMentionsUser(`<@${BOT}1>`, BOT))
    assert.isFalse(textMentionsUser(`<@&${BOT}>`, BOT))
    assert.isTrue(textMentionsUser(`\`code\` then <@${BOT}>`, BOT))
    assert.isTrue(textMentionsUser(`\`\`\`unclosed <@${BOT}>`, BOT), "an unclosed fence is not code")
    assert.isFalse(textMentionsUser("<@>", ""))
    assert.notInclude(stripCodeAndEscapes("a `b` c"), "b")
  })

  it("detects an explicit mention from the mention list or the text", () => {
    assert.isTrue(detectExplicitMention({ botUserId: BOT, mentionedUserIds: [BOT], text: "" }))
    assert.isTrue(detectExplicitMention({ botUserId: BOT, mentionedUserIds: [], text: `<@${BOT}> hi` }))
    assert.isFalse(detectExplicitMention({ botUserId: BOT, mentionedUserIds: [ALICE], text: `<@${ALICE}>` }))
    assert.isFalse(detectExplicitMention({ botUserId: undefined, mentionedUserIds: [BOT], text: `<@${BOT}>` }))
  })

  const gate = (input: Partial<MentionGateInput>) =>
    mentionGate({
      isGroup: true,
      requireMention: true,
      canDetectMention: true,
      wasMentioned: false,
      hasAnyMention: false,
      implicitMention: false,
      hasControlCommand: false,
      commandAuthorized: false,
      ...input
    })

  it("skips unmentioned group messages when a mention is required and detectable", () => {
    assert.isTrue(gate({}).shouldSkip)
    assert.isFalse(gate({ wasMentioned: true }).shouldSkip)
    assert.isFalse(gate({ implicitMention: true }).shouldSkip, "a reply to the bot counts")
    assert.isFalse(gate({ requireMention: false }).shouldSkip)
    assert.isFalse(gate({ isGroup: false }).shouldSkip, "DMs never need a mention")
    assert.isFalse(gate({ canDetectMention: false }).shouldSkip, "without a bot id nothing is gated")
  })

  it("lets an authorized command through without a mention, but not an unauthorized one or one addressed to someone else", () => {
    const bypass = gate({ hasControlCommand: true, commandAuthorized: true })
    assert.deepStrictEqual(bypass, { effectiveWasMentioned: true, bypassed: true, shouldSkip: false })
    assert.isTrue(gate({ hasControlCommand: true }).shouldSkip)
    assert.isTrue(gate({ hasControlCommand: true, commandAuthorized: true, hasAnyMention: true }).shouldSkip)
    assert.isTrue(gate({ hasControlCommand: true, commandAuthorized: true, allowTextCommands: false }).shouldSkip)
    assert.isFalse(gate({ wasMentioned: true, hasControlCommand: true, commandAuthorized: true }).bypassed)
  })
})

describe("Access: command authorization", () => {
  const guildAccess = (users: ReadonlyArray<string>, roles: ReadonlyArray<string> = [], sender = ALICE) =>
    discordGuildAccess({ groupPolicy: "allowlist", guilds: { [GUILD]: { users, roles } }, guildId: GUILD, channelId: GENERAL, isThread: false, senderId: sender, memberRoleIds: [] })

  it("authorizes DM senders the DM policy let in", () => {
    assert.isTrue(discordCommandAuthorized({ chatType: "direct", dmAccess: { decision: "allow", reason: "dm_policy_allowlisted" }, allowFrom: [], senderId: ALICE }))
    assert.isFalse(discordCommandAuthorized({ chatType: "direct", dmAccess: { decision: "pairing", reason: "dm_policy_pairing_required" }, allowFrom: [ALICE], senderId: ALICE }))
    assert.isFalse(discordCommandAuthorized({ chatType: "direct", allowFrom: [ALICE], senderId: ALICE }))
  })

  it("authorizes guild senders in allowFrom or in the effective users/roles, nobody when neither is set", () => {
    assert.isTrue(discordCommandAuthorized({ chatType: "channel", allowFrom: [ALICE], senderId: ALICE, guildAccess: guildAccess([]) }))
    assert.isTrue(discordCommandAuthorized({ chatType: "channel", allowFrom: [], senderId: ALICE, guildAccess: guildAccess([ALICE]) }))
    assert.isFalse(discordCommandAuthorized({ chatType: "channel", allowFrom: [BOB], senderId: ALICE, guildAccess: guildAccess([BOB]) }))
    assert.isFalse(discordCommandAuthorized({ chatType: "channel", allowFrom: [], senderId: ALICE, guildAccess: guildAccess([]) }))
    assert.isFalse(discordCommandAuthorized({ chatType: "group", allowFrom: [], senderId: ALICE }))
  })

  it("blocks unauthorized control commands only", () => {
    assert.isTrue(controlCommandGate({ hasControlCommand: true, commandAuthorized: false }).shouldBlock)
    assert.isFalse(controlCommandGate({ hasControlCommand: true, commandAuthorized: true }).shouldBlock)
    assert.isFalse(controlCommandGate({ hasControlCommand: false, commandAuthorized: false }).shouldBlock)
    assert.isFalse(controlCommandGate({ hasControlCommand: true, commandAuthorized: false, allowTextCommands: false }).shouldBlock)
  })
})

describe("Access: bot-authored messages", () => {
  const decide = (input: Partial<Parameters<typeof botMessageDecision>[0]>) =>
    botMessageDecision({ senderId: ALICE, botUserId: BOT, isBot: false, allowBots: undefined, isDirect: false, wasMentioned: false, replyToBot: false, ...input })

  it("always ignores the bot's own messages", () => {
    assert.deepStrictEqual(decide({ senderId: BOT, isBot: true, allowBots: true }), { allow: false, reason: "own_message" })
  })

  it("ignores other bots unless allowBots, and with `mentions` only when addressed", () => {
    assert.deepStrictEqual(decide({ isBot: true }), { allow: false, reason: "bot_not_allowed" })
    assert.deepStrictEqual(decide({ isBot: true, allowBots: true }), { allow: true })
    assert.deepStrictEqual(decide({ isBot: true, allowBots: "mentions" }), { allow: false, reason: "bot_not_mentioned" })
    assert.deepStrictEqual(decide({ isBot: true, allowBots: "mentions", wasMentioned: true }), { allow: true })
    assert.deepStrictEqual(decide({ isBot: true, allowBots: "mentions", replyToBot: true }), { allow: true })
    assert.deepStrictEqual(decide({ isBot: true, allowBots: "mentions", isDirect: true }), { allow: true })
    assert.deepStrictEqual(decide({}), { allow: true })
    assert.deepStrictEqual(decide({ botUserId: undefined }), { allow: true })
  })

  it("decodes allowBots from config values", () => {
    const decode = Schema.decodeUnknownSync(AllowBots)
    assert.strictEqual(decode(true), true)
    assert.strictEqual(decode("mentions"), "mentions")
    assert.throws(() => decode("always"))
  })
})

describe("Access: bot-loop protection", () => {
  const settings = { enabled: true, maxEventsPerWindow: 3, windowMs: 10_000, cooldownMs: 5_000 }
  const run = (times: ReadonlyArray<number>) => {
    let state: BotPairState | undefined
    return times.map((now) => {
      const step = stepBotLoop(state, now, settings)
      state = step.state
      return step.verdict.allow ? "allow" : step.verdict.reason
    })
  }

  it("allows the budget per window, then suppresses for the cooldown, then starts over", () => {
    assert.deepStrictEqual(run([0, 1, 2, 3, 4, 5_002, 5_003]), ["allow", "allow", "allow", "budget_exceeded", "cooldown", "cooldown", "allow"])
  })

  it("slides the window: old events stop counting", () => {
    assert.deepStrictEqual(run([0, 1, 2, 10_000, 10_001, 10_002, 10_003]), ["allow", "allow", "allow", "allow", "allow", "allow", "budget_exceeded"])
  })

  it("does nothing when disabled, and defaults to 20 per 60 s with 60 s cooldown", () => {
    assert.deepStrictEqual(stepBotLoop(undefined, 0, { ...settings, enabled: false }), { state: undefined, verdict: { allow: true } })
    assert.deepStrictEqual(defaultBotLoopSettings, { enabled: true, maxEventsPerWindow: 20, windowMs: 60_000, cooldownMs: 60_000 })
    let state: BotPairState | undefined
    const verdicts = Array.from({ length: 21 }, (_, i) => {
      const step = stepBotLoop(state, i * 1000, defaultBotLoopSettings)
      state = step.state
      return step.verdict.allow
    })
    assert.strictEqual(verdicts.filter(Boolean).length, 20)
    assert.isFalse(verdicts[20])
  })

  it("layers settings key by key, narrowest first", () => {
    assert.deepStrictEqual(resolveBotLoopSettings({ maxEventsPerWindow: 5 }, { maxEventsPerWindow: 8, cooldownSeconds: 90 }, undefined), {
      enabled: true,
      maxEventsPerWindow: 5,
      windowMs: 60_000,
      cooldownMs: 90_000
    })
    assert.deepStrictEqual(resolveBotLoopSettings(), defaultBotLoopSettings)
    assert.throws(() => Schema.decodeUnknownSync(BotLoopProtectionConfig)({ maxEventsPerWindow: 0 }))
    assert.throws(() => Schema.decodeUnknownSync(BotLoopProtectionConfig)({ windowSeconds: 1.5 }))
  })

  it("counts A→B and B→A as one pair, per account and conversation", () => {
    assert.strictEqual(botPairKey({ accountId: "a", chatId: "c", botA: BOT, botB: ALICE }), botPairKey({ accountId: "a", chatId: "c", botA: ALICE, botB: BOT }))
    assert.notStrictEqual(botPairKey({ accountId: "a", chatId: "c", botA: BOT, botB: ALICE }), botPairKey({ accountId: "a", chatId: "d", botA: BOT, botB: ALICE }))
    assert.notStrictEqual(botPairKey({ accountId: "a", chatId: "c:d", botA: "x", botB: "y" }), botPairKey({ accountId: "a:c", chatId: "d", botA: "x", botB: "y" }))
  })

  it("keeps a guard per account that forgets idle pairs", () => {
    const guard = makeBotLoopGuard(() => settings)
    for (let i = 0; i < 3; i++) assert.isTrue(guard.check("loop", i).allow)
    assert.isFalse(guard.check("loop", 3).allow)
    assert.isTrue(guard.check("other", 3).allow, "pairs are independent")
    // One new pair every 100 ms: only the last 10 s of them are live at any time.
    for (let i = 0; i < 600; i++) guard.check(`pair-${i}`, 100_000 + i * 100)
    assert.isBelow(guard.size(), 300, "idle pairs are swept")
  })

  it.effect("checks against the Clock", () =>
    Effect.gen(function*() {
      const guard = makeBotLoopGuard(() => settings)
      for (let i = 0; i < 3; i++) assert.isTrue((yield* checkBotLoop(guard, "k")).allow)
      assert.deepStrictEqual(yield* checkBotLoop(guard, "k"), { allow: false, reason: "budget_exceeded" })
      yield* TestClock.adjust("4999 millis")
      assert.deepStrictEqual(yield* checkBotLoop(guard, "k"), { allow: false, reason: "cooldown" })
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* checkBotLoop(guard, "k"), { allow: true })
    }))
})

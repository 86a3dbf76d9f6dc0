import { assert, describe, it } from "@effect/vitest"
import { Result, Schema } from "effect"
import { decodeInboundMessage } from "../../src/channels/InboundMessage.ts"
import { type Binding, Bindings } from "../../src/channels/Bindings.ts"
import {
  buildPeerSessionKey,
  normalizeAccountId,
  type ResolvedRoute,
  resolveAgentRoute,
  type RouteConfig,
  routeConfigOf,
  type RouteInput,
  routeInputOf
} from "../../src/channels/Routing.ts"
import { BeamclawConfig, parseOptions } from "../../src/config/ConfigSchema.ts"
import * as SessionKey from "../../src/session/SessionKey.ts"

const GUILD = "1000000000000000001"
const OTHER_GUILD = "1000000000000000002"
const CHANNEL = "2000000000000000001"
const THREAD = "2000000000000000099"
const USER = "3000000000000000001"
const ROLE = "4000000000000000001"

const decodeBindings = (input: unknown): ReadonlyArray<Binding> => Schema.decodeUnknownSync(Bindings)(input, parseOptions)

const config = (bindings: unknown, overrides: Record<string, unknown> = {}): RouteConfig =>
  routeConfigOf(
    Schema.decodeUnknownSync(BeamclawConfig)({
      agents: { list: [{ id: "main", default: true }, { id: "ops" }, { id: "opus" }, { id: "sonnet" }, { id: "support" }, { id: "thread-agent" }] },
      ...overrides
    }),
    decodeBindings(bindings)
  )

const route = (input: RouteInput, routeConfig: RouteConfig): ResolvedRoute => {
  const resolved = resolveAgentRoute(input, routeConfig)
  if (Result.isFailure(resolved)) throw new Error(resolved.failure.message)
  return resolved.success
}

const guildMessage = (extra: Partial<RouteInput> = {}): RouteInput => ({
  channel: "discord",
  peer: { kind: "channel", id: CHANNEL },
  guildId: GUILD,
  memberRoleIds: [ROLE],
  ...extra
})

describe("Routing: account ids", () => {
  it("normalizes as OpenClaw: trimmed, lower case, default when missing, unsafe characters collapsed", () => {
    assert.strictEqual(normalizeAccountId(undefined), "default")
    assert.strictEqual(normalizeAccountId("   "), "default")
    assert.strictEqual(normalizeAccountId(" Work "), "work")
    assert.strictEqual(normalizeAccountId("my bot/../x"), "my-bot-x")
    assert.strictEqual(normalizeAccountId("--__x"), "x")
    assert.strictEqual(normalizeAccountId("../.."), "default")
    assert.strictEqual(normalizeAccountId("a".repeat(80)).length, 64)
  })
})

describe("Routing: resolveAgentRoute", () => {
  const tiered = [
    { agentId: "a-channel", match: { channel: "discord", accountId: "*" } },
    { agentId: "a-account", match: { channel: "discord" } },
    { agentId: "a-guild", match: { channel: "discord", guildId: GUILD } },
    { agentId: "a-roles", match: { channel: "discord", guildId: GUILD, roles: [ROLE] } },
    { agentId: "a-wild", match: { channel: "discord", peer: { kind: "channel", id: "*" } } },
    { agentId: "a-parent", match: { channel: "discord", peer: { kind: "channel", id: CHANNEL } } },
    { agentId: "a-peer", match: { channel: "discord", peer: { kind: "channel", id: THREAD } } }
  ]
  const tierAgents = { agents: { list: ["main", ...tiered.map((b) => b.agentId)].map((id) => ({ id })) } }

  it("walks the tiers in order: peer, parent peer, peer wildcard, guild+roles, guild, account, channel, default", () => {
    const thread: RouteInput = guildMessage({ peer: { kind: "channel", id: THREAD }, parentPeer: { kind: "channel", id: CHANNEL } })
    const expectations: ReadonlyArray<readonly [number, string, string]> = [
      [7, "binding.peer", "a-peer"],
      [6, "binding.peer.parent", "a-parent"],
      [5, "binding.peer.wildcard", "a-wild"],
      [4, "binding.guild+roles", "a-roles"],
      [3, "binding.guild", "a-guild"],
      [2, "binding.account", "a-account"],
      [1, "binding.channel", "a-channel"],
      [0, "default", "main"]
    ]
    for (const [count, matchedBy, agentId] of expectations) {
      // Higher tiers are listed last, so config order alone could not explain the result.
      const resolved = route(thread, config(tiered.slice(0, count), tierAgents))
      assert.strictEqual(resolved.matchedBy, matchedBy, `${count} bindings`)
      assert.strictEqual(resolved.agentId, agentId, `${count} bindings`)
    }
  })

  it("takes the first binding in a tier, in config order", () => {
    const resolved = route(guildMessage(), config([
      { agentId: "ops", match: { channel: "discord", guildId: GUILD } },
      { agentId: "sonnet", match: { channel: "discord", guildId: GUILD } }
    ]))
    assert.strictEqual(resolved.agentId, "ops")
    assert.strictEqual(resolved.bindingIndex, 0)
  })

  it("needs every stated field to match", () => {
    const bindings = [
      { agentId: "opus", match: { channel: "discord", peer: { kind: "channel", id: CHANNEL }, guildId: OTHER_GUILD } },
      { agentId: "sonnet", match: { channel: "discord", guildId: GUILD, roles: ["9"] } },
      { agentId: "ops", match: { channel: "telegram" } }
    ]
    const resolved = route(guildMessage(), config(bindings))
    assert.strictEqual(resolved.matchedBy, "default")
    assert.strictEqual(resolved.agentId, "main")
    assert.strictEqual(route(guildMessage({ memberRoleIds: [ROLE, "9"] }), config(bindings)).agentId, "sonnet")
  })

  it("treats group and channel peers alike, but never a DM as either", () => {
    const bindings = [{ agentId: "ops", match: { channel: "discord", peer: { kind: "group", id: CHANNEL } } }]
    assert.strictEqual(route(guildMessage(), config(bindings)).agentId, "ops")
    assert.strictEqual(route({ channel: "discord", peer: { kind: "direct", id: CHANNEL } }, config(bindings)).agentId, "main")
  })

  it("matches accounts: missing means the default account, `*` any, else that account", () => {
    const bindings = config([
      { agentId: "opus", match: { channel: "discord", accountId: " Work " } },
      { agentId: "ops", match: { channel: "discord" } },
      { agentId: "sonnet", match: { channel: "discord", accountId: "*" } }
    ])
    const dm = (accountId: string | undefined): RouteInput => ({ channel: "Discord", accountId, peer: { kind: "direct", id: USER } })
    assert.strictEqual(route(dm(undefined), bindings).agentId, "ops")
    assert.strictEqual(route(dm("DEFAULT"), bindings).agentId, "ops")
    assert.strictEqual(route(dm("work"), bindings).agentId, "opus")
    assert.strictEqual(route(dm("other"), bindings).agentId, "sonnet")
    assert.strictEqual(route(dm("other"), bindings).matchedBy, "binding.channel")
    // A peer binding without an account applies to the default account only.
    const peerOnly = config([{ agentId: "ops", match: { channel: "discord", peer: { kind: "direct", id: USER } } }])
    assert.strictEqual(route(dm(undefined), peerOnly).agentId, "ops")
    assert.strictEqual(route(dm("work"), peerOnly).agentId, "main")
  })

  it("falls back to the default agent when a binding names an agent that does not exist", () => {
    const resolved = route(guildMessage(), config([{ agentId: "ghost", match: { channel: "discord", guildId: GUILD } }]))
    assert.strictEqual(resolved.agentId, "main")
    assert.strictEqual(resolved.matchedBy, "binding.guild")
    assert.strictEqual(resolved.unknownAgentId, "ghost")
    // With no agents listed, the only agent is `main`.
    const bare = routeConfigOf(Schema.decodeUnknownSync(BeamclawConfig)({}), decodeBindings([{ agentId: "ops", match: { channel: "discord" } }]))
    assert.strictEqual(route({ channel: "discord", peer: { kind: "direct", id: USER } }, bare).agentId, "main")
  })
})

describe("Routing: session keys", () => {
  const dm: RouteInput = { channel: "discord", accountId: "Work", peer: { kind: "direct", id: USER } }

  it("shapes DM keys by dmScope", () => {
    const keyFor = (dmScope: string) => route(dm, config([], { session: { dmScope } })).sessionKey
    assert.strictEqual(keyFor("main"), "agent:main:main")
    assert.strictEqual(keyFor("per-peer"), `agent:main:direct:${USER}`)
    assert.strictEqual(keyFor("per-channel-peer"), `agent:main:discord:direct:${USER}`)
    assert.strictEqual(keyFor("per-account-channel-peer"), `agent:main:discord:work:direct:${USER}`)
  })

  it("uses session.mainKey and says when a message lands in the main session", () => {
    const resolved = route(dm, config([], { session: { mainKey: "home" } }))
    assert.strictEqual(resolved.sessionKey, "agent:main:home")
    assert.strictEqual(resolved.mainSessionKey, "agent:main:home")
    assert.strictEqual(resolved.lastRoutePolicy, "main")
    const channel = route(guildMessage(), config([], { session: { mainKey: "home" } }))
    assert.strictEqual(channel.mainSessionKey, "agent:main:home")
    assert.strictEqual(channel.lastRoutePolicy, "session")
  })

  it("lets a binding override dmScope for the DMs it matches", () => {
    const bindings = [{ agentId: "ops", match: { channel: "discord", accountId: "*", peer: { kind: "direct", id: USER } }, session: { dmScope: "per-channel-peer" } }]
    const resolved = route(dm, config(bindings))
    assert.strictEqual(resolved.sessionKey, `agent:ops:discord:direct:${USER}`)
    assert.strictEqual(route({ ...dm, peer: { kind: "direct", id: "42" } }, config(bindings)).sessionKey, "agent:main:main")
  })

  it("keys groups and channels per conversation, a Discord thread as its own channel (no :thread: suffix)", () => {
    assert.strictEqual(route({ channel: "discord", peer: { kind: "group", id: "G1" } }, config([])).sessionKey, "agent:main:discord:group:g1")
    assert.strictEqual(route(guildMessage(), config([])).sessionKey, `agent:main:discord:channel:${CHANNEL}`)
    const thread = route(guildMessage({ peer: { kind: "channel", id: THREAD }, parentPeer: { kind: "channel", id: CHANNEL } }), config([]))
    assert.strictEqual(thread.sessionKey, `agent:main:discord:channel:${THREAD}`)
  })

  it("produces keys SessionKey accepts and classifies", () => {
    const kinds = [
      [route(dm, config([], { session: { dmScope: "per-account-channel-peer" } })).sessionKey, "direct"],
      [route(dm, config([])).sessionKey, "main"],
      [route(guildMessage(), config([])).sessionKey, "channel"],
      [route({ channel: "discord", peer: { kind: "group", id: "9" } }, config([])).sessionKey, "group"]
    ] as const
    for (const [key, kind] of kinds) {
      const parsed = SessionKey.parse(key)
      assert.isTrue(Result.isSuccess(parsed), key)
      if (Result.isSuccess(parsed)) assert.strictEqual(parsed.success.kind, kind, key)
    }
  })

  it("refuses ids that would add key segments or spell a path", () => {
    for (const id of ["a:b", "123:thread:5", "../etc", "a/b", "a\\b", ".hidden", "", " ", "a b"]) {
      for (const kind of ["direct", "channel"] as const) {
        const resolved = resolveAgentRoute({ channel: "discord", peer: { kind, id } }, config([], { session: { dmScope: "per-peer" } }))
        assert.isTrue(Result.isFailure(resolved), `${kind} ${JSON.stringify(id)}`)
      }
    }
    assert.isTrue(Result.isFailure(buildPeerSessionKey({ agentId: "main", channel: "dis:cord", accountId: "default", peer: { kind: "group", id: "1" }, dmScope: "main", mainKey: "main" })))
  })

  it("gives every generated id either a one-segment key or a refusal", () => {
    const alphabet = "aZ09_-.:/\\@ #~+=é\u0000"
    let seed = 7
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
    let accepted = 0
    for (let i = 0; i < 2000; i++) {
      const id = Array.from({ length: 1 + Math.floor(next() * 6) }, () => alphabet[Math.floor(next() * alphabet.length)]).join("")
      const kind = next() < 0.5 ? "direct" : "channel"
      const resolved = resolveAgentRoute({ channel: "discord", peer: { kind, id } }, config([], { session: { dmScope: "per-channel-peer" } }))
      if (Result.isFailure(resolved)) continue
      accepted++
      const expected = `agent:main:discord:${kind}:${id.trim().toLowerCase()}`
      assert.strictEqual(resolved.success.sessionKey, expected, JSON.stringify(id))
      // Keys never name files (transcripts are named by session id), but they must stay one segment per id.
      assert.strictEqual(resolved.success.sessionKey.split(":").length, 5, JSON.stringify(id))
      assert.isFalse(/[/\\\s]/.test(resolved.success.sessionKey), JSON.stringify(id))
    }
    assert.isAbove(accepted, 100, "the generator should produce valid ids too")
    assert.isBelow(accepted, 1900, "the generator should produce invalid ids too")
  })
})

describe("Routing: routeInputOf", () => {
  const base = {
    channel: "discord",
    accountId: "default",
    messageId: "1",
    from: "discord:channel:1",
    to: "channel:1",
    senderId: USER,
    isBot: false,
    body: "hi",
    memberRoleIds: [ROLE],
    attachments: [],
    wasMentioned: false,
    hasAnyMention: false,
    replyToBot: false,
    timestamp: 0
  }
  const decode = (input: unknown) => {
    const decoded = decodeInboundMessage(input)
    if (Result.isFailure(decoded)) throw new Error(decoded.failure.message)
    return decoded.success
  }

  it("routes a DM by its sender, a channel by itself, a thread by itself with its parent", () => {
    assert.deepStrictEqual(routeInputOf(decode({ ...base, chatType: "direct", chatId: "55", memberRoleIds: [] })).peer, { kind: "direct", id: USER })
    const channel = routeInputOf(decode({ ...base, chatType: "channel", chatId: CHANNEL, guildId: GUILD }))
    assert.deepStrictEqual(channel.peer, { kind: "channel", id: CHANNEL })
    assert.isUndefined(channel.parentPeer)
    assert.deepStrictEqual(channel.memberRoleIds, [ROLE])
    const thread = routeInputOf(decode({ ...base, chatType: "channel", chatId: THREAD, threadId: THREAD, parentId: CHANNEL, guildId: GUILD }))
    assert.deepStrictEqual(thread.peer, { kind: "channel", id: THREAD })
    assert.deepStrictEqual(thread.parentPeer, { kind: "channel", id: CHANNEL })
    assert.strictEqual(thread.guildId, GUILD)
  })

  it("sends a thread to its parent channel's agent but its own session", () => {
    const message = decode({ ...base, chatType: "channel", chatId: THREAD, threadId: THREAD, parentId: CHANNEL, guildId: GUILD })
    const resolved = route(routeInputOf(message), config([{ agentId: "ops", match: { channel: "discord", peer: { kind: "channel", id: CHANNEL } } }]))
    assert.strictEqual(resolved.agentId, "ops")
    assert.strictEqual(resolved.matchedBy, "binding.peer.parent")
    assert.strictEqual(resolved.sessionKey, `agent:ops:discord:channel:${THREAD}`)
  })
})

/**
 * The chat commands as Discord slash commands, end to end: the real
 * discord.js against the fake Discord, the channel layer, the real session
 * layer against the fake Anthropic API. Registration on connect (and not
 * again when unchanged, and removal when turned off), answers through the
 * interaction (deferred, then the original edited; ephemeral by default),
 * the same access rules as typed commands (the pairing code under DM
 * pairing), once per interaction, follow-ups posted at most once when their
 * answer is lost, and the journal (refusals included) across a restart.
 */
import * as fs from "node:fs/promises"
import * as net from "node:net"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { NOT_AUTHORIZED_TEXT, SILENT_NATIVE_TEXT } from "../../../src/channels/ChannelHost.ts"
import { ChannelSupervisor } from "../../../src/channels/ChannelSupervisor.ts"
import { followupErrorOf } from "../../../src/channels/discord/DiscordAccount.ts"
import { NATIVE_COMMANDS } from "../../../src/channels/discord/NativeCommands.ts"
import { PairingStore } from "../../../src/channels/PairingStore.ts"
import { Sessions } from "../../../src/session/Sessions.ts"
import { connected, openChannelLayer as channelLayer, wait } from "../../support/DiscordHarness.ts"
import { FakeAnthropic } from "../../support/FakeAnthropic.ts"
import { FakeDiscord, type FakeDiscordHandle } from "../../support/FakeDiscord.ts"
import * as TestApp from "../../support/TestApp.ts"

const quiet = Effect.sleep("400 millis")
const ours = NATIVE_COMMANDS.map((c) => c.name).sort()
const registeredNames = (fake: FakeDiscordHandle) => fake.applicationCommands().map((c) => c.name).sort()
const commandWrites = (fake: FakeDiscordHandle) =>
  fake.requests.filter((r) => r.path.startsWith(`/applications/${fake.applicationId}/commands`) && r.method !== "GET" && r.status < 300)
const commandReads = (fake: FakeDiscordHandle) => fake.requests.filter((r) => r.path === `/applications/${fake.applicationId}/commands` && r.method === "GET")

/** The answer shown for an interaction: its original response once edited. */
const answerOf = (fake: FakeDiscordHandle, id: string) => fake.interaction(id)?.originalContent

describe("slash command registration", () => {
  it.live("registers the chat commands on connect, not again when unchanged, keeps other commands, and removes ours when turned off", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const discord = { apiBaseUrl: fake.apiBase, token: fake.token }
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        assert.deepStrictEqual(registeredNames(fake), ours)
        assert.deepStrictEqual(commandWrites(fake).map((r) => r.method), ["PUT"], "one bulk overwrite")
        const think = fake.applicationCommands().find((c) => c.name === "think")
        assert.include(JSON.stringify(think?.options), "xhigh")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))

      // A restart compares and writes nothing.
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => commandReads(fake).length === 2, "compared on the second connect")
        yield* quiet
        assert.strictEqual(commandWrites(fake).length, 1, "not registered again")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))

      // Someone else's command is left alone; turned off, ours go.
      const foreign = yield* Effect.promise(() =>
        fetch(`${fake.apiBase}/v10/applications/${fake.applicationId}/commands`, {
          method: "POST",
          headers: { authorization: `Bot ${fake.token}`, "content-type": "application/json" },
          body: JSON.stringify({ name: "weather", description: "Not ours" })
        })
      )
      assert.strictEqual(foreign.status, 201)
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === 1, "ours removed")
        assert.deepStrictEqual(registeredNames(fake), ["weather"])
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { ...discord, commands: { native: false } })))

      // On again (through the global setting), with a foreign command present: ours are created one by one.
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length + 1, "ours back")
        assert.deepStrictEqual(registeredNames(fake), [...ours, "weather"].sort())
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord, { commands: { native: true } })))
      assert.deepStrictEqual(fake.protocolErrors, [])
    }), 40_000)
})

describe("slash commands", () => {
  it.live("/status and /think from an allowed user are answered through the interaction, ephemeral, and never in the chat", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "ada" })
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const status = fake.dispatchInteraction({ user, channelId, commandName: "status" })
        yield* wait(fake, () => answerOf(fake, status.id) !== undefined, "status answer")
        assert.strictEqual(answerOf(fake, status.id), "Session agent:main:main (agent main) has no messages yet.")
        assert.strictEqual(fake.interaction(status.id)?.flags, 64, "ephemeral")
        assert.strictEqual(fake.interactionResponses[0]?.callbackType, 5, "deferred first")

        const think = fake.dispatchInteraction({ user, channelId, commandName: "think", options: { level: "high" } })
        yield* wait(fake, () => answerOf(fake, think.id) !== undefined, "think answer")
        assert.strictEqual(answerOf(fake, think.id), "✅ Thinking set to high.")
        const shown = fake.dispatchInteraction({ user, channelId, commandName: "think" })
        yield* wait(fake, () => answerOf(fake, shown.id) !== undefined, "think shown")
        assert.strictEqual(answerOf(fake, shown.id), "Thinking: high", "the typed command's session was changed")

        const help = fake.dispatchInteraction({ user, channelId, commandName: "help" })
        yield* wait(fake, () => answerOf(fake, help.id) !== undefined, "help")
        assert.include(answerOf(fake, help.id) ?? "", "/compact")
        assert.deepStrictEqual(fake.sentMessages, [], "nothing posted in the chat")
        assert.strictEqual(anthropic.requests.length, 0, "commands never reach the model")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token })))
    }), 30_000)

  it.live("with slashCommand.ephemeral false the answer is visible to the channel", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "bea" })
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const status = fake.dispatchInteraction({ user, channelId, commandName: "status" })
        yield* wait(fake, () => answerOf(fake, status.id) !== undefined, "status answer")
        assert.strictEqual(fake.interaction(status.id)?.flags, 0)
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token, slashCommand: { ephemeral: false } })))
    }), 30_000)

  it.live("an unauthorized user gets a refusal, in a DM and in a guild, and nothing is changed", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const owner = fake.addDmUser({ username: "owner" })
      const stranger = fake.addDmUser({ username: "stranger" })
      const generalId = fake.snowflake()
      const guild = fake.addGuild({ name: "G", channels: [{ id: generalId, name: "general" }], members: [{ user: stranger.user }, { user: owner.user }] })
      const discord = {
        apiBaseUrl: fake.apiBase,
        token: fake.token,
        dmPolicy: "allowlist",
        allowFrom: [owner.user.id],
        guilds: { [guild.id]: { users: [owner.user.id] } }
      }
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const dm = fake.dispatchInteraction({ user: stranger.user, channelId: stranger.channelId, commandName: "think", options: { level: "high" } })
        const inGuild = fake.dispatchInteraction({ user: stranger.user, channelId: generalId, commandName: "new" })
        yield* wait(fake, () => answerOf(fake, dm.id) !== undefined && answerOf(fake, inGuild.id) !== undefined, "refusals")
        assert.strictEqual(answerOf(fake, dm.id), NOT_AUTHORIZED_TEXT)
        assert.strictEqual(answerOf(fake, inGuild.id), NOT_AUTHORIZED_TEXT)
        assert.strictEqual(fake.interaction(dm.id)?.flags, 64)

        const allowed = fake.dispatchInteraction({ user: owner.user, channelId: generalId, commandName: "think" })
        yield* wait(fake, () => answerOf(fake, allowed.id) !== undefined, "owner's answer")
        assert.strictEqual(answerOf(fake, allowed.id), "Thinking: the agent's default", "the refused /think changed nothing")
        const sessions = yield* Sessions
        assert.deepStrictEqual((yield* sessions.list("main")).map((row) => row.key), [])
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
    }), 30_000)

  it.live("the same interaction delivered twice is answered once", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "cy" })
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const status = fake.dispatchInteraction({ user, channelId, commandName: "status" })
        fake.redispatchInteraction(status.id)
        yield* wait(fake, () => answerOf(fake, status.id) !== undefined, "answer")
        fake.redispatchInteraction(status.id)
        yield* quiet
        const responses = fake.interactionResponses.filter((r) => r.interactionId === status.id)
        assert.deepStrictEqual(responses.map((r) => r.kind), ["callback", "edit-original"])
        const supervisor = yield* ChannelSupervisor
        assert.isTrue((yield* supervisor.status)[0]?.connected, "a refused second acknowledgement is not a problem")
        assert.isUndefined((yield* supervisor.status)[0]?.lastError)
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token })))
    }), 30_000)

  it.live("/new resets the routed conversation's session; with a message it is the fresh session's first turn, answered through the interaction", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make((request) =>
        JSON.stringify(request.body?.messages ?? []).includes("quiet-please") ? { kind: "message", content: [{ type: "text", text: "NO_REPLY" }] } : undefined
      )
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "dee" })
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        fake.dispatchMessage({ channelId, author: user, content: "old-secret-topic" })
        yield* wait(fake, () => fake.sentMessages.length === 1, "typed answer")
        const sessions = yield* Sessions
        assert.isAbove((yield* sessions.history("agent:main:main")).length, 0)

        const fresh = fake.dispatchInteraction({ user, channelId, commandName: "new" })
        yield* wait(fake, () => answerOf(fake, fresh.id) !== undefined, "/new answer")
        assert.strictEqual(answerOf(fake, fresh.id), "✅ New session started.")
        assert.strictEqual((yield* sessions.history("agent:main:main")).length, 0, "the routed session was reset")

        const withMessage = fake.dispatchInteraction({ user, channelId, commandName: "new", options: { input: "hello there" } })
        yield* wait(fake, () => answerOf(fake, withMessage.id) !== undefined, "/new with a message")
        assert.strictEqual(answerOf(fake, withMessage.id), "echo: hello there")
        assert.notInclude(JSON.stringify(anthropic.requests.at(-1)?.body?.messages ?? []), "old-secret-topic")
        const silent = fake.dispatchInteraction({ user, channelId, commandName: "reset", options: { message: "quiet-please" } })
        yield* wait(fake, () => answerOf(fake, silent.id) !== undefined, "a silent turn still fills the deferred answer")
        assert.strictEqual(answerOf(fake, silent.id), SILENT_NATIVE_TEXT)
        assert.strictEqual(fake.sentMessages.length, 1, "the answers went through the interactions")
        assert.strictEqual(fake.typingCalls.length, 1, "typing only for the typed message")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token })))
    }), 30_000)
})

describe("slash command answers in several pieces", () => {
  it.live("a follow-up whose answer is lost after Discord posted it (a 5xx, a reset connection) is not posted again, and is dead-lettered", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "fin" })
      const words = Array.from({ length: 12 }, (_, i) => `w${i}-${"x".repeat(8)}`)
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const followupRoute = { method: "POST", path: new RegExp(`^/webhooks/${fake.applicationId}/`) }
        // The first follow-up is created and answered 500; the second is created and its connection reset.
        fake.failNext(followupRoute, { status: 500, after: true })
        fake.failNext(followupRoute, { status: "reset", after: true })
        const long = fake.dispatchInteraction({ user, channelId, commandName: "reset", options: { message: words.join(" ") } })
        yield* wait(fake, () => answerOf(fake, long.id) !== undefined && (fake.interaction(long.id)?.followups.length ?? 0) >= 3, "the answer in pieces")
        yield* quiet
        const shown = fake.interaction(long.id)
        const pieces = [shown?.originalContent ?? "", ...(shown?.followups ?? []).map((f) => f.content)]
        assert.isAtLeast(pieces.length, 4, "cut into an original and several follow-ups")
        assert.strictEqual(new Set(pieces).size, pieces.length, "no piece posted twice")
        assert.strictEqual(pieces.join(" ").replace(/\s+/g, " "), `echo: ${words.join(" ")}`, "every piece once, in order")
        assert.isTrue((shown?.followups ?? []).every((f) => f.flags === 64), "ephemeral follow-ups")
        const posts = fake.requests.filter((r) => r.method === "POST" && r.path.startsWith(`/webhooks/${fake.applicationId}/`))
        assert.strictEqual(posts.length, pieces.length - 1, "one request per follow-up: none repeated")
        const dead = yield* Effect.promise(() => fs.readFile(path.join(home, "channels", "discord", "default", "dead-letter.jsonl"), "utf8"))
        const deadKeys = dead.trim().split("\n").map((line) => JSON.parse(line).idempotencyKey)
        assert.deepStrictEqual(deadKeys, [`discord:default:${channelId}:${long.id}:reply:1`, `discord:default:${channelId}:${long.id}:reply:2`])
        assert.include(dead, "may have been posted")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token, textChunkLimit: 40 })))
    }), 30_000)
})

describe("follow-up failures", () => {
  it.live("with the real REST client: a refusal and a connection refused are known not sent; a 5xx and a reset may have posted", () =>
    Effect.gen(function*() {
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { REST, Routes } = yield* Effect.promise(() => import("discord.js"))
      const closedPort = yield* Effect.promise(() =>
        new Promise<number>((resolve) => {
          const server = net.createServer().listen(0, "127.0.0.1", () => {
            const address = server.address()
            server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0))
          })
        })
      )
      const post = (api: string) =>
        Effect.promise(() => {
          const rest = new REST({ retries: 0, api })
          return rest.post(Routes.webhook(fake.applicationId, "no-such-token"), { auth: false, body: { content: "x" } }).then(
            () => undefined,
            (error: unknown) => {
              rest.clearHashSweeper()
              rest.clearHandlerSweeper()
              return followupErrorOf(error)
            }
          )
        })
      const matcher = { method: "POST", path: /^\/webhooks\// }
      const refusedByDiscord = yield* post(fake.apiBase)
      assert.include(refusedByDiscord, { retryable: false, notSent: true })
      const refusedConnection = yield* post(`http://127.0.0.1:${closedPort}/api`)
      assert.include(refusedConnection, { retryable: true, notSent: true })
      fake.failNext(matcher, { status: 503 })
      const serverError = yield* post(fake.apiBase)
      assert.strictEqual(serverError?.retryable, false)
      assert.isUndefined(serverError?.notSent)
      fake.failNext(matcher, { status: "reset", after: true })
      const reset = yield* post(fake.apiBase)
      assert.strictEqual(reset?.retryable, false)
      assert.isUndefined(reset?.notSent)
      assert.include(reset?.message ?? "", "may have been posted")
    }), 20_000)
})

describe("slash commands under DM pairing", () => {
  it.live("an unknown DM user gets the pairing code through the interaction (ephemeral), the same code while it is pending, and the command once approved", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const users = ["gus", "hal", "ida", "jo"].map((username) => fake.addDmUser({ username }))
      const [gus, hal, ida, jo] = users
      if (gus === undefined || hal === undefined || ida === undefined || jo === undefined) return yield* Effect.die(new Error("users"))
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const first = fake.dispatchInteraction({ user: gus.user, channelId: gus.channelId, commandName: "think", options: { level: "high" } })
        yield* wait(fake, () => answerOf(fake, first.id) !== undefined, "pairing answer")
        const answer = answerOf(fake, first.id) ?? ""
        const code = /Pairing code: ([A-Z2-9]{8})/.exec(answer)?.[1]
        assert.isDefined(code, answer)
        assert.include(answer, `Your Discord user id: ${gus.user.id}`)
        assert.strictEqual(fake.interaction(first.id)?.flags, 64, "ephemeral")
        assert.deepStrictEqual(fake.sentMessages, [], "through the interaction, not a DM")
        const pairing = yield* PairingStore
        assert.deepStrictEqual((yield* pairing.list("discord")).map((r) => r.id), [gus.user.id])

        const again = fake.dispatchInteraction({ user: gus.user, channelId: gus.channelId, commandName: "status" })
        yield* wait(fake, () => answerOf(fake, again.id) !== undefined, "second answer")
        assert.include(answerOf(fake, again.id) ?? "", `Pairing code: ${code}`, "the pending request's code")
        assert.strictEqual((yield* pairing.list("discord")).length, 1, "still one request")

        // At most 3 pending requests: the fourth sender is refused.
        for (const other of [hal, ida]) {
          const asked = fake.dispatchInteraction({ user: other.user, channelId: other.channelId, commandName: "help" })
          yield* wait(fake, () => answerOf(fake, asked.id) !== undefined, "pairing answer")
          assert.include(answerOf(fake, asked.id) ?? "", "Pairing code:")
        }
        const fourth = fake.dispatchInteraction({ user: jo.user, channelId: jo.channelId, commandName: "help" })
        yield* wait(fake, () => answerOf(fake, fourth.id) !== undefined, "refusal")
        assert.strictEqual(answerOf(fake, fourth.id), NOT_AUTHORIZED_TEXT)

        const sessions = yield* Sessions
        assert.deepStrictEqual((yield* sessions.list("main")).map((row) => row.key), [], "no command ran")
        yield* pairing.approve("discord", code ?? "")
        const approved = fake.dispatchInteraction({ user: gus.user, channelId: gus.channelId, commandName: "think", options: { level: "low" } })
        yield* wait(fake, () => answerOf(fake, approved.id) !== undefined, "approved answer")
        assert.strictEqual(answerOf(fake, approved.id), "✅ Thinking set to low.")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token, dmPolicy: "pairing", allowFrom: [] })))
    }), 30_000)
})

describe("slash commands across a restart", () => {
  /** An accepted slash command in the journal, as a run that died before answering left it. */
  const journalRecord = (channelId: string, userId: string, interaction: { readonly id: string; readonly token: string }, applicationId: string, timestamp: number, sessionKey = "agent:main:main", body = "/status") => ({
    t: "accepted",
    id: `${channelId}:${interaction.id}`,
    at: 1,
    sessionKey,
    message: {
      channel: "discord", accountId: "default", messageId: interaction.id, chatType: "direct", chatId: channelId, from: `discord:${userId}`,
      to: `channel:${channelId}`, senderId: userId, isBot: false, body, memberRoleIds: [], attachments: [],
      wasMentioned: true, hasAnyMention: true, replyToBot: false, timestamp,
      interaction: { id: interaction.id, token: interaction.token, applicationId, ephemeral: true }
    }
  })
  const journalDir = (home: string) => path.join(home, "channels", "discord", "default")
  const writeJournal = (home: string, lines: ReadonlyArray<unknown>) =>
    Effect.promise(async () => {
      await fs.mkdir(journalDir(home), { recursive: true })
      await fs.writeFile(path.join(journalDir(home), "inbox.jsonl"), lines.map((line) => JSON.stringify(line)).join("\n") + "\n")
    })
  const deadLetters = (home: string) =>
    Effect.promise(() => fs.readFile(path.join(journalDir(home), "dead-letter.jsonl"), "utf8").catch(() => ""))

  it.live("a deferred command accepted before a crash is answered after the restart; one whose token expired is dead-lettered, visibly", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "eve" })
      const discord = { apiBaseUrl: fake.apiBase, token: fake.token }
      // A first run registers the commands; the user runs /status while the gateway is down, the
      // dying run acknowledged it (deferred) and journaled it, but never answered.
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
      const pending = fake.dispatchInteraction({ user, channelId, commandName: "status" })
      const deferred = yield* Effect.promise(() =>
        fetch(`${fake.apiBase}/v10/interactions/${pending.id}/${pending.token}/callback`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: 5, data: { flags: 64 } })
        })
      )
      assert.strictEqual(deferred.status, 204)
      const expired = { id: fake.snowflake(), token: "expired-token" }
      yield* writeJournal(home, [
        journalRecord(channelId, user.id, pending, fake.applicationId, pending.createdAt),
        journalRecord(channelId, user.id, expired, fake.applicationId, Date.now() - 16 * 60_000)
      ])
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => answerOf(fake, pending.id) !== undefined, "answered after the restart")
        assert.strictEqual(answerOf(fake, pending.id), "Session agent:main:main (agent main) has no messages yet.")
        const dead = yield* Effect.gen(function*() {
          for (let i = 0; i < 200; i++) {
            const text = yield* deadLetters(home)
            if (text.includes(expired.id)) return text
            yield* Effect.sleep("25 millis")
          }
          return yield* deadLetters(home)
        })
        assert.include(dead, "token expired")
        assert.isFalse(fake.requests.some((r) => r.path.includes("expired-token")), "an expired token is not even tried")
        fake.redispatchInteraction(pending.id)
        yield* quiet
        assert.strictEqual(fake.interactionResponses.filter((r) => r.interactionId === pending.id && r.kind === "edit-original").length, 1, "answered once")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
    }), 40_000)

  it.live("a refused command is journaled with its answer, so one left unanswered by a crash is refused after the restart, and never run", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const owner = fake.addDmUser({ username: "owner" })
      const { user, channelId } = fake.addDmUser({ username: "kim" })
      const discord = { apiBaseUrl: fake.apiBase, token: fake.token, dmPolicy: "allowlist", allowFrom: [owner.user.id] }
      const inbox = () => Effect.promise(() => fs.readFile(path.join(journalDir(home), "inbox.jsonl"), "utf8").catch(() => ""))
      const refused = yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registeredNames(fake).length === ours.length, "commands registered")
        const refused = fake.dispatchInteraction({ user, channelId, commandName: "think", options: { level: "high" } })
        yield* wait(fake, () => answerOf(fake, refused.id) !== undefined, "refusal")
        assert.strictEqual(answerOf(fake, refused.id), NOT_AUTHORIZED_TEXT)
        return refused
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
      const records = (yield* inbox()).trim().split("\n").map((line) => JSON.parse(line)).filter((r) => r.id === `${channelId}:${refused.id}`)
      assert.deepStrictEqual(records.map((r) => r.t), ["accepted", "reply", "done"], "journaled like any answer")
      assert.strictEqual(records[1]?.text, NOT_AUTHORIZED_TEXT)
      const refusalKey: string = records[0]?.sessionKey

      // Two refusals a dying run deferred and journaled: one with its answer recorded, one before that.
      const withAnswer = fake.dispatchInteraction({ user, channelId, commandName: "think", options: { level: "high" } })
      const withoutAnswer = fake.dispatchInteraction({ user, channelId, commandName: "think", options: { level: "low" } })
      for (const interaction of [withAnswer, withoutAnswer]) {
        const deferred = yield* Effect.promise(() =>
          fetch(`${fake.apiBase}/v10/interactions/${interaction.id}/${interaction.token}/callback`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ type: 5, data: { flags: 64 } })
          })
        )
        assert.strictEqual(deferred.status, 204)
      }
      yield* writeJournal(home, [
        journalRecord(channelId, user.id, withAnswer, fake.applicationId, withAnswer.createdAt, refusalKey.replace(refused.id, withAnswer.id), "/think high"),
        { t: "reply", id: `${channelId}:${withAnswer.id}`, at: 2, text: NOT_AUTHORIZED_TEXT, chunk: records[1]?.chunk },
        journalRecord(channelId, user.id, withoutAnswer, fake.applicationId, withoutAnswer.createdAt, refusalKey.replace(refused.id, withoutAnswer.id), "/think low")
      ])
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => answerOf(fake, withAnswer.id) !== undefined && answerOf(fake, withoutAnswer.id) !== undefined, "refused after the restart")
        assert.strictEqual(answerOf(fake, withAnswer.id), NOT_AUTHORIZED_TEXT)
        assert.strictEqual(answerOf(fake, withoutAnswer.id), NOT_AUTHORIZED_TEXT)
        const sessions = yield* Sessions
        assert.deepStrictEqual((yield* sessions.list("main")).map((row) => row.key), [], "the refused commands never ran")
        fake.redispatchInteraction(withAnswer.id)
        yield* quiet
        assert.strictEqual(fake.interactionResponses.filter((r) => r.interactionId === withAnswer.id && r.kind === "edit-original").length, 1, "answered once")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
    }), 40_000)
})

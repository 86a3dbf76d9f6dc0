/**
 * Slash commands at the edges of Discord's rules and of a crash, end to end
 * (the real discord.js against the fake Discord, the real sessions against
 * the fake Anthropic API): a command whose deferral Discord refuses (10062,
 * the 3 s deadline passed) is not run; a pairing refusal left unanswered by
 * a crash is answered with the pairing code again after the restart.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { ChannelSupervisor } from "../../../src/channels/ChannelSupervisor.ts"
import { NATIVE_COMMANDS } from "../../../src/channels/discord/NativeCommands.ts"
import { Sessions } from "../../../src/session/Sessions.ts"
import { channelLayer, connected, wait } from "../../support/DiscordHarness.ts"
import { FakeAnthropic } from "../../support/FakeAnthropic.ts"
import { FakeDiscord, type FakeDiscordHandle } from "../../support/FakeDiscord.ts"
import * as TestApp from "../../support/TestApp.ts"

const ours = NATIVE_COMMANDS.map((c) => c.name).sort()
const registered = (fake: FakeDiscordHandle) => fake.applicationCommands().length === ours.length
const answerOf = (fake: FakeDiscordHandle, id: string) => fake.interaction(id)?.originalContent
const journalDir = (home: string) => path.join(home, "channels", "discord", "default")
const inboxRecords = (home: string) =>
  Effect.promise(() => fs.readFile(path.join(journalDir(home), "inbox.jsonl"), "utf8").catch(() => "")).pipe(
    Effect.map((text) => text.split("\n").filter((line) => line !== "").map((line): { readonly t: string; readonly id: string; readonly sessionKey?: string; readonly text?: string } => JSON.parse(line)))
  )

describe("slash commands Discord would not let us answer", () => {
  it.live("a command whose deferral is refused with 10062 (the 3 s deadline passed) is not run, and the account says why", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      // Every deferral arrives too late: Discord answers 10062 Unknown interaction.
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250, interactionCallbackWindowMs: -1 })
      const { user, channelId } = fake.addDmUser({ username: "lee" })
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registered(fake), "commands registered")
        const late = fake.dispatchInteraction({ user, channelId, commandName: "think", options: { level: "high" } })
        const supervisor = yield* ChannelSupervisor
        for (let i = 0; i < 200 && !((yield* supervisor.status)[0]?.lastError ?? "").includes(late.id); i++) yield* Effect.sleep("25 millis")
        yield* Effect.sleep("400 millis")
        const sessions = yield* Sessions
        assert.deepStrictEqual((yield* sessions.list("main")).map((row) => row.key), [], "the command did not run")
        assert.isFalse(fake.requests.some((r) => r.path.includes(`/webhooks/`)), "no answer tried")
        assert.deepStrictEqual((yield* inboxRecords(home)).map((r) => r.id), [], "nothing journaled")
        assert.include((yield* supervisor.status)[0]?.lastError ?? "", `/think (${late.id})`)
        assert.include((yield* supervisor.status)[0]?.lastError ?? "", "NOT run")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, { apiBaseUrl: fake.apiBase, token: fake.token, dmPolicy: "open", allowFrom: ["*"] })))
    }), 30_000)
})

describe("a pairing refusal across a crash", () => {
  it.live("a slash command refused for pairing and left unanswered by a crash gets the pairing code again after the restart, not 'not authorized'", () =>
    Effect.gen(function*() {
      const home = yield* TestApp.tempDir()
      const anthropic = yield* FakeAnthropic.make()
      const fake = yield* FakeDiscord.make({ heartbeatIntervalMs: 250 })
      const { user, channelId } = fake.addDmUser({ username: "max" })
      const discord = { apiBaseUrl: fake.apiBase, token: fake.token, dmPolicy: "pairing", allowFrom: [] }
      const first = yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => registered(fake), "commands registered")
        const asked = fake.dispatchInteraction({ user, channelId, commandName: "status" })
        yield* wait(fake, () => answerOf(fake, asked.id) !== undefined, "pairing answer")
        return asked
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
      const code = /Pairing code: ([A-Z2-9]{8})/.exec(answerOf(fake, first.id) ?? "")?.[1]
      assert.isDefined(code)
      const records = (yield* inboxRecords(home)).filter((r) => r.id === `${channelId}:${first.id}`)
      const lane = records[0]?.sessionKey ?? ""
      assert.match(lane, /^refusal:pair:/, "the kind of refusal is journaled")

      // A dying run deferred a second command from the same sender and journaled it, but never recorded its answer.
      const pending = fake.dispatchInteraction({ user, channelId, commandName: "help" })
      const deferred = yield* Effect.promise(() =>
        fetch(`${fake.apiBase}/v10/interactions/${pending.id}/${pending.token}/callback`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ type: 5, data: { flags: 64 } })
        })
      )
      assert.strictEqual(deferred.status, 204)
      const message = {
        channel: "discord", accountId: "default", messageId: pending.id, chatType: "direct", chatId: channelId, from: `discord:${user.id}`,
        to: `channel:${channelId}`, senderId: user.id, isBot: false, body: "/help", memberRoleIds: [], attachments: [],
        wasMentioned: true, hasAnyMention: true, replyToBot: false, timestamp: pending.createdAt,
        interaction: { id: pending.id, token: pending.token, applicationId: fake.applicationId, ephemeral: true }
      }
      const id = `${channelId}:${pending.id}`
      yield* Effect.promise(() =>
        fs.writeFile(path.join(journalDir(home), "inbox.jsonl"), JSON.stringify({ t: "accepted", id, at: 1, sessionKey: lane.replace(first.id, pending.id), message }) + "\n")
      )
      yield* Effect.gen(function*() {
        yield* connected
        yield* wait(fake, () => answerOf(fake, pending.id) !== undefined, "answered after the restart")
        assert.include(answerOf(fake, pending.id) ?? "", `Pairing code: ${code}`, "the same pending code, as the first answer")
        const sessions = yield* Sessions
        assert.deepStrictEqual((yield* sessions.list("main")).map((row) => row.key), [], "never run")
      }).pipe(Effect.provide(channelLayer(home, anthropic.url, discord)))
    }), 40_000)
})

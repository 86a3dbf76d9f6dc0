/**
 * Which Discord accounts a config runs, and with which settings: one default
 * account from `channels.discord`, or each named account with its own keys
 * over the shared ones.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Schema } from "effect"
import { decodeConfigText } from "../../../src/config/ConfigLoader.ts"
import { BeamclawConfig } from "../../../src/config/ConfigSchema.ts"
import { discordAccounts } from "../../../src/channels/discord/DiscordChannel.ts"

const decode = Schema.decodeUnknownSync(BeamclawConfig)
const discordOf = (discord: Record<string, unknown>) => decode({ channels: { discord } }).channels.discord

describe("discordAccounts", () => {
  it("none when disabled; one default account otherwise", () => {
    assert.deepStrictEqual(discordAccounts(discordOf({ enabled: false, token: "t" })), [])
    const [only, ...rest] = discordAccounts(discordOf({ enabled: true, token: "t", dmPolicy: "open" }))
    assert.strictEqual(rest.length, 0)
    assert.strictEqual(only?.accountId, "default")
    assert.strictEqual(only?.settings.dmPolicy, "open")
    assert.strictEqual(only?.settings.token === undefined ? undefined : Redacted.value(only.settings.token), "t")
  })

  it("named accounts override the shared keys, inherit the rest, never borrow the shared token, and can be disabled", () => {
    const accounts = discordAccounts(discordOf({
      enabled: true,
      token: "shared",
      allowFrom: ["111"],
      replyToMode: "first",
      accounts: {
        Work: { token: "work-token", dmPolicy: "allowlist", intents: { messageContent: false } },
        home: {},
        old: { enabled: false, token: "x" }
      }
    }))
    assert.deepStrictEqual(accounts.map((a) => a.accountId), ["work", "home"])
    const work = accounts[0]?.settings
    assert.strictEqual(work?.dmPolicy, "allowlist")
    assert.deepStrictEqual(work?.allowFrom, ["111"])
    assert.strictEqual(work?.replyToMode, "first")
    assert.isFalse(work?.intents.messageContent)
    assert.strictEqual(work?.token === undefined ? undefined : Redacted.value(work.token), "work-token")
    assert.isUndefined(accounts[1]?.settings.token)
    assert.isTrue(accounts[1]?.settings.intents.messageContent)
  })

  it.effect("a bad account config is refused by path", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(decodeConfigText("channels:\n  discord:\n    accounts:\n      work:\n        replyToMode: sometimes\n", "c.yaml"))
      assert.include(error.message, "channels.discord.accounts.work.replyToMode")
    }))
})

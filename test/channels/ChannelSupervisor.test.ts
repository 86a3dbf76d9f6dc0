/**
 * The channel supervisor with a scripted channel: each run of an account
 * plays the next step of its script (fail, fail fatally, die, connect then
 * fail, stay up). Time is the TestClock, so the backoff ladder is exact.
 */
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig } from "../../src/config/AppConfig.ts"
import { BeamclawConfig } from "../../src/config/ConfigSchema.ts"
import { type ChannelAccount, ChannelError, type ChannelPlugin } from "../../src/channels/Channel.ts"
import { type AccountStatus, ChannelSupervisor, defaultRestartPolicy, restartDelayMs } from "../../src/channels/ChannelSupervisor.ts"

type Step = "fail" | "fatal" | "die" | "connect-then-fail" | "stay"

const decode = Schema.decodeUnknownSync(BeamclawConfig)
const configWith = (discord: Record<string, unknown>) => decode({ channels: { discord } })

/** A channel whose accounts follow a script; `runs` counts the runs of each account. */
const scripted = (id: string, script: Array<Step>, configOf: (config: BeamclawConfig) => unknown) => {
  const runs = { count: 0 }
  const account: ChannelAccount = {
    channel: id,
    accountId: "default",
    run: (reporter) =>
      Effect.gen(function*() {
        runs.count += 1
        const step = script.shift() ?? "stay"
        switch (step) {
          case "fail":
            return yield* new ChannelError({ channel: id, accountId: "default", message: "connection reset", fatal: false })
          case "fatal":
            return yield* new ChannelError({ channel: id, accountId: "default", message: "invalid token (4004)", fatal: true })
          case "die":
            return yield* Effect.die(new Error("bug in the listener"))
          case "connect-then-fail":
            yield* reporter.connected(true)
            yield* Effect.sleep("1 minute")
            return yield* new ChannelError({ channel: id, accountId: "default", message: "gateway closed 1006", fatal: false })
          case "stay":
            yield* reporter.connected(true)
            return yield* Effect.never
        }
      })
  }
  const plugin: ChannelPlugin = {
    id,
    configOf,
    accounts: (config) => Effect.succeed(config.channels.discord.enabled ? [account] : [])
  }
  return { plugin, runs }
}

const statusOf = (channel: string) =>
  Effect.gen(function*() {
    const all = yield* (yield* ChannelSupervisor).status
    const found = all.find((status) => status.channel === channel)
    assert.isDefined(found, `no status for ${channel}`)
    return found as AccountStatus
  })

/** Lets forked fibers run up to their next sleep. */
const settle = Effect.gen(function*() {
  for (let i = 0; i < 20; i++) yield* Effect.yieldNow
})

const run = <A, E>(plugins: ReadonlyArray<ChannelPlugin>, initial: BeamclawConfig, body: Effect.Effect<A, E, ChannelSupervisor | AppConfig>) =>
  body.pipe(
    Effect.provide(ChannelSupervisor.layer(plugins).pipe(Layer.provideMerge(AppConfig.layerFromValue(initial)))),
    Effect.scoped
  )

describe("ChannelSupervisor", () => {
  it("restart delays double from 5 s to at most 5 min", () => {
    const delays = Array.from({ length: 10 }, (_, i) => restartDelayMs(defaultRestartPolicy, i + 1) / 1000)
    assert.deepStrictEqual(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300, 300])
  })

  it.effect("restarts a failing account with backoff, shows it in the status, and resets the ladder once connected", () => {
    const { plugin, runs } = scripted("discord", ["fail", "die", "fail", "stay"], (config) => config.channels.discord)
    return run([plugin], configWith({ enabled: true }), Effect.gen(function*() {
      yield* settle
      assert.strictEqual(runs.count, 1)
      let status = yield* statusOf("discord")
      assert.strictEqual(status.state, "backoff")
      assert.strictEqual(status.reconnectAttempts, 1)
      assert.strictEqual(status.lastError, "connection reset")
      const firstDelay = (status.nextRetryAt ?? 0) - (status.lastDisconnectAt ?? 0)
      assert.isTrue(firstDelay >= 4_500 && firstDelay <= 5_500, `first delay ${firstDelay}`)

      yield* TestClock.adjust("5500 millis")
      yield* settle
      assert.strictEqual(runs.count, 2)
      status = yield* statusOf("discord")
      assert.strictEqual(status.reconnectAttempts, 2)
      assert.strictEqual(status.lastError, "bug in the listener")
      const secondDelay = (status.nextRetryAt ?? 0) - (status.lastDisconnectAt ?? 0)
      assert.isTrue(secondDelay >= 9_000 && secondDelay <= 11_000, `second delay ${secondDelay}`)

      yield* TestClock.adjust("11 seconds")
      yield* settle
      yield* TestClock.adjust("22 seconds")
      yield* settle
      assert.strictEqual(runs.count, 4)
      status = yield* statusOf("discord")
      assert.strictEqual(status.state, "connected")
      assert.isTrue(status.connected)
      assert.strictEqual(status.reconnectAttempts, 0)
      assert.isUndefined(status.lastError)
    }))
  })

  it.effect("a fatal error stops the account with a clear status and no restart loop", () => {
    const { plugin, runs } = scripted("discord", ["fatal"], (config) => config.channels.discord)
    return run([plugin], configWith({ enabled: true }), Effect.gen(function*() {
      yield* settle
      yield* TestClock.adjust("1 hour")
      yield* settle
      assert.strictEqual(runs.count, 1)
      const status = yield* statusOf("discord")
      assert.strictEqual(status.state, "failed")
      assert.isFalse(status.running)
      assert.strictEqual(status.lastError, "invalid token (4004)")
    }))
  })

  it.effect("gives up after 10 restarts in a row, but a connection in between resets the count", () => {
    const script: Array<Step> = [...Array<Step>(9).fill("fail"), "connect-then-fail", ...Array<Step>(11).fill("fail")]
    const { plugin, runs } = scripted("discord", script, (config) => config.channels.discord)
    return run([plugin], configWith({ enabled: true }), Effect.gen(function*() {
      for (let i = 0; i < 40; i++) {
        yield* settle
        yield* TestClock.adjust("6 minutes")
      }
      // Runs 1-9 fail (9 restarts). Run 10 connects, so its failure counts as restart 1 again;
      // runs 11-19 are restarts 2-10, and run 20's failure would be the 11th: the account gives up.
      assert.strictEqual(runs.count, 20)
      const status = yield* statusOf("discord")
      assert.strictEqual(status.state, "failed")
      assert.include(status.lastError ?? "", "gave up after 10 restarts in a row")
    }))
  })

  it.effect("a config edit restarts only the channel whose config changed; disabling stops it", () => {
    const discord = scripted("discord", [], (config) => config.channels.discord)
    const other = scripted("other", [], (config) => config.channels.discord.enabled)
    return run([discord.plugin, other.plugin], configWith({ enabled: true }), Effect.gen(function*() {
      yield* settle
      assert.strictEqual(discord.runs.count, 1)
      assert.strictEqual(other.runs.count, 1)
      const appConfig = yield* AppConfig
      yield* appConfig.set(configWith({ enabled: true, replyToMode: "first" }))
      yield* settle
      assert.strictEqual(discord.runs.count, 2, "discord's config changed")
      assert.strictEqual(other.runs.count, 1, "other's selected config did not change")
      yield* appConfig.set(configWith({ enabled: false }))
      yield* settle
      const all = yield* (yield* ChannelSupervisor).status
      assert.deepStrictEqual(all.map((status) => status.channel), [])
    }))
  })
})

/**
 * The in-process Discord end-to-end stack shared by test/channels/discord:
 * the channel supervisor over the channel host, pairing store and de-dupe,
 * over the real session layer (TestApp) with channels.discord enabled, plus
 * the waits those tests use against the fake Discord.
 */
import { Effect, Layer } from "effect"
import { ChannelHost } from "../../src/channels/ChannelHost.ts"
import { ChannelSupervisor } from "../../src/channels/ChannelSupervisor.ts"
import { InboundDedupe } from "../../src/channels/Dedupe.ts"
import * as DiscordChannel from "../../src/channels/discord/DiscordChannel.ts"
import { PairingStore } from "../../src/channels/PairingStore.ts"
import type { FakeDiscordHandle } from "./FakeDiscord.ts"
import * as TestApp from "./TestApp.ts"

/** Discord settings under which any DM is answered without pairing. */
export const openDms: Record<string, unknown> = { dmPolicy: "open", allowFrom: ["*"] }

/** Builds a `channelLayer` whose channels.discord is `{ enabled: true, ...defaults, ...discord }`, over `config`. */
export const channelLayerWith = (defaults: Record<string, unknown>) =>
  (home: string, anthropicUrl: string, discord: Record<string, unknown>, config: Record<string, unknown> = {}) =>
    ChannelSupervisor.layer([DiscordChannel.plugin]).pipe(
      Layer.provideMerge(ChannelHost.layer),
      Layer.provideMerge(Layer.mergeAll(PairingStore.layer, InboundDedupe.layer())),
      Layer.provideMerge(TestApp.layer({ home, anthropicUrl, config: { ...config, channels: { discord: { enabled: true, ...defaults, ...discord } } } }))
    )

/** The Discord channel stack with only `discord` (and `config`) on top of the config defaults: DMs need pairing. */
export const channelLayer = channelLayerWith({})

/** The Discord channel stack with DMs open to everyone unless `discord` says otherwise. */
export const openChannelLayer = channelLayerWith(openDms)

/** Waits (real time) until `predicate` holds on the fake Discord; dies with `label` after `timeoutMs`. */
export const wait = (fake: FakeDiscordHandle, predicate: () => boolean, label: string, timeoutMs = 8000) =>
  Effect.tryPromise(() => fake.waitFor(predicate, timeoutMs, label)).pipe(Effect.orDie)

/** Polls the supervisor until the first account is connected (up to 10 s) and returns its status; dies otherwise. */
export const connected = Effect.gen(function*() {
  const supervisor = yield* ChannelSupervisor
  for (let i = 0; i < 400; i++) {
    const status = (yield* supervisor.status)[0]
    if (status?.connected === true) return status
    yield* Effect.sleep("25 millis")
  }
  return yield* Effect.die(new Error(`discord never connected: ${JSON.stringify(yield* supervisor.status)}`))
})

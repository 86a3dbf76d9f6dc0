/**
 * Runs every enabled channel account as its own fiber and keeps it running:
 * a connection that fails is restarted with backoff (5 s doubling to 5 min,
 * ±10% jitter, at most 10 restarts in a row, as OpenClaw's channel manager);
 * a fatal failure (bad token, disallowed intent) stops the account with that
 * error as its status instead of looping. A connection that reached its
 * platform resets the ladder. An edit under a channel's config restarts that
 * channel's accounts only. Status per account is kept for channels.status and
 * `beamclaw channels status`.
 */
import { Cause, Clock, Context, Effect, Exit, FiberMap, Layer, Random, Stream } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import type { AccountStatus } from "./AccountStatus.ts"
import { type AccountReporter, type ChannelAccount, ChannelError, type ChannelPlugin } from "./Channel.ts"

export type { AccountState, AccountStatus } from "./AccountStatus.ts"

export interface RestartPolicy {
  readonly initialDelayMs: number
  readonly maxDelayMs: number
  readonly factor: number
  readonly jitter: number
  /** Restarts in a row (without reaching the platform in between) before giving up. */
  readonly maxRestarts: number
}

export const defaultRestartPolicy: RestartPolicy = { initialDelayMs: 5_000, maxDelayMs: 300_000, factor: 2, jitter: 0.1, maxRestarts: 10 }

/** The delay before restart number `attempt` (1-based), before jitter. */
export const restartDelayMs = (policy: RestartPolicy, attempt: number): number =>
  Math.min(policy.maxDelayMs, policy.initialDelayMs * policy.factor ** Math.max(0, attempt - 1))

export class ChannelSupervisor extends Context.Service<ChannelSupervisor, {
  readonly status: Effect.Effect<ReadonlyArray<AccountStatus>>
}>()("beamclaw/channels/ChannelSupervisor") {
  /** `onStatus` hears every change of the accounts' statuses (the gateway's readiness uses it). */
  static readonly layer = <R, R2 = never>(
    plugins: ReadonlyArray<ChannelPlugin<R>>,
    options: { readonly policy?: RestartPolicy; readonly onStatus?: (statuses: ReadonlyArray<AccountStatus>) => Effect.Effect<void, never, R2> } = {}
  ) => Layer.effect(ChannelSupervisor, make(plugins, options.policy ?? defaultRestartPolicy, options.onStatus))
}

const describe = (cause: Cause.Cause<unknown>): { readonly message: string; readonly fatal: boolean } => {
  const failure = Cause.findError(cause)
  if (failure._tag === "Success" && failure.success instanceof ChannelError) return { message: failure.success.message, fatal: failure.success.fatal }
  const squashed = Cause.squash(cause)
  return { message: squashed instanceof Error ? squashed.message : String(squashed), fatal: false }
}

const make = <R, R2>(
  plugins: ReadonlyArray<ChannelPlugin<R>>,
  policy: RestartPolicy,
  onStatus: ((statuses: ReadonlyArray<AccountStatus>) => Effect.Effect<void, never, R2>) | undefined
) =>
  Effect.gen(function*() {
    const appConfig = yield* AppConfig
    const statuses = new Map<string, AccountStatus>()
    const fibers = yield* FiberMap.make<string>()
    const keyOf = (channel: string, accountId: string) => `${channel}:${accountId}`

    const context = yield* Effect.context<R2>()
    const publish: Effect.Effect<void> = Effect.suspend(() =>
      onStatus === undefined ? Effect.void : Effect.provideContext(onStatus([...statuses.values()]), context)
    )
    const update = (key: string, change: (status: AccountStatus) => AccountStatus) =>
      Effect.sync(() => {
        const current = statuses.get(key)
        if (current !== undefined) statuses.set(key, change(current))
      }).pipe(Effect.andThen(publish))

    const supervise = (account: ChannelAccount) =>
      Effect.gen(function*() {
        const key = keyOf(account.channel, account.accountId)
        let reachedPlatform = false
        let attempts = 0
        const reporter: AccountReporter = {
          connected: (up) =>
            Effect.flatMap(Clock.currentTimeMillis, (now) => {
              if (up) {
                reachedPlatform = true
                attempts = 0
              }
              return update(key, (s) => ({
                ...s,
                state: up ? "connected" : "disconnected",
                connected: up,
                reconnectAttempts: up ? 0 : s.reconnectAttempts,
                ...(up ? { lastConnectedAt: now, lastError: undefined } : { lastDisconnectAt: now })
              }))
            }),
          problem: (message) => update(key, (s) => ({ ...s, lastError: message })),
          inbound: Effect.flatMap(Clock.currentTimeMillis, (now) => update(key, (s) => ({ ...s, lastInboundAt: now }))),
          outbound: Effect.flatMap(Clock.currentTimeMillis, (now) => update(key, (s) => ({ ...s, lastOutboundAt: now })))
        }
        while (true) {
          const startedAt = yield* Clock.currentTimeMillis
          reachedPlatform = false
          yield* update(key, (s) => ({ ...s, state: "starting", running: true, connected: false, lastStartAt: startedAt, nextRetryAt: undefined }))
          const exit = yield* Effect.exit(Effect.scoped(account.run(reporter)))
          // run never returns normally; an interrupt is a stop (config edit, shutdown), not a failure.
          if (Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)) return
          const cause = Exit.isFailure(exit) ? exit.cause : Cause.die(new Error("the connection ended without an error"))
          const { message, fatal } = describe(cause)
          const now = yield* Clock.currentTimeMillis
          if (fatal) {
            yield* Effect.logError(`channel ${key} stopped: ${message}`)
            yield* update(key, (s) => ({ ...s, state: "failed", running: false, connected: false, lastError: message, lastDisconnectAt: now }))
            return
          }
          if (reachedPlatform) attempts = 0
          attempts += 1
          if (attempts > policy.maxRestarts) {
            const gaveUp = `gave up after ${policy.maxRestarts} restarts in a row: ${message}`
            yield* Effect.logError(`channel ${key} ${gaveUp}`)
            yield* update(key, (s) => ({ ...s, state: "failed", running: false, connected: false, lastError: gaveUp, lastDisconnectAt: now }))
            return
          }
          const jitter = 1 + (yield* Random.nextBetween(-policy.jitter, policy.jitter))
          const delay = Math.round(restartDelayMs(policy, attempts) * jitter)
          yield* Effect.logWarning(`channel ${key} failed (${message}); restart ${attempts}/${policy.maxRestarts} in ${(delay / 1000).toFixed(1)} s`)
          yield* update(key, (s) => ({
            ...s,
            state: "backoff",
            connected: false,
            lastError: message,
            lastDisconnectAt: now,
            reconnectAttempts: attempts,
            nextRetryAt: now + delay
          }))
          yield* Effect.sleep(delay)
        }
      })

    /** (Re)starts the accounts a plugin has in this config, replacing what ran before. */
    const apply = (plugin: ChannelPlugin<R>) =>
      Effect.gen(function*() {
        const config = yield* appConfig.get
        const accounts = yield* plugin.accounts(config)
        for (const key of [...statuses.keys()]) {
          if (!key.startsWith(`${plugin.id}:`)) continue
          yield* FiberMap.remove(fibers, key)
          statuses.delete(key)
        }
        for (const account of accounts) {
          const key = keyOf(account.channel, account.accountId)
          statuses.set(key, { channel: account.channel, accountId: account.accountId, state: "starting", running: true, connected: false, reconnectAttempts: 0 })
          yield* FiberMap.run(fibers, key, supervise(account))
        }
        yield* publish
      })

    for (const plugin of plugins) {
      yield* appConfig.watch(plugin.configOf).pipe(
        Stream.runForEach(() => apply(plugin)),
        Effect.forkScoped
      )
    }

    return ChannelSupervisor.of({
      status: Effect.sync(() => [...statuses.values()])
    })
  })

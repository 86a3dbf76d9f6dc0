/**
 * The live config of the running gateway.
 *
 * Loaded once at startup (an invalid file stops the boot with every problem
 * listed), then kept current by a watcher on the config file's directory: a
 * valid edit is published, an invalid one is logged and the previous config
 * stays. A file that disappears while running also keeps the previous config
 * (most often it is an editor's save-by-rename, not a wish to reset
 * everything); when it appears again it is loaded. The process never restarts; subsystems `watch` the part they use
 * and decide for themselves whether to hot-apply or restart.
 */
import { Cause, ConfigProvider, Context, Effect, Layer, Queue, Ref, Schedule, Semaphore, Stream, SubscriptionRef } from "effect"
import * as NodeFs from "node:fs"
import * as NodePath from "node:path"
import type { ConfigError, ConfigOverrides } from "./ConfigLoader.ts"
import { configEquals, diffConfig, loadConfig } from "./ConfigLoader.ts"
import type { BeamclawConfig } from "./ConfigSchema.ts"
import { Paths } from "./Paths.ts"

export interface ReloadResult {
  /** Leaf paths that changed (`gateway.port`, `agents.list`); empty when the file's meaning did not change. */
  readonly changed: ReadonlyArray<string>
}

export interface AppConfigShape {
  /** The config file this service reads (it may not exist). */
  readonly file: string
  /** The current config. */
  readonly get: Effect.Effect<BeamclawConfig>
  /** Every config published after subscribing (the current one is not replayed). */
  readonly changes: Stream.Stream<BeamclawConfig>
  /**
   * The selected part now, then each time it changes (compared structurally,
   * secrets by value). Use it to hot-apply or restart a subsystem.
   */
  readonly watch: <A>(select: (config: BeamclawConfig) => A) => Stream.Stream<A>
  /** Re-reads the file now. Invalid or missing → fails with `ConfigError` and the current config is kept. */
  readonly reload: Effect.Effect<ReloadResult, ConfigError>
  /** Replaces the current config (tests; a future `config set` after writing the file). */
  readonly set: (config: BeamclawConfig) => Effect.Effect<ReloadResult>
}

export interface AppConfigOptions {
  /** Command-line overrides; re-applied on every reload so they keep winning over the file. */
  readonly flags?: ConfigOverrides | undefined
  /** Quiet time after the last file event before reloading. Default 200 ms. */
  readonly debounce?: number | undefined
  /** Set false to load once without watching the file. Default true. */
  readonly watchFile?: boolean | undefined
}

const makeShape = Effect.fnUntraced(function*(
  file: string,
  initial: BeamclawConfig,
  load: Effect.Effect<BeamclawConfig, ConfigError>
) {
  const ref = yield* SubscriptionRef.make(initial)
  // One reload at a time, so a slow read cannot publish over a newer one.
  const lock = yield* Semaphore.make(1)

  const publish = (next: BeamclawConfig): Effect.Effect<ReloadResult> =>
    Effect.gen(function*() {
      const current = yield* SubscriptionRef.get(ref)
      const changed = diffConfig(current, next)
      if (changed.length > 0) yield* SubscriptionRef.set(ref, next)
      return { changed }
    })

  const shape: AppConfigShape = {
    file,
    get: SubscriptionRef.get(ref),
    changes: SubscriptionRef.changes(ref).pipe(Stream.drop(1)),
    watch: <A>(select: (config: BeamclawConfig) => A) =>
      SubscriptionRef.changes(ref).pipe(Stream.map(select), Stream.changesWith<A>(configEquals)),
    reload: lock.withPermits(1)(Effect.flatMap(load, publish)).pipe(Effect.withSpan("AppConfig.reload")),
    set: (config) => lock.withPermits(1)(publish(config))
  }
  return shape
})

/**
 * Events for `file`, from a watch on its directory: editors that save by
 * writing a temp file and renaming it replace the inode, which a watch on
 * the file itself would lose. A config that is a symlink (into a dotfiles
 * repository, say) is watched where it points too, where its edits happen.
 * Starts with one tick, so a file created while the watch was (re)starting
 * is not missed.
 */
const fileEvents = (file: string): Stream.Stream<void, Error> =>
  Stream.callback<void, Error>((queue) =>
    Effect.acquireRelease(
      Effect.try({
        try: () => {
          const places = [file]
          try {
            const target = NodeFs.realpathSync(file)
            if (target !== file) places.push(target)
          } catch {
            // Not there yet: its directory is watched for it.
          }
          const watchers = places.map((place) => {
            const watcher = NodeFs.watch(NodePath.dirname(place), { persistent: false }, (_event, name) => {
              if (name === null || name === NodePath.basename(place)) Queue.offerUnsafe(queue, undefined)
            })
            watcher.on("error", (error) => Queue.failCauseUnsafe(queue, Cause.fail(error)))
            return watcher
          })
          Queue.offerUnsafe(queue, undefined)
          return watchers
        },
        catch: (cause) => cause instanceof Error ? cause : new Error(String(cause))
      }),
      (watchers) => Effect.sync(() => watchers.forEach((watcher) => watcher.close()))
    ), { bufferSize: 16, strategy: "sliding" })

const fileExists = (file: string): Effect.Effect<boolean> => Effect.sync(() => NodeFs.existsSync(file))

/** `existedAtStart`: whether the file was there when the initial config was loaded. */
const watchAndReload = (shape: AppConfigShape, debounceMs: number, existedAtStart: boolean) =>
  Effect.gen(function*() {
    // Warn once per disappearance, not on every event (or at startup) while the file stays away.
    const present = yield* Ref.make(existedAtStart)
    const onEvent = Effect.gen(function*() {
      if (!(yield* fileExists(shape.file))) {
        if (yield* Ref.getAndSet(present, false)) {
          yield* Effect.logWarning(
            `config file ${shape.file} was removed; keeping the current config until it is created again`
          )
        }
        return
      }
      yield* Ref.set(present, true)
      yield* shape.reload.pipe(
        Effect.flatMap(({ changed }) =>
          changed.length > 0
            ? Effect.logInfo(`config reloaded: changed ${changed.join(", ")}`)
            : Effect.logDebug("config file event: no effective change")
        ),
        Effect.catch((error) =>
          Effect.logWarning(`config reload skipped (invalid config), keeping the previous config.\n${error.message}`)
        )
      )
    })
    return yield* watchEvents(shape.file, debounceMs, onEvent)
  })

const watchEvents = (file: string, debounceMs: number, onEvent: Effect.Effect<void>): Effect.Effect<never> =>
  fileEvents(file).pipe(
    Stream.debounce(`${debounceMs} millis`),
    Stream.runForEach(() => onEvent),
    Effect.andThen(Effect.fail(new Error("the watch ended"))),
    // The directory may not exist yet, or the watch may die (directory removed): keep trying.
    Effect.tapError((error) => Effect.logDebug(`config watcher for ${file} stopped (${error.message}); retrying`)),
    Effect.retry(Schedule.spaced("1 second")),
    Effect.orDie
  )

export class AppConfig extends Context.Service<AppConfig, AppConfigShape>()("beamclaw/config/AppConfig") {
  /**
   * Loads `Paths.configFile` (flags > env > file) and watches it. Fails with
   * `ConfigError` when the file is invalid at startup, or missing although
   * named explicitly (`Paths.configFileExplicit`, i.e. `BEAMCLAW_CONFIG`).
   */
  static readonly layerWith = (options: AppConfigOptions = {}) =>
    Layer.effect(
      AppConfig,
      Effect.gen(function*() {
        const paths = yield* Paths
        // Reloads run on the caller's fiber: pin the env source this layer was built with.
        const provider = yield* ConfigProvider.ConfigProvider
        const load = (missing: { readonly setBy?: string | undefined; readonly mustExist?: boolean }) =>
          loadConfig({ file: paths.configFile, flags: options.flags, ...missing }).pipe(
            Effect.provideService(ConfigProvider.ConfigProvider, provider)
          )
        const initial = yield* load({ setBy: paths.configFileSetBy })
        const existedAtStart = yield* fileExists(paths.configFile)
        // After startup a missing file never means "reset to the defaults", explicit or not.
        const shape = yield* makeShape(paths.configFile, initial, load({ mustExist: true }))
        if (options.watchFile !== false) {
          yield* Effect.forkScoped(watchAndReload(shape, options.debounce ?? 200, existedAtStart))
        }
        return AppConfig.of(shape)
      })
    )

  static readonly layer = AppConfig.layerWith()

  /** A fixed config without a file, for tests. `reload` reports no change; `set` publishes. */
  static readonly layerFromValue = (config: BeamclawConfig) =>
    Layer.effect(
      AppConfig,
      Effect.map(makeShape("(in memory)", config, Effect.succeed(config)), AppConfig.of)
    )
}

/**
 * What every process of BeamClaw stands on: the config, the state paths, the
 * file system and the log level. Light on purpose: the gateway builds this
 * before it binds its port, so nothing heavier may be imported here.
 */
import { NodeFileSystem, NodePath } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import { AppConfig } from "../config/AppConfig.ts"
import type { ConfigOverrides } from "../config/ConfigLoader.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"

export interface CoreOptions {
  readonly flags?: ConfigOverrides | undefined
  /** Long-running processes follow config edits; one-shot commands read the file once. */
  readonly watchConfig?: boolean | undefined
  /** Interactive commands show warnings and errors only, unless the config asks for debug or trace. */
  readonly quiet?: boolean | undefined
  /** Read sessions without writing anything (for commands that only look). */
  readonly readOnly?: boolean | undefined
}

const logLevel = (level: BeamclawConfig["logging"]["level"]) =>
  level === "trace" ? "Trace" : level === "debug" ? "Debug" : level === "warn" ? "Warn" : level === "error" ? "Error" : "Info"

/**
 * Spans are off: BeamClaw has no tracer to send them to, and without one each
 * span (one per HTTP request in effect/http's server, one per traced
 * function call) is still made, timed and dropped unseen, on every turn. A
 * tracer, when one is added, turns them back on with it.
 */
const tracingOff = Layer.succeed(References.TracerEnabled)(false)

/** Log level from the config, applied to everything built on top of it; and no spans (see `tracingOff`). */
export const loggingLayer = (quiet: boolean) =>
  Layer.merge(
    Layer.unwrap(Effect.gen(function*() {
      const config = yield* (yield* AppConfig).get
      const level = quiet && config.logging.level === "info" ? "warn" : config.logging.level
      return Layer.succeed(References.MinimumLogLevel)(logLevel(level))
    })),
    tracingOff
  )

/**
 * The file system and paths: all of the platform the app itself uses. Not
 * NodeServices: its terminal, stdio and child-process services would be
 * built at every start for nothing (the CLI provides them where it needs them).
 */
const platform = Layer.mergeAll(NodeFileSystem.layer, NodePath.layer)

export const base = (options: CoreOptions = {}) =>
  Layer.mergeAll(AppConfig.layerWith({ flags: options.flags, watchFile: options.watchConfig ?? false }), platform).pipe(
    Layer.provideMerge(Paths.layer)
  )

export const bindHost = (gateway: BeamclawConfig["gateway"]): string =>
  gateway.bind === "lan" ? "0.0.0.0" : gateway.bind === "custom" ? gateway.customBindHost ?? "0.0.0.0" : "127.0.0.1"

/** CLI commands keep stdout for their output. */
export const logToStderr = Layer.succeed(Logger.LogToStderr)(true)

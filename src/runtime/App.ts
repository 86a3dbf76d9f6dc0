/**
 * The application's layers. `core` is everything a turn needs (config,
 * store, models, prompts, tools, the session host); `gateway` adds the HTTP
 * server and readiness on top. CLI commands that run a turn in-process use
 * `core` alone.
 */
import { createServer } from "node:http"
import { NodeHttpServer, NodeServices } from "@effect/platform-node"
import { Effect, Layer, Logger, References } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as AgentDirectoryLayer from "../agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../agent/PromptBuilder.ts"
import { ToolRegistry } from "../agent/Tool.ts"
import { AppConfig } from "../config/AppConfig.ts"
import type { ConfigOverrides } from "../config/ConfigLoader.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"
import * as HealthRoutes from "../gateway/HealthRoutes.ts"
import { Readiness } from "../gateway/Readiness.ts"
import * as ModelsLayer from "../provider/ModelsLayer.ts"
import * as FileSessionStore from "../session/FileSessionStore.ts"
import { Sessions } from "../session/Sessions.ts"
import * as StateLease from "./StateLease.ts"

export interface CoreOptions {
  readonly flags?: ConfigOverrides | undefined
  /** Long-running processes follow config edits; one-shot commands read the file once. */
  readonly watchConfig?: boolean | undefined
  /** Interactive commands show warnings and errors only, unless the config asks for debug or trace. */
  readonly quiet?: boolean | undefined
}

const storeLayer = Layer.unwrap(Effect.gen(function*() {
  const paths = yield* Paths
  return FileSessionStore.layer({ home: paths.home })
}))

const logLevel = (level: BeamclawConfig["logging"]["level"]) =>
  level === "trace" ? "Trace" : level === "debug" ? "Debug" : level === "warn" ? "Warn" : level === "error" ? "Error" : "Info"

/** Log level from the config, applied to everything built on top of it. */
const loggingLayer = (quiet: boolean) => Layer.unwrap(Effect.gen(function*() {
  const config = yield* (yield* AppConfig).get
  const level = quiet && config.logging.level === "info" ? "warn" : config.logging.level
  return Layer.succeed(References.MinimumLogLevel)(logLevel(level))
}))

export const base = (options: CoreOptions = {}) =>
  Layer.mergeAll(AppConfig.layerWith({ flags: options.flags, watchFile: options.watchConfig ?? false }), NodeServices.layer).pipe(
    Layer.provideMerge(Paths.layer)
  )

export const core = (options: CoreOptions = {}) =>
  Sessions.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(AgentDirectoryLayer.layer, ModelsLayer.layer, PromptBuilder.layer, ToolRegistry.empty, storeLayer)),
    Layer.provideMerge(loggingLayer(options.quiet ?? false)),
    Layer.provideMerge(base(options))
  )

export const bindHost = (gateway: BeamclawConfig["gateway"]): string =>
  gateway.bind === "lan" ? "0.0.0.0" : gateway.bind === "custom" ? gateway.customBindHost ?? "0.0.0.0" : "127.0.0.1"

/** Reports readiness once the layers below it are built. */
const readyWhenBuilt = Layer.effectDiscard(Effect.gen(function*() {
  const readiness = yield* Readiness
  yield* readiness.set("config", { up: true })
  yield* readiness.set("sessions", { up: true })
}))

const serverLayer = Layer.unwrap(Effect.gen(function*() {
  const config = yield* (yield* AppConfig).get
  const paths = yield* Paths
  const host = bindHost(config.gateway)
  const port = config.gateway.port
  const routes = HttpRouter.serve(HealthRoutes.layer, { disableLogger: true, disableListenLog: true })
  const announce = Layer.effectDiscard(Effect.gen(function*() {
    const server = yield* HttpServer.HttpServer
    const address = server.address._tag === "UnixPathAddress" ? { host, port } : { host, port: server.address.port }
    yield* StateLease.acquire(paths.home, address)
    yield* Effect.logInfo(`BeamClaw gateway listening on http://${address.host}:${address.port} (state ${paths.home})`)
  }))
  return Layer.mergeAll(routes, announce).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port, host, gracefulShutdownTimeout: "5 seconds" }))
  )
}))

export const gateway = (options: CoreOptions = {}) =>
  Layer.mergeAll(serverLayer, readyWhenBuilt).pipe(
    Layer.provideMerge(Readiness.layer),
    Layer.provideMerge(core({ ...options, watchConfig: options.watchConfig ?? true }))
  )

/** CLI commands keep stdout for their output. */
export const logToStderr = Layer.succeed(Logger.LogToStderr)(true)

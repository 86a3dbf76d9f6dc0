/**
 * The application's layers. `core` is everything a turn needs (config,
 * store, models, prompts, tools, the session host); `gateway` adds the HTTP
 * server and readiness on top. CLI commands that run a turn in-process use
 * `core` alone.
 */
import { createServer } from "node:http"
import { NodeHttpServer, NodeServices } from "@effect/platform-node"
import { Cause, Context, Effect, Exit, Layer, Logger, References, Schema, Scope, Stream } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import * as AgentDirectoryLayer from "../agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../agent/PromptBuilder.ts"
import { ToolRegistry } from "../agent/Tool.ts"
import { AppConfig } from "../config/AppConfig.ts"
import { ConfigWriter } from "../config/ConfigWriter.ts"
import type { ConfigOverrides } from "../config/ConfigLoader.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"
import * as GatewayAuthLayer from "../gateway/auth/GatewayAuthLayer.ts"
import * as Routes from "../gateway/Routes.ts"
import { LogRing } from "../gateway/ws/LogRing.ts"
import * as WsRoutes from "../gateway/ws/WsRoutes.ts"
import { Readiness } from "../gateway/Readiness.ts"
import * as ModelsLayer from "../provider/ModelsLayer.ts"
import * as FileSessionStore from "../session/FileSessionStore.ts"
import { Sessions } from "../session/Sessions.ts"
import type { AgentDirectory } from "../agent/AgentDirectory.ts"
import type { GatewayAuth } from "../gateway/auth/GatewayAuth.ts"
import type { Models } from "../provider/Models.ts"
import * as StateLease from "./StateLease.ts"
import { DetachedRuns } from "./DetachedRuns.ts"
import { SessionEvents } from "../gateway/rpc/SessionEvents.ts"
import { isErrno } from "../platform/Errno.ts"

export interface CoreOptions {
  readonly flags?: ConfigOverrides | undefined
  /** Long-running processes follow config edits; one-shot commands read the file once. */
  readonly watchConfig?: boolean | undefined
  /** Interactive commands show warnings and errors only, unless the config asks for debug or trace. */
  readonly quiet?: boolean | undefined
  /** Read sessions without writing anything (for commands that only look). */
  readonly readOnly?: boolean | undefined
}

const storeLayer = (readOnly: boolean) => Layer.unwrap(Effect.gen(function*() {
  const paths = yield* Paths
  return FileSessionStore.layer({ home: paths.home, readOnly })
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
    Layer.provideMerge(Layer.mergeAll(AgentDirectoryLayer.layer, ModelsLayer.layer, PromptBuilder.layer, ToolRegistry.empty, storeLayer(options.readOnly ?? false))),
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
  yield* readiness.set("http", { up: true })
}))

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

/** The reason a listen failed, from the node error under the ServeError (which has no message of its own). */
const listenFailure = (cause: Cause.Cause<unknown>): string => {
  let error: unknown = Cause.squash(cause)
  for (let depth = 0; depth < 4 && typeof error === "object" && error !== null; depth++) {
    if (isErrno(error, "EADDRINUSE")) return "the address is already in use (another gateway or program is listening there)"
    if (isErrno(error, "EACCES")) return "permission denied (ports below 1024 need privileges)"
    if (isErrno(error, "EADDRNOTAVAIL")) return "this machine has no such address"
    if (error instanceof Error && error.message !== "" && !("cause" in error && error.cause !== undefined)) return error.message
    error = "cause" in error ? error.cause : undefined
  }
  return String(Cause.squash(cause))
}

/** What the gateway's routes may use. */
export type GatewayServices =
  | Readiness
  | GatewayAuth
  | Sessions
  | AgentDirectory
  | AppConfig
  | ConfigWriter
  | Paths
  | Models
  | LogRing
  | DetachedRuns
  | SessionEvents
  | NodeServices.NodeServices

interface ListenAddress {
  readonly host: string
  readonly port: number
}

const listenAddress = (config: BeamclawConfig): ListenAddress => ({ host: bindHost(config.gateway), port: config.gateway.port })

/**
 * Built last, released first: WebSocket clients get OpenClaw's `shutdown`
 * event and close 1012 before the HTTP server waits for open sockets.
 */
const serverLayer = (address: ListenAddress) =>
  WsRoutes.shutdownNotice.pipe(
    Layer.provideMerge(HttpRouter.serve(Routes.layer, { disableLogger: true, disableListenLog: true })),
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: address.port, host: address.host, gracefulShutdownTimeout: "5 seconds" })),
    Layer.provideMerge(WsRoutes.WsHub.layer)
  )

/**
 * The HTTP server as a subsystem that restarts itself. The first server is
 * built at boot (a busy port stops the boot, as does another process holding
 * the state directory); an edit of gateway.port or gateway.bind moves the
 * listener without restarting the process: the new address is bound before
 * the old one is let go, and if it cannot be bound the old one stays.
 */
const supervisedServer = Layer.effectDiscard(Effect.gen(function*() {
  const appConfig = yield* AppConfig
  const paths = yield* Paths
  const readiness = yield* Readiness
  // Routes read the gateway's services (sessions, agents, auth, config) from here.
  const context = yield* Effect.context<GatewayServices>()
  const start = (address: ListenAddress) =>
    Effect.gen(function*() {
      const scope = yield* Scope.make()
      const built = yield* Effect.exit(Layer.buildWithScope(serverLayer(address), scope).pipe(Effect.provideContext(context)))
      if (built._tag === "Failure") {
        yield* Scope.close(scope, built)
        return yield* new ListenError({ host: address.host, port: address.port, message: `cannot listen on ${address.host}:${address.port}: ${listenFailure(built.cause)}` })
      }
      const server = Context.get(built.value, HttpServer.HttpServer)
      const port = server.address._tag === "UnixPathAddress" ? address.port : server.address.port
      return { scope, address: { host: address.host, port } }
    })
  // The lease comes first: a second gateway on this state directory stops before it binds anything.
  const wanted = listenAddress(yield* appConfig.get)
  const lease = yield* StateLease.acquire(paths.home, { name: "gateway", ...wanted })
  let running: { readonly scope: Scope.Closeable; readonly address: ListenAddress } | undefined = yield* start(wanted)
  yield* StateLease.update(paths.home, { ...lease, ...running.address })
  yield* Effect.addFinalizer((exit) => running === undefined ? Effect.void : Scope.close(running.scope, exit))
  yield* Effect.logInfo(`BeamClaw gateway listening on http://${wanted.host}:${running.address.port} (state ${paths.home})`)
  yield* appConfig.watch(listenAddress).pipe(
    Stream.drop(1),
    Stream.runForEach((next) =>
      Effect.gen(function*() {
        const previous = running
        if (previous !== undefined && next.host === previous.address.host && next.port === previous.address.port) return
        // An address that auth forbids (none beyond loopback, a custom bind without a host) is not moved to.
        const problem = GatewayAuthLayer.exposureProblem(yield* appConfig.get)
        if (problem !== undefined) return yield* Effect.logError(`not moving the gateway listener: ${problem}`)
        if (previous === undefined) {
          // The listener was lost; any edit is a chance to get it back.
          const back = yield* Effect.exit(start(next))
          if (back._tag === "Failure") return yield* Effect.logError(`the gateway still has no listener: ${next.host}:${next.port} could not be bound`, back.cause)
          running = back.value
        } else {
          // Bind the new address first; only the same port on an overlapping host needs the old one released first.
          let moved = yield* Effect.exit(start(next))
          if (moved._tag === "Failure" && next.port === previous.address.port) {
            yield* Scope.close(previous.scope, Exit.void)
            running = undefined
            moved = yield* Effect.exit(start(next))
            if (moved._tag === "Failure") {
              const back = yield* Effect.exit(start(previous.address))
              if (back._tag === "Failure") {
                yield* readiness.set("http", { up: false, reason: `not listening: ${previous.address.host}:${previous.address.port} could not be bound again` })
                return yield* Effect.logError(`the gateway lost its listener while moving to ${next.host}:${next.port}`, back.cause)
              }
              running = back.value
              return yield* Effect.logError(`could not listen on ${next.host}:${next.port}; staying on ${previous.address.host}:${previous.address.port}`, moved.cause)
            }
          } else if (moved._tag === "Success") {
            yield* Scope.close(previous.scope, Exit.void)
          } else {
            return yield* Effect.logError(`could not listen on ${next.host}:${next.port}; staying on ${previous.address.host}:${previous.address.port}`, moved.cause)
          }
          running = moved.value
        }
        yield* readiness.set("http", { up: true })
        yield* StateLease.update(paths.home, { ...lease, ...running.address })
        yield* Effect.logInfo(`BeamClaw gateway moved to http://${running.address.host}:${running.address.port}`)
      })
    ),
    Effect.forkScoped
  )
}))

export const gateway = (options: CoreOptions = {}) =>
  Layer.mergeAll(supervisedServer, readyWhenBuilt).pipe(
    // Built after the sessions and before the listener: on shutdown, detached runs get
    // their grace after the listener has stopped and before the session actors stop.
    Layer.provideMerge(Layer.mergeAll(Readiness.layer, GatewayAuthLayer.layer, ConfigWriter.layer, DetachedRuns.layer, SessionEvents.layer)),
    Layer.provideMerge(core({ ...options, watchConfig: options.watchConfig ?? true })),
    // Outermost, so every fiber's logs also land in the ring that logs.tail reads.
    Layer.provideMerge(LogRing.layer())
  )

/** CLI commands keep stdout for their output. */
export const logToStderr = Layer.succeed(Logger.LogToStderr)(true)

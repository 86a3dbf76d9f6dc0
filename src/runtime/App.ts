/**
 * The application's layers. `core` is everything a turn needs (config,
 * store, models, prompts, tools, the session host); `gateway` adds the HTTP
 * server and readiness on top. CLI commands that run a turn in-process use
 * `core` alone.
 */
import { createServer } from "node:http"
import { NodeFileSystem, NodeHttpPlatform, NodeHttpServer, NodePath } from "@effect/platform-node"
import { Cause, Context, Deferred, Effect, Exit, type FileSystem, Layer, Logger, type Path, References, Schema, Scope, Stream } from "effect"
import { Etag, HttpRouter, type HttpServerError, HttpServer, type HttpServerRequest, type HttpServerResponse } from "effect/http"
import type { SocketError } from "effect/socket/Socket"
import * as AgentDirectoryLayer from "../agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../agent/PromptBuilder.ts"
import { ToolRegistry } from "../agent/Tool.ts"
import { AppConfig } from "../config/AppConfig.ts"
import { ConfigWriter } from "../config/ConfigWriter.ts"
import type { ConfigOverrides } from "../config/ConfigLoader.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"
import * as GatewayAuthLayer from "../gateway/auth/GatewayAuthLayer.ts"
import * as HealthRoutes from "../gateway/HealthRoutes.ts"
import * as Routes from "../gateway/Routes.ts"
import { LogRing } from "../gateway/ws/LogRing.ts"
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
import { ChannelHost } from "../channels/ChannelHost.ts"
import { type AccountStatus, ChannelSupervisor } from "../channels/ChannelSupervisor.ts"
import { InboundDedupe } from "../channels/Dedupe.ts"
import * as DiscordChannel from "../channels/discord/DiscordChannel.ts"
import { PairingStore } from "../channels/PairingStore.ts"

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

/** The sessions and what they run on, over `base` and the log level. */
const sessions = (readOnly: boolean) =>
  Sessions.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(AgentDirectoryLayer.layer, ModelsLayer.layer, PromptBuilder.layer, ToolRegistry.empty, storeLayer(readOnly)))
  )

export const core = (options: CoreOptions = {}) =>
  sessions(options.readOnly ?? false).pipe(
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
  | ChannelSupervisor
  | ChannelHost
  | PairingStore
  | FileSystem.FileSystem
  | Path.Path

interface ListenAddress {
  readonly host: string
  readonly port: number
}

const listenAddress = (config: BeamclawConfig): ListenAddress => ({ host: bindHost(config.gateway), port: config.gateway.port })

/** The full route table of one listener, as the router runs it. */
type RouteTable = Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerError.HttpServerError | SocketError, HttpServerRequest.HttpServerRequest | Scope.Scope | GatewayServices>

/**
 * What a listener serves from the moment it is bound: GET and HEAD of the
 * probes (at boot), and every other request through the full route table
 * once it is there. The full table (OpenAI, webhooks, typed RPC, the
 * OpenClaw WebSocket and the probes again, so other methods on them answer
 * as always) is loaded right after the bind, so a request that comes before
 * it waits for it. A listener that replaces another answers nothing before
 * its table is there, so the old one is closed as soon as the new one answers.
 */
const serverLayer = (address: ListenAddress, table: Deferred.Deferred<RouteTable>, probesFirst: boolean) =>
  HttpRouter.serve(
    Layer.mergeAll(
      probesFirst ? HealthRoutes.probes : Layer.empty,
      HttpRouter.add("*", "*", Effect.flatMap(Deferred.await(table), (run) => run))
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    // NodeHttpServer.layer without its NodeServices (see `platform`).
    Layer.provideMerge(Layer.mergeAll(
      NodeHttpServer.layerServer(createServer, { port: address.port, host: address.host, gracefulShutdownTimeout: "5 seconds" }),
      NodeHttpPlatform.layer,
      Etag.layerWeak
    ))
  )

/**
 * The full route table, built into the listener's scope after the server:
 * released first, so WebSocket clients get OpenClaw's `shutdown` event and
 * close 1012 before the HTTP server waits for open sockets. Its code is
 * loaded as it is built (Routes.ts), not at start.
 */
const routeTable: Effect.Effect<RouteTable, never, Scope.Scope | GatewayServices> = HttpRouter.toHttpEffect(Routes.served)

/**
 * The gateway's hold on its state directory (StateLease): taken as soon as
 * the config is known, beside the sessions and auth, so a second gateway on
 * the same directory stops before it binds anything; released after the
 * sessions have stopped writing.
 */
class GatewayLease extends Context.Service<GatewayLease, StateLease.Lease>()("beamclaw/runtime/GatewayLease") {
  static readonly layer = Layer.effect(GatewayLease, Effect.gen(function*() {
    const paths = yield* Paths
    const wanted = listenAddress(yield* (yield* AppConfig).get)
    return yield* StateLease.acquire(paths.home, { name: "gateway", ...wanted })
  }))
}

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
  // Each listener's scope is a child of this layer's: a stop that comes while one is still
  // starting (its routes already answering) closes it too.
  const layerScope = yield* Effect.scope
  const start = (address: ListenAddress, probesFirst: boolean) =>
    Effect.gen(function*() {
      const scope = yield* Scope.fork(layerScope, "sequential")
      const table = yield* Deferred.make<RouteTable>()
      const built = yield* Effect.exit(Effect.gen(function*() {
        const server = yield* Layer.buildWithScope(serverLayer(address, table, probesFirst), scope)
        // Into the listener's scope (after the server, so released before it), not the scope this
        // layer was built in, which `context` carries: providing a context replaces the whole of it.
        const run = yield* routeTable.pipe(Effect.provideContext(Context.add(Context.merge(context, server), Scope.Scope, scope)))
        yield* Deferred.succeed(table, run)
        return server
      }).pipe(Effect.provideContext(context)))
      if (built._tag === "Failure") {
        // Requests already waiting for the table end with the server.
        yield* Deferred.failCause(table, Cause.die("the gateway's routes could not be loaded"))
        yield* Scope.close(scope, built)
        return yield* new ListenError({ host: address.host, port: address.port, message: `cannot listen on ${address.host}:${address.port}: ${listenFailure(built.cause)}` })
      }
      const server = Context.get(built.value, HttpServer.HttpServer)
      const port = server.address._tag === "UnixPathAddress" ? address.port : server.address.port
      return { scope, address: { host: address.host, port } }
    })
  const wanted = listenAddress(yield* appConfig.get)
  const lease = yield* GatewayLease
  let running: { readonly scope: Scope.Closeable; readonly address: ListenAddress } | undefined = yield* start(wanted, true)
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
          const back = yield* Effect.exit(start(next, false))
          if (back._tag === "Failure") return yield* Effect.logError(`the gateway still has no listener: ${next.host}:${next.port} could not be bound`, back.cause)
          running = back.value
        } else {
          // Bind the new address first; only the same port on an overlapping host needs the old one released first.
          let moved = yield* Effect.exit(start(next, false))
          if (moved._tag === "Failure" && next.port === previous.address.port) {
            yield* Scope.close(previous.scope, Exit.void)
            running = undefined
            moved = yield* Effect.exit(start(next, false))
            if (moved._tag === "Failure") {
              const back = yield* Effect.exit(start(previous.address, false))
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

/** Ready when every enabled channel account is connected; otherwise the reasons, per account. */
const channelReadiness = (statuses: ReadonlyArray<AccountStatus>) =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const down = statuses.filter((status) => !status.connected)
    yield* readiness.set("channels", down.length === 0
      ? { up: true }
      : { up: false, reason: down.map((s) => `${s.channel}:${s.accountId} ${s.state}${s.lastError === undefined ? "" : ` (${s.lastError})`}`).join("; ") })
  })

/**
 * The chat channels: one supervised fiber per enabled account, and the layer
 * that turns their messages into turns. Built after the detached runs, so on
 * shutdown the accounts disconnect first and their running lanes get the grace.
 */
const channels = ChannelSupervisor.layer([DiscordChannel.plugin], { onStatus: channelReadiness }).pipe(
  Layer.provideMerge(ChannelHost.layer),
  Layer.provideMerge(Layer.mergeAll(PairingStore.layer, InboundDedupe.layer()))
)

export const gateway = (options: CoreOptions = {}) =>
  Layer.mergeAll(supervisedServer, readyWhenBuilt).pipe(
    Layer.provideMerge(channels),
    // Built after the sessions and before the listener: on shutdown, detached runs get
    // their grace after the listener has stopped and before the session actors stop.
    Layer.provideMerge(Layer.mergeAll(Readiness.layer, ConfigWriter.layer, DetachedRuns.layer, SessionEvents.layer)),
    // The lease and auth need only the config: built beside the sessions (and first, so
    // their files are read and written while the sessions start).
    Layer.provideMerge(Layer.mergeAll(GatewayLease.layer, GatewayAuthLayer.layer, sessions(options.readOnly ?? false))),
    Layer.provideMerge(loggingLayer(options.quiet ?? false)),
    Layer.provideMerge(base({ ...options, watchConfig: options.watchConfig ?? true })),
    // Outermost, so every fiber's logs also land in the ring that logs.tail reads.
    Layer.provideMerge(LogRing.layer())
  )

/** CLI commands keep stdout for their output. */
export const logToStderr = Layer.succeed(Logger.LogToStderr)(true)

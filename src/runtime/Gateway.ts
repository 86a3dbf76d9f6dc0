/**
 * The gateway process. Its boot is in two steps, so that the port answers
 * as early as it can:
 *
 * 1. The boot layers (the log ring, the config, the state paths, the log
 *    level, readiness and the hold on the state directory) are built, the
 *    exposure rules are checked, and the port is bound with the probes:
 *    /health answers from here on, /ready answers 503 ("starting").
 * 2. The rest (GatewayServices.ts: sessions, auth, channels, and the route
 *    table) is loaded with `import()` and built. A request other than a
 *    probe that arrives meanwhile waits for the route table; it is not refused.
 *    Then /ready turns 200.
 *
 * A failure in either step stops the process as before. On shutdown the
 * listener goes first, then the services (channels, detached runs, sessions),
 * then the boot layers.
 */
import { createServer } from "node:http"
import { NodeHttpPlatform, NodeHttpServer } from "@effect/platform-node"
import { Cause, Context, Deferred, Effect, Exit, type FileSystem, Layer, type Path, Schema, Scope, Stream } from "effect"
import { Etag, HttpRouter, type HttpServerError, HttpServer, type HttpServerRequest, type HttpServerResponse } from "effect/http"
import type { SocketError } from "effect/socket/Socket"
import { AppConfig } from "../config/AppConfig.ts"
import type { BeamclawConfig } from "../config/ConfigSchema.ts"
import { Paths } from "../config/Paths.ts"
import { exposureProblem, GatewayAuthConfigError } from "../gateway/auth/Exposure.ts"
import * as HealthRoutes from "../gateway/HealthRoutes.ts"
import { Readiness } from "../gateway/Readiness.ts"
import { LogRing } from "../gateway/ws/LogRing.ts"
import { isErrno } from "../platform/Errno.ts"
import { base, bindHost, type CoreOptions, loggingLayer } from "./Base.ts"
import type * as Services from "./GatewayServices.ts"
import * as StateLease from "./StateLease.ts"

export interface GatewayOptions extends CoreOptions {
  /** Called once the services' code is loaded, before they are built (the entry tunes the heap there). */
  readonly afterLoad?: (() => void) | undefined
}

/** What the boot layers provide: all that step 2 needs from step 1. */
type BootServices = AppConfig | Paths | FileSystem.FileSystem | Path.Path | Readiness | LogRing

/** What the gateway's routes may use. */
export type GatewayServices = BootServices | Layer.Success<ReturnType<typeof Services.layer>>

export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  message: Schema.String
}) {}

/** The reason a listen failed, from the node error under the ServeError (which has no message of its own). */
/**
 * The WebSocket protocol's largest frame (gateway/ws/Frames.ts MAX_PAYLOAD_BYTES, as OpenClaw's 25 MiB), given
 * to the `ws` server; a copy, not an import, so the start-up path does not load the protocol's module.
 */
export const WEBSOCKET_MAX_PAYLOAD_BYTES = 25 * 1024 * 1024

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

interface ListenAddress {
  readonly host: string
  readonly port: number
}

const listenAddress = (config: BeamclawConfig): ListenAddress => ({ host: bindHost(config.gateway), port: config.gateway.port })

/** The full route table of one listener, as the router runs it, with the gateway's services already in it. */
type RouteTable = Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerError.HttpServerError | SocketError, HttpServerRequest.HttpServerRequest | Scope.Scope>

/**
 * What a listener serves from the moment it is bound: GET and HEAD of the
 * probes (at boot), and every other request through the full route table
 * once it is there; a request that comes before the table waits for it. A
 * listener that replaces another answers nothing before its table is there,
 * so the old one is closed as soon as the new one answers.
 */
const serverLayer = (address: ListenAddress, table: Deferred.Deferred<RouteTable>, probesFirst: boolean) =>
  HttpRouter.serve(
    Layer.mergeAll(
      probesFirst ? HealthRoutes.probes : Layer.empty,
      HttpRouter.add("*", "*", Effect.flatMap(Deferred.await(table), (run) => run))
    ),
    { disableLogger: true, disableListenLog: true }
  ).pipe(
    // NodeHttpServer.layer without its NodeServices (see Base.ts `platform`).
    Layer.provideMerge(Layer.mergeAll(
      NodeHttpServer.layerServer(createServer, {
        port: address.port,
        host: address.host,
        gracefulShutdownTimeout: "5 seconds",
        // A WebSocket frame over the protocol's limit is refused (1009) as it arrives, not buffered whole first.
        websocket: { maxPayload: WEBSOCKET_MAX_PAYLOAD_BYTES }
      }),
      NodeHttpPlatform.layer,
      Etag.layerWeak
    ))
  )

/**
 * The gateway's hold on its state directory (StateLease): taken as soon as
 * the config is known, so a second gateway on the same directory stops
 * before it binds anything; released after the sessions have stopped writing.
 */
class GatewayLease extends Context.Service<GatewayLease, StateLease.Lease>()("beamclaw/runtime/GatewayLease") {
  static readonly layer = Layer.effect(GatewayLease, Effect.gen(function*() {
    const paths = yield* Paths
    const config = yield* (yield* AppConfig).get
    // Refused exposures stop the boot here, before any port is bound.
    const problem = exposureProblem(config)
    if (problem !== undefined) return yield* new GatewayAuthConfigError({ message: problem })
    return yield* StateLease.acquire(paths.home, { name: "gateway", ...listenAddress(config) })
  }))
}

interface Listener {
  readonly scope: Scope.Closeable
  readonly address: ListenAddress
  readonly table: Deferred.Deferred<RouteTable>
}

/**
 * The HTTP server as a subsystem that restarts itself, and the two-step
 * boot. The first listener is bound at boot (a busy port stops the boot, as
 * does another process holding the state directory); then the services are
 * built and the listener gets its route table. An edit of gateway.port or
 * gateway.bind moves the listener without restarting the process: the new
 * address is bound before the old one is let go, and if it cannot be bound
 * the old one stays.
 */
const supervisedServer = (options: GatewayOptions) => Layer.effectDiscard(Effect.gen(function*() {
  const appConfig = yield* AppConfig
  const paths = yield* Paths
  const readiness = yield* Readiness
  const boot = yield* Effect.context<BootServices>()
  // Each listener's scope is a child of this layer's: a stop that comes while one is still
  // starting (its routes already answering) closes it too.
  const layerScope = yield* Effect.scope
  // Forked before any listener's scope, so it is closed after them.
  const servicesScope = yield* Scope.fork(layerScope, "sequential")

  const bind = (address: ListenAddress, probesFirst: boolean) =>
    Effect.gen(function*() {
      const scope = yield* Scope.fork(layerScope, "sequential")
      const table = yield* Deferred.make<RouteTable>()
      const built = yield* Effect.exit(Layer.buildWithScope(serverLayer(address, table, probesFirst), scope))
      if (built._tag === "Failure") {
        // Requests already waiting for the table end with the server.
        yield* Deferred.failCause(table, Cause.die("the listener could not be bound"))
        yield* Scope.close(scope, built)
        return yield* new ListenError({ host: address.host, port: address.port, message: `cannot listen on ${address.host}:${address.port}: ${listenFailure(built.cause)}` })
      }
      const server = Context.get(built.value, HttpServer.HttpServer)
      const port = server.address._tag === "UnixPathAddress" ? address.port : server.address.port
      const listener: Listener = { scope, address: { host: address.host, port }, table }
      return { listener, server: built.value }
    })

  /** Builds a listener's route table into its scope; until then its requests wait. */
  const serve = (listener: Listener, server: Context.Context<HttpServer.HttpServer>, services: Context.Context<GatewayServices>, routeTable: typeof Services.routeTable) =>
    routeTable.pipe(
      // Into the listener's scope (after the server, so released before it), not the scope this
      // layer was built in: the Scope given here wins over the one in `services`.
      Effect.provideContext(Context.add(Context.merge(services, server), Scope.Scope, listener.scope)),
      // The listener was built before the services: its requests get them from here. `services`
      // carries no Scope, so each request keeps its own (provideContext merges over the request's).
      Effect.flatMap((run) => Deferred.succeed(listener.table, Effect.provideContext(run, services))),
      Effect.onExit((exit) => exit._tag === "Failure" ? Deferred.failCause(listener.table, Cause.die("the gateway's routes could not be loaded")) : Effect.void)
    )

  const wanted = listenAddress(yield* appConfig.get)
  yield* readiness.set("sessions", { up: false, reason: "starting" })
  const first = yield* bind(wanted, true)
  let running: Listener | undefined = first.listener
  yield* Effect.addFinalizer((exit) => running === undefined ? Effect.void : Scope.close(running.scope, exit))
  const lease = yield* GatewayLease
  yield* StateLease.update(paths.home, { ...lease, ...running.address })

  // Step 2: the services, their code loaded only now. Loading and building them holds the
  // event loop for a while: two turns first, so a client already waiting is answered.
  yield* Effect.andThen(Effect.sleep("1 millis"), Effect.sleep("1 millis"))
  yield* Effect.logInfo(`BeamClaw gateway listening on http://${wanted.host}:${running.address.port} (state ${paths.home})`)
  const { module, services } = yield* Effect.gen(function*() {
    const module = yield* Effect.orDie(Effect.tryPromise(() => import("./GatewayServices.ts")))
    options.afterLoad?.()
    const built = yield* Layer.buildWithScope(module.layer({ readOnly: options.readOnly }), servicesScope).pipe(Effect.provideContext(boot))
    // Without the layer's Scope: a request keeps its own.
    const services = Context.omit(Scope.Scope)(Context.merge(boot, built))
    return { module, services }
  }).pipe(
    // A failure here stops the process; the requests already waiting for the table end now, not at the server's close.
    Effect.onExit((exit) => exit._tag === "Failure" ? Deferred.failCause(first.listener.table, Cause.die("the gateway could not start its services")) : Effect.void)
  )
  yield* serve(first.listener, first.server, services, module.routeTable)
  yield* readiness.set("config", { up: true })
  yield* readiness.set("sessions", { up: true })
  yield* readiness.set("http", { up: true })

  const start = (address: ListenAddress) =>
    Effect.gen(function*() {
      const { listener, server } = yield* bind(address, false)
      // A listener whose table cannot be built must not keep its port.
      yield* serve(listener, server, services, module.routeTable).pipe(Effect.onError((cause) => Scope.close(listener.scope, Exit.failCause(cause))))
      return listener
    })

  // The current address comes first: if it was edited while the services were built, the listener moves now.
  let configured = wanted
  yield* appConfig.watch(listenAddress).pipe(
    Stream.runForEach((next) =>
      Effect.gen(function*() {
        const previous = running
        // Nothing to do when it is where the listener is, or what it was bound for (port 0 binds some free port).
        const same = (a: ListenAddress, b: ListenAddress) => a.host === b.host && a.port === b.port
        const unchanged = previous !== undefined && (same(next, previous.address) || same(next, configured))
        configured = next
        if (unchanged) return
        // An address that auth forbids (none beyond loopback, a custom bind without a host) is not moved to.
        const problem = exposureProblem(yield* appConfig.get)
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

/** The gateway process's layer: `Layer.launch` it. */
export const layer = (options: GatewayOptions = {}) =>
  supervisedServer(options).pipe(
    Layer.provide(GatewayLease.layer),
    Layer.provideMerge(Readiness.layer),
    Layer.provideMerge(loggingLayer(options.quiet ?? false)),
    Layer.provideMerge(base({ ...options, watchConfig: options.watchConfig ?? true })),
    // Outermost, so every fiber's logs also land in the ring that logs.tail reads.
    Layer.provideMerge(LogRing.layer())
  )

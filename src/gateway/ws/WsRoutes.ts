/**
 * OpenClaw's gateway WebSocket protocol v4 on `/` of the gateway port, so
 * the `openclaw` CLI and other OpenClaw clients work against BeamClaw.
 * One hub per listener (WsHub): ticks, health broadcasts, pairing events and
 * the shutdown notice live there; each connection is Connection.run.
 */
import type * as Net from "node:net"
import { Config, Context, Duration, Effect, Layer, Option, Stream } from "effect"
import * as NodeHttpServerRequest from "@effect/platform-node/NodeHttpServerRequest"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { VERSION } from "../../Version.ts"
import { GatewayAuth } from "../auth/GatewayAuth.ts"
import { SessionMaintenance } from "../../session/SessionMaintenance.ts"
import * as Connection from "./Connection.ts"
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_TICK_INTERVAL_MS } from "./Frames.ts"
import * as Hub from "./Hub.ts"
import { DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP, OVER_BUDGET_MESSAGE } from "./PreauthBudget.ts"
import * as ChatMethods from "./methods/Chat.ts"
import * as ConfigMethods from "./methods/ConfigMethods.ts"
import type { Handler } from "./methods/Method.ts"
import * as PairingMethods from "./methods/Pairing.ts"
import * as SessionMethods from "./methods/SessionMethods.ts"
import * as SystemMethods from "./methods/System.ts"

/** The version the gateway reports to clients. */
export const SERVER_VERSION = VERSION

const HEALTH_BROADCAST_INTERVAL_MS = 60_000
const SHUTDOWN_FLUSH_MS = 1000

/** Test and tuning knobs; OpenClaw reads OPENCLAW_HANDSHAKE_TIMEOUT_MS the same way. */
/**
 * A positive whole number from the environment, else `fallback`. A value that
 * is set but is not one is not an error that stops the gateway (OpenClaw
 * ignores it the same way), but it is logged, naming the variable, so a typo
 * does not pass unseen.
 */
const positiveInt = (name: string, fallback: number): Effect.Effect<number> =>
  Effect.gen(function*() {
    const raw = yield* Config.option(Config.String(name)).pipe(Effect.orElseSucceed(() => Option.none<string>()))
    if (Option.isNone(raw)) return fallback
    const value = Number(raw.value.trim())
    if (Number.isSafeInteger(value) && value > 0) return value
    yield* Effect.logWarning(`${name}=${JSON.stringify(raw.value)} is not a positive whole number; using ${fallback}`)
    return fallback
  })

export const methodTable = (hub: Hub.Hub): Record<string, Handler> => ({
  ...SystemMethods.handlers(hub),
  ...ChatMethods.handlers(hub),
  ...SessionMethods.handlers(hub),
  ...ConfigMethods.handlers(hub),
  ...PairingMethods.handlers(hub)
})

/** The hub of one listener, with its background broadcasts (ticks, health, device pairing). */
export class WsHub extends Context.Service<WsHub, Hub.Hub>()("beamclaw/gateway/ws/WsHub") {
  static readonly layer = Layer.effect(WsHub, Effect.gen(function*() {
    const tickIntervalMs = yield* positiveInt("BEAMCLAW_TICK_INTERVAL_MS", DEFAULT_TICK_INTERVAL_MS)
    const handshakeTimeoutMs = yield* positiveInt("BEAMCLAW_HANDSHAKE_TIMEOUT_MS", DEFAULT_HANDSHAKE_TIMEOUT_MS)
    // OpenClaw reads OPENCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP the same way (a positive integer, else the default).
    const maxPreauthConnectionsPerIp = yield* positiveInt("BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP", DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP)
    const hub = yield* Hub.make({ version: SERVER_VERSION, tickIntervalMs, handshakeTimeoutMs, maxPreauthConnectionsPerIp })

    // Ticks and health go out only while someone is connected: without clients these fibers wait on the hub's
    // latch, so an idle gateway runs no timer for them.
    yield* Effect.forkScoped(
      hub.whileConnected.pipe(
        Effect.andThen(Effect.sleep(Duration.millis(tickIntervalMs))),
        Effect.andThen(Effect.sync(() => hub.broadcast("tick", { ts: Date.now() }, { dropIfSlow: true }))),
        Effect.forever
      )
    )
    yield* Effect.forkScoped(
      hub.whileConnected.pipe(
        Effect.andThen(Effect.sleep(Duration.millis(HEALTH_BROADCAST_INTERVAL_MS))),
        Effect.andThen(SystemMethods.healthSummary),
        Effect.tap((summary) => Effect.sync(() => {
          if (hub.clients.size === 0) return
          hub.bumpHealth()
          hub.broadcast("health", summary, { dropIfSlow: true, stateVersion: true })
        })),
        Effect.ignore,
        Effect.forever
      )
    )
    // Pairing requests and decisions reach the operators who can act on them (Scopes.eventAllowed).
    const auth = yield* GatewayAuth
    yield* Effect.forkScoped(
      auth.pairing.events.pipe(Stream.runForEach((event) => Effect.sync(() => hub.broadcast(event.event, event.payload, { dropIfSlow: true }))))
    )
    // Sessions removed by maintenance (a pass on its own or asked for) leave the operators' session lists.
    const maintenance = yield* SessionMaintenance
    yield* Effect.forkScoped(
      maintenance.passes.pipe(Stream.runForEach((pass) => Effect.sync(() => {
        for (const summary of pass.summaries) {
          if (summary.dryRun || summary.actions.length === 0) continue
          hub.broadcast("sessions.changed", { reason: "cleanup", agentId: summary.agentId, removed: summary.actions.length })
        }
      })))
    )
    return hub
  }))
}

const announceShutdown = (hub: Hub.Hub) => {
  hub.broadcast("shutdown", { reason: "gateway stopping" })
  hub.closeAll(1012, "service restart")
}

/**
 * Tells every client the gateway is going and closes them with 1012, then
 * gives them a moment to leave. Build it after the HTTP server (so it is
 * released first): the server's graceful close waits for open sockets, and
 * WebSocket clients would otherwise hold it until its timeout.
 */
export const shutdownNotice = Layer.effectDiscard(Effect.gen(function*() {
  const hub = yield* WsHub
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      if (hub.clients.size === 0) return
      announceShutdown(hub)
      const deadline = Date.now() + SHUTDOWN_FLUSH_MS
      while (hub.clients.size > 0 && Date.now() < deadline) yield* Effect.sleep(Duration.millis(20))
    })
  )
}))

const hasProxyHeaders = (headers: Readonly<Record<string, string | undefined>>): boolean =>
  ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip"].some((name) => (headers[name] ?? "") !== "")

/**
 * libuv's count of the bytes of the socket's pending writes the kernel has not taken yet. Node does not document
 * it, hence the care; writableLength, which it does, falls only once a whole write (a batch of frames) is done.
 */
const libuvWriteQueueSize = (socket: Net.Socket): number | undefined => {
  const handle: unknown = Reflect.get(socket, "_handle")
  if (typeof handle !== "object" || handle === null) return undefined
  const size: unknown = Reflect.get(handle, "writeQueueSize")
  return typeof size === "number" ? size : undefined
}

/** The TCP socket under the upgraded request, corked while the connection writes a batch of frames. */
const transportOf = (request: HttpServerRequest.HttpServerRequest): Connection.Transport | undefined => {
  const socket: Net.Socket | null | undefined = NodeHttpServerRequest.toIncomingMessage(request).socket
  if (socket === null || socket === undefined) return undefined
  return {
    cork: () => socket.cork(),
    uncork: () => socket.uncork(),
    destroy: () => socket.destroy(),
    get writableLength() {
      return socket.writableLength
    },
    get writeQueueSize() {
      return libuvWriteQueueSize(socket)
    }
  }
}

const route = (hub: Hub.Hub) => {
  const methods = methodTable(hub)
  const handler = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.jsonUnsafe(
        { error: { message: "This endpoint speaks the OpenClaw gateway WebSocket protocol: connect with a WebSocket client (e.g. ws://host:port/).", type: "upgrade_required" } },
        { status: 426, headers: { upgrade: "websocket", connection: "Upgrade" } }
      )
    }
    const clientAddress = Option.getOrElse(request.remoteAddress, () => "")
    // Refused before the WebSocket handshake, as OpenClaw: a flood of idle sockets costs a Map entry, not a connection.
    // Taking the slot and arranging its release are one uninterruptible step, so an interruption cannot leak it.
    return yield* Effect.acquireUseRelease(
      Effect.sync(() => hub.preauth.acquire(clientAddress)),
      (releasePreauth) => {
        if (releasePreauth === undefined) {
          return Effect.succeed(HttpServerResponse.text(OVER_BUDGET_MESSAGE, { status: 503, headers: { connection: "close" } }))
        }
        const peer: Connection.Peer = { clientAddress, hasProxyHeaders: hasProxyHeaders(request.headers), releasePreauth }
        return Effect.gen(function*() {
          const socket = yield* request.upgrade
          yield* Effect.scoped(Connection.run(socket, peer, hub, methods, transportOf(request)))
          return HttpServerResponse.empty()
        })
      },
      (releasePreauth) => Effect.sync(() => releasePreauth?.())
    )
  }).pipe(
    Effect.catchTag("HttpServerError", (error) => Effect.succeed(HttpServerResponse.text(`WebSocket upgrade failed: ${error.message}`, { status: 400 })))
  )
  return HttpRouter.add("GET", "/", handler)
}

// Until the runtime builds WsHub.layer below the HTTP server and shutdownNotice above it, a
// finalizer here runs only after the server's graceful wait; the signal gets the notice out first.
const signalFallback = (hub: Hub.Hub) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const announce = () => announceShutdown(hub)
      process.on("SIGTERM", announce)
      process.on("SIGINT", announce)
      return announce
    }),
    (announce) =>
      Effect.sync(() => {
        process.off("SIGTERM", announce)
        process.off("SIGINT", announce)
      })
  )

/**
 * The `/` route. Uses the WsHub the runtime provides (see shutdownNotice);
 * without one it makes its own, with the same notice on shutdown.
 */
export const layer = Layer.unwrap(Effect.gen(function*() {
  const provided = yield* Effect.serviceOption(WsHub)
  if (Option.isSome(provided)) return route(provided.value)
  return Layer.unwrap(Effect.gen(function*() {
    const hub = yield* WsHub
    yield* signalFallback(hub)
    return route(hub)
  })).pipe(Layer.provideMerge(shutdownNotice), Layer.provide(WsHub.layer))
}))

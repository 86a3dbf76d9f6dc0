/**
 * OpenClaw's gateway WebSocket protocol v4 on `/` of the gateway port, so
 * the `openclaw` CLI and other OpenClaw clients work against BeamClaw.
 * One hub per listener: ticks, health broadcasts and the shutdown notice
 * live here; each connection is Connection.run.
 */
import { Config, Duration, Effect, Layer, Option, Schedule } from "effect"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import * as Connection from "./Connection.ts"
import { DEFAULT_HANDSHAKE_TIMEOUT_MS, DEFAULT_TICK_INTERVAL_MS } from "./Frames.ts"
import * as Hub from "./Hub.ts"
import * as ChatMethods from "./methods/Chat.ts"
import * as ConfigMethods from "./methods/ConfigMethods.ts"
import type { Handler } from "./methods/Method.ts"
import * as SessionMethods from "./methods/SessionMethods.ts"
import * as SystemMethods from "./methods/System.ts"

/** The version the gateway reports to clients (kept with package.json). */
export const SERVER_VERSION = "0.1.0"

const HEALTH_BROADCAST_INTERVAL_MS = 60_000
const SHUTDOWN_FLUSH_MS = 1000

/** Test and tuning knobs; OpenClaw reads OPENCLAW_HANDSHAKE_TIMEOUT_MS the same way. */
const positiveMs = (name: string, fallback: number) =>
  Config.Int(name).pipe(Config.option, Config.map((value) => Option.getOrElse(Option.filter(value, (ms: number) => ms > 0), () => fallback)))

export const methodTable = (hub: Hub.Hub): Record<string, Handler> => ({
  ...SystemMethods.handlers(hub),
  ...ChatMethods.handlers(hub),
  ...SessionMethods.handlers(hub),
  ...ConfigMethods.handlers(hub)
})

export const layer = Layer.unwrap(Effect.gen(function*() {
  const tickIntervalMs = yield* positiveMs("BEAMCLAW_TICK_INTERVAL_MS", DEFAULT_TICK_INTERVAL_MS).pipe(Effect.orElseSucceed(() => DEFAULT_TICK_INTERVAL_MS))
  const handshakeTimeoutMs = yield* positiveMs("BEAMCLAW_HANDSHAKE_TIMEOUT_MS", DEFAULT_HANDSHAKE_TIMEOUT_MS).pipe(Effect.orElseSucceed(() => DEFAULT_HANDSHAKE_TIMEOUT_MS))
  const hub = yield* Hub.make({ version: SERVER_VERSION, tickIntervalMs, handshakeTimeoutMs })
  const methods = methodTable(hub)

  yield* Effect.forkScoped(
    Effect.sync(() => hub.broadcast("tick", { ts: Date.now() }, { dropIfSlow: true })).pipe(
      Effect.delay(Duration.millis(tickIntervalMs)),
      Effect.forever
    )
  )
  yield* Effect.forkScoped(
    SystemMethods.healthSummary.pipe(
      Effect.tap((summary) => Effect.sync(() => {
        if (hub.clients.size === 0) return
        hub.bumpHealth()
        hub.broadcast("health", summary, { dropIfSlow: true, stateVersion: true })
      })),
      Effect.ignore,
      Effect.repeat(Schedule.spaced(Duration.millis(HEALTH_BROADCAST_INTERVAL_MS)))
    )
  )
  // Graceful shutdown: tell every client as soon as the signal arrives, then close them with
  // "service restart". The HTTP server's own shutdown waits for open sockets first, so waiting for
  // this layer's finalizer would hold every WebSocket client until the graceful timeout.
  const announceShutdown = () => {
    hub.broadcast("shutdown", { reason: "gateway stopping" })
    hub.closeAll(1012, "service restart")
  }
  yield* Effect.acquireRelease(
    Effect.sync(() => {
      process.on("SIGTERM", announceShutdown)
      process.on("SIGINT", announceShutdown)
    }),
    () =>
      Effect.sync(() => {
        process.off("SIGTERM", announceShutdown)
        process.off("SIGINT", announceShutdown)
      })
  )
  // A listener move (or a shutdown without a signal) ends here: same notice.
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      if (hub.clients.size === 0) return
      hub.broadcast("shutdown", { reason: "gateway stopping" })
      hub.closeAll(1012, "service restart")
      const deadline = Date.now() + SHUTDOWN_FLUSH_MS
      while (hub.clients.size > 0 && Date.now() < deadline) yield* Effect.sleep(Duration.millis(20))
    })
  )

  const handler = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return HttpServerResponse.jsonUnsafe(
        { error: { message: "This endpoint speaks the OpenClaw gateway WebSocket protocol: connect with a WebSocket client (e.g. ws://host:port/).", type: "upgrade_required" } },
        { status: 426, headers: { upgrade: "websocket", connection: "Upgrade" } }
      )
    }
    const clientAddress = Option.getOrElse(request.remoteAddress, () => "")
    const socket = yield* request.upgrade
    yield* Effect.scoped(Connection.run(socket, clientAddress, hub, methods))
    return HttpServerResponse.empty()
  }).pipe(
    Effect.catchTag("HttpServerError", (error) => Effect.succeed(HttpServerResponse.text(`WebSocket upgrade failed: ${error.message}`, { status: 400 })))
  )

  return HttpRouter.add("GET", "/", handler)
}))

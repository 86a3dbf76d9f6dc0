/**
 * Every HTTP route and WebSocket upgrade the gateway serves on its one port,
 * as one table per listener (see runtime/Gateway.ts). The table is built after
 * the listener is bound and the services are up, while it already answers the
 * probes, so none of this is on the way to the first /health. Each surface's code is its own
 * chunk, loaded and registered one at a time with turns of the event loop
 * in between: a request that comes meanwhile is served within one step
 * instead of after all of them.
 */
import { Effect, Layer } from "effect"
import * as HealthRoutes from "./HealthRoutes.ts"

/**
 * Two turns of the event loop: one to accept a new connection, one to read and answer its
 * request. Yields, not timers: Effect resumes a yield from setImmediate, after the I/O the
 * loop has waiting, without the millisecond or more that the shortest timer costs.
 */
const turns = Effect.andThen(Effect.yieldNow, Effect.yieldNow)

/**
 * A part of the table whose module is loaded when the part is built, after
 * the turns. The modules are part of this program's own bundle, so failing
 * to load one is a defect.
 */
const part = <A, E, R>(load: () => Promise<Layer.Layer<A, E, R>>): Layer.Layer<A, E, R> =>
  Layer.unwrap(Effect.andThen(turns, Effect.orDie(Effect.tryPromise(load))))

const wsRoutes = () => import("./ws/WsRoutes.ts")

/**
 * The table of one listener with its WebSocket hub, built in this order:
 * the hub first and the shutdown notice last, so on release clients are
 * told and closed before the routes and the hub go. The probes are in it
 * too: other methods on them answer 405 here as everywhere.
 */
export const served = part(() => wsRoutes().then((ws) => ws.shutdownNotice)).pipe(
  Layer.provideMerge(part(() => wsRoutes().then((ws) => ws.layer))),
  Layer.provideMerge(part(() => import("./rpc/RpcRoutes.ts").then((rpc) => rpc.layer))),
  Layer.provideMerge(part(() => import("./hooks/HookRoutes.ts").then((hooks) => hooks.layer))),
  Layer.provideMerge(part(() => import("./openai/OpenAiRoutes.ts").then((openai) => openai.layer))),
  Layer.provideMerge(part(() => import("./openresponses/ResponsesRoutes.ts").then((responses) => responses.layer))),
  Layer.provideMerge(HealthRoutes.layer),
  Layer.provideMerge(part(() => wsRoutes().then((ws) => ws.WsHub.layer)))
)

/**
 * Typed RPC (`BeamclawRpcs`) over WebSocket at /rpc, JSON frames.
 *
 * Auth: every request is checked with GatewayAuth against the
 * `Authorization: Bearer` header, taken from the request itself or, as
 * `BeamclawClient` sends it, from the WebSocket upgrade (the RPC server
 * merges upgrade headers into each request). A bad or missing credential
 * fails that call with a typed `AuthFailed`, so a client learns why instead
 * of seeing a refused socket; the token never travels in the URL.
 *
 * The client address for rate limiting comes from the upgrade request: the
 * route tags each connection with a random id header and keeps the address
 * here, so a client cannot claim another address.
 *
 * Until one of its requests has authenticated, a socket holds a slot of a
 * per-address budget (OpenClaw's 32 unauthenticated sockets, as on `/`; over
 * it the upgrade gets 503) and must authenticate within the handshake
 * timeout (15 s, `BEAMCLAW_HANDSHAKE_TIMEOUT_MS`), or it is closed: a client
 * without the token cannot hold sockets open.
 */
import { randomUUID } from "node:crypto"
import { Config, Deferred, Duration, Effect, Layer, Option } from "effect"
import { Headers, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { AuthFailed, GatewayAuth } from "../auth/GatewayAuth.ts"
import { DEFAULT_HANDSHAKE_TIMEOUT_MS } from "../ws/Frames.ts"
import * as PreauthBudget from "../ws/PreauthBudget.ts"
import * as RpcHandlers from "./RpcHandlers.ts"
import { BeamclawRpcs, RpcAuth } from "./Rpcs.ts"

export const PATH = "/rpc"

const CONNECTION_HEADER = "x-beamclaw-rpc-connection"

interface Peer {
  readonly clientAddress: string
  /** Done once a request of this socket has authenticated. */
  readonly authenticated: Deferred.Deferred<void>
  /** Gives back the socket's slot of the unauthenticated budget (idempotent). */
  readonly release: () => void
  /** The upgrade's `Authorization` and why it was refused, already counted toward the rate limit. */
  readonly refused: { readonly authorization: string; readonly failure: AuthFailed } | undefined
}

const refuse = (status: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe({ error: { message, type: "invalid_request_error" } }, { status, headers: { "cache-control": "no-store", ...headers } })

const server = Layer.effectDiscard(Effect.gen(function*() {
  const auth = yield* GatewayAuth
  const peers = new Map<string, Peer>()
  // The same settings as the WebSocket protocol's route (ws/WsRoutes.ts).
  const positive = (name: string, fallback: number) =>
    Config.option(Config.Int(name)).pipe(
      Effect.orElseSucceed(() => Option.none<number>()),
      Effect.map((value) => Option.isSome(value) && value.value > 0 ? value.value : fallback)
    )
  const budget = PreauthBudget.make(yield* positive("BEAMCLAW_MAX_PREAUTH_CONNECTIONS_PER_IP", PreauthBudget.DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP))
  const authTimeout = Duration.millis(yield* positive("BEAMCLAW_HANDSHAKE_TIMEOUT_MS", DEFAULT_HANDSHAKE_TIMEOUT_MS))
  const { protocol, httpEffect } = yield* RpcServer.makeProtocolWithHttpEffectWebsocket

  const upgrade = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET") return refuse(405, `${PATH} takes a WebSocket upgrade (GET)`, { allow: "GET" })
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return refuse(426, `${PATH} speaks effect/rpc over WebSocket; connect with beamclaw/client`, { upgrade: "websocket" })
    }
    const clientAddress = Option.getOrElse(request.remoteAddress, () => "unknown")
    // Credentials on the upgrade itself (as BeamclawClient sends them) authenticate the socket at once.
    // A wrong one counts here, since whether the socket outlives the handshake deadline tells a guesser
    // the answer; the socket's requests carrying the same header do not count it again.
    const authorization = request.headers["authorization"]
    const upfront = authorization === undefined ? undefined : yield* Effect.result(auth.checkBearer(authorization, clientAddress))
    const authenticated = Deferred.makeUnsafe<void>()
    let release = () => {}
    if (upfront?._tag === "Success") {
      Deferred.doneUnsafe(authenticated, Effect.void)
    } else {
      const acquired = budget.acquire(clientAddress)
      if (acquired === undefined) return HttpServerResponse.text(PreauthBudget.OVER_BUDGET_MESSAGE, { status: 503, headers: { connection: "close" } })
      release = acquired
    }
    const id = randomUUID()
    const refused = authorization !== undefined && upfront?._tag === "Failure" ? { authorization, failure: upfront.failure } : undefined
    peers.set(id, { clientAddress, authenticated, release, refused })
    const headers = Headers.set(Headers.remove(request.headers, CONNECTION_HEADER), CONNECTION_HEADER, id)
    // A socket that has not authenticated in time is closed (the race interrupts its protocol fiber).
    const deadline = Effect.sleep(authTimeout).pipe(
      Effect.andThen(Effect.suspend(() => Deferred.isDoneUnsafe(authenticated) ? Effect.never : Effect.succeed(HttpServerResponse.empty())))
    )
    return yield* Effect.raceFirst(
      httpEffect.pipe(Effect.provideService(HttpServerRequest.HttpServerRequest, request.modify({ headers }))),
      deadline
    ).pipe(Effect.ensuring(Effect.sync(() => {
      peers.delete(id)
      release()
    })))
  })
  const router = yield* HttpRouter.HttpRouter
  yield* router.add("*", PATH, upgrade)

  const checkRequest = RpcAuth.of((effect, { headers }) =>
    Effect.gen(function*() {
      const peer = peers.get(headers[CONNECTION_HEADER] ?? "")
      // Only a request that overrode the connection header per message gets here.
      if (peer === undefined) return yield* new AuthFailed({ reason: "not_allowed", message: "unknown RPC connection" })
      const authorization = headers["authorization"]
      // The upgrade's own credentials, refused there: the same answer, not a second count.
      if (peer.refused !== undefined && authorization === peer.refused.authorization) return yield* peer.refused.failure
      yield* auth.checkBearer(authorization, peer.clientAddress)
      // Authenticated: the socket leaves the unauthenticated budget and its deadline.
      peer.release()
      Deferred.doneUnsafe(peer.authenticated, Effect.void)
      return yield* effect
    })
  )

  yield* RpcServer.make(BeamclawRpcs, { disableTracing: true, disableFatalDefects: true }).pipe(
    Effect.provideService(RpcServer.Protocol, protocol),
    Effect.provideService(RpcAuth, checkRequest),
    Effect.forkScoped
  )
}))

export const layer = server.pipe(
  Layer.provide(RpcHandlers.layer),
  Layer.provide(RpcSerialization.layerJson)
)

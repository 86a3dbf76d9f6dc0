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
 */
import { randomUUID } from "node:crypto"
import { Effect, Layer, Option } from "effect"
import { Headers, HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { RpcSerialization, RpcServer } from "effect/rpc"
import { AuthFailed, GatewayAuth } from "../auth/GatewayAuth.ts"
import * as RpcHandlers from "./RpcHandlers.ts"
import { BeamclawRpcs, RpcAuth } from "./Rpcs.ts"

export const PATH = "/rpc"

const CONNECTION_HEADER = "x-beamclaw-rpc-connection"

interface Peer {
  readonly clientAddress: string
}

const refuse = (status: number, message: string, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe({ error: { message, type: "invalid_request_error" } }, { status, headers: { "cache-control": "no-store", ...headers } })

const server = Layer.effectDiscard(Effect.gen(function*() {
  const auth = yield* GatewayAuth
  const peers = new Map<string, Peer>()
  const { protocol, httpEffect } = yield* RpcServer.makeProtocolWithHttpEffectWebsocket

  const upgrade = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    if (request.method !== "GET") return refuse(405, `${PATH} takes a WebSocket upgrade (GET)`, { allow: "GET" })
    if ((request.headers["upgrade"] ?? "").toLowerCase() !== "websocket") {
      return refuse(426, `${PATH} speaks effect/rpc over WebSocket; connect with beamclaw/client`, { upgrade: "websocket" })
    }
    const id = randomUUID()
    peers.set(id, { clientAddress: Option.getOrElse(request.remoteAddress, () => "unknown") })
    const headers = Headers.set(Headers.remove(request.headers, CONNECTION_HEADER), CONNECTION_HEADER, id)
    return yield* httpEffect.pipe(
      Effect.provideService(HttpServerRequest.HttpServerRequest, request.modify({ headers })),
      Effect.ensuring(Effect.sync(() => peers.delete(id)))
    )
  })
  const router = yield* HttpRouter.HttpRouter
  yield* router.add("*", PATH, upgrade)

  const checkRequest = RpcAuth.of((effect, { headers }) =>
    Effect.gen(function*() {
      const peer = peers.get(headers[CONNECTION_HEADER] ?? "")
      // Only a request that overrode the connection header per message gets here.
      if (peer === undefined) return yield* new AuthFailed({ reason: "not_allowed", message: "unknown RPC connection" })
      yield* auth.checkBearer(headers["authorization"], peer.clientAddress)
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

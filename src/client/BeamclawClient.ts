/**
 * A ready client for a running gateway's typed RPC: provide
 * `BeamclawClient.layer({ url, token })` and `yield* BeamclawClient` to call
 * `Send`, `ListSessions`, `History`, `Reset`, `CleanupSessions`, `GetConfig`,
 * `PatchConfig`, `Status`, `Subscribe`, `ChannelsStatus` and the pairing
 * procedures, each with its typed errors plus
 * `RpcClientError` for transport problems (gateway down, connection lost).
 *
 * The token goes in the WebSocket upgrade's `Authorization` header, never in
 * the URL. Runs on Node (>= 22.19, for its WebSocket client).
 */
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { Config, Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import { type RpcClientError, RpcClient, type RpcGroup, RpcSerialization } from "effect/rpc"
import { BeamclawRpcs } from "../gateway/rpc/Rpcs.ts"

export const DEFAULT_URL = "ws://127.0.0.1:18789/rpc"

export interface BeamclawClientOptions {
  /** `ws://host:port/rpc`; `http(s)://` is taken as `ws(s)://`, and a bare origin gets `/rpc`. Default `ws://127.0.0.1:18789/rpc`. */
  readonly url?: string | undefined
  /** The gateway token (or password, in password mode). Omit only for a gateway in auth mode `none`. */
  readonly token?: string | Redacted.Redacted<string> | undefined
  /** How long to wait for the socket to open. Default 10 seconds. */
  readonly openTimeout?: number | undefined
}

export class ClientConfigError extends Schema.TaggedError<ClientConfigError>()("ClientConfigError", {
  message: Schema.String
}) {}

/** The WebSocket URL of the gateway's RPC endpoint, from what a user may type. */
export const normaliseUrl = (input: string): Effect.Effect<string, ClientConfigError> =>
  Effect.suspend(() => {
    let url: URL
    try {
      url = new URL(input.trim())
    } catch {
      return Effect.fail(new ClientConfigError({ message: `not a URL: ${JSON.stringify(input)} (expected ws://host:port/rpc)` }))
    }
    if (url.protocol === "http:") url.protocol = "ws:"
    else if (url.protocol === "https:") url.protocol = "wss:"
    if (url.protocol !== "ws:" && url.protocol !== "wss:") {
      return Effect.fail(new ClientConfigError({ message: `unsupported scheme ${url.protocol} in ${JSON.stringify(input)} (expected ws:// or wss://)` }))
    }
    if (url.username !== "" || url.password !== "" || url.searchParams.has("token")) {
      return Effect.fail(new ClientConfigError({ message: "put the token in the `token` option, not in the URL" }))
    }
    if (url.pathname === "/" || url.pathname === "") url.pathname = "/rpc"
    return Effect.succeed(url.toString())
  })

export type BeamclawRpcClient = RpcClient.RpcClient<RpcGroup.Rpcs<typeof BeamclawRpcs>, RpcClientError.RpcClientError>

export class BeamclawClient extends Context.Service<BeamclawClient, BeamclawRpcClient>()("beamclaw/client/BeamclawClient") {
  /** A client connected to the gateway at `url`; the connection lives as long as the layer. */
  static readonly layer = (options: BeamclawClientOptions = {}): Layer.Layer<BeamclawClient, ClientConfigError> =>
    Layer.unwrap(Effect.gen(function*() {
      const url = yield* normaliseUrl(options.url ?? DEFAULT_URL)
      const token = options.token === undefined ? undefined : Redacted.isRedacted(options.token) ? Redacted.value(options.token) : options.token
      const headers: Record<string, string> = token === undefined || token === "" ? {} : { authorization: `Bearer ${token}` }
      return Layer.effect(BeamclawClient)(RpcClient.make(BeamclawRpcs)).pipe(
        Layer.provide(RpcClient.layerProtocolSocket()),
        Layer.provide(NodeSocket.layerWebSocket(url, { headers, openTimeout: options.openTimeout ?? 10_000 })),
        Layer.provide(RpcSerialization.layerJson)
      )
    }))

  /** `layer` from the environment: `BEAMCLAW_URL` (default `ws://127.0.0.1:18789/rpc`) and `BEAMCLAW_TOKEN`. */
  static readonly layerConfig: Layer.Layer<BeamclawClient, ClientConfigError> = Layer.unwrap(Effect.gen(function*() {
    const read = Effect.gen(function*() {
      const url = yield* Config.option(Config.String("BEAMCLAW_URL"))
      const token = yield* Config.option(Config.Redacted("BEAMCLAW_TOKEN"))
      return { url: Option.getOrUndefined(url), token: Option.getOrUndefined(token) }
    })
    const { url, token } = yield* read.pipe(Effect.mapError((error) => new ClientConfigError({ message: `cannot read BEAMCLAW_URL / BEAMCLAW_TOKEN: ${error.message}` })))
    return BeamclawClient.layer({ url, token })
  }))
}

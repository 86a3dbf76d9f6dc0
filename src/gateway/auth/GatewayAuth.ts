/**
 * The GatewayAuth boundary: every way in (HTTP, the WebSocket protocol, RPC)
 * asks this one service whether a presented secret is good for a client
 * address. The Layer that implements it owns the token file, rate limits and
 * device pairing.
 */
import { Context, type Effect, Schema } from "effect"

export type AuthMode = "token" | "password" | "none"

export interface Principal {
  /** How the client proved itself. */
  readonly method: "token" | "password" | "none" | "device-token"
  readonly clientAddress: string
  /** Loopback clients get silent device approval, as OpenClaw does. */
  readonly loopback: boolean
}

export class AuthFailed extends Schema.TaggedError<AuthFailed>()("AuthFailed", {
  reason: Schema.Literals(["missing", "mismatch", "rate_limited", "not_allowed"]),
  message: Schema.String,
  retryAfterMs: Schema.optionalKey(Schema.Number)
}) {}

export interface PresentedCredentials {
  readonly token?: string | undefined
  readonly password?: string | undefined
}

export class GatewayAuth extends Context.Service<GatewayAuth, {
  readonly mode: Effect.Effect<AuthMode>
  /** Checks credentials presented from an address: constant-time, rate-limited per address. */
  readonly check: (presented: PresentedCredentials, clientAddress: string) => Effect.Effect<Principal, AuthFailed>
  /** `Authorization: Bearer <token or password>` on an HTTP request. */
  readonly checkBearer: (authorization: string | undefined, clientAddress: string) => Effect.Effect<Principal, AuthFailed>
}>()("beamclaw/gateway/auth/GatewayAuth") {}

export const isLoopbackAddress = (address: string): boolean =>
  address === "127.0.0.1" || address === "::1" || address === "::ffff:127.0.0.1" || address.startsWith("127.") || address === "localhost"

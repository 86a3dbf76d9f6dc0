/**
 * GatewayAuth over the live config: token or password compared in constant
 * time. (Token generation on first run, rate limiting and device pairing
 * build on this module.)
 */
import { timingSafeEqual } from "node:crypto"
import { Effect, Layer, Redacted } from "effect"
import { AppConfig } from "../../config/AppConfig.ts"
import { AuthFailed, GatewayAuth, isLoopbackAddress, type PresentedCredentials } from "./GatewayAuth.ts"

/** Constant-time comparison; lengths are compared through a hash-free pad so timing does not leak length either. */
export const safeEqual = (presented: string, expected: string): boolean => {
  const a = Buffer.from(presented, "utf8")
  const b = Buffer.from(expected, "utf8")
  const length = Math.max(a.length, b.length, 1)
  const left = Buffer.alloc(length)
  const right = Buffer.alloc(length)
  a.copy(left)
  b.copy(right)
  return timingSafeEqual(left, right) && a.length === b.length
}

export const layer = Layer.effect(GatewayAuth, Effect.gen(function*() {
  const config = yield* AppConfig
  const check = (presented: PresentedCredentials, clientAddress: string) =>
    Effect.gen(function*() {
      const auth = (yield* config.get).gateway.auth
      const loopback = isLoopbackAddress(clientAddress)
      if (auth.mode === "none") return { method: "none" as const, clientAddress, loopback }
      const expected = auth.mode === "token" ? auth.token : auth.password
      const given = auth.mode === "token" ? presented.token ?? presented.password : presented.password ?? presented.token
      if (expected === undefined) {
        return yield* new AuthFailed({ reason: "not_allowed", message: `gateway auth mode is ${auth.mode}, but no ${auth.mode} is configured (set gateway.auth.${auth.mode}${auth.mode === "token" ? " or BEAMCLAW_GATEWAY_TOKEN" : ""})` })
      }
      if (given === undefined || given === "") return yield* new AuthFailed({ reason: "missing", message: `gateway ${auth.mode} missing` })
      if (!safeEqual(given, Redacted.value(expected))) return yield* new AuthFailed({ reason: "mismatch", message: `gateway ${auth.mode} mismatch` })
      return { method: auth.mode, clientAddress, loopback }
    })
  return GatewayAuth.of({
    mode: config.get.pipe(Effect.map((c) => c.gateway.auth.mode)),
    check,
    checkBearer: (authorization, clientAddress) => {
      const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? "")
      const secret = match?.[1]?.trim()
      return check({ token: secret, password: secret }, clientAddress)
    }
  })
}))

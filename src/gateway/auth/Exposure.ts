/**
 * Whether the gateway may listen as configured: the exposure rules that stop
 * a boot (and refuse a listener move) before anything is bound. Kept apart
 * from the auth layer so the gateway can check them before it binds, without
 * loading the rest of auth.
 */
import { isIPv4 } from "node:net"
import { Schema } from "effect"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import { isLoopbackAddress } from "./GatewayAuth.ts"

/** The gateway cannot start (or stay) exposed like this. */
export class GatewayAuthConfigError extends Schema.TaggedError<GatewayAuthConfigError>()("GatewayAuthConfigError", {
  message: Schema.String
}) {}

type GatewayConfig = BeamclawConfig["gateway"]

/** Whether the configured bind address only accepts local connections. */
export const bindsLoopback = (gateway: GatewayConfig): boolean =>
  gateway.bind === "loopback" || (gateway.bind === "custom" && gateway.customBindHost !== undefined && isLoopbackAddress(gateway.customBindHost))

const describeBind = (gateway: GatewayConfig) =>
  gateway.bind === "lan" ? "lan (0.0.0.0)" : gateway.bind === "custom" ? `custom (${gateway.customBindHost ?? "no customBindHost"})` : gateway.bind

/**
 * What is wrong with the auth and exposure settings, or undefined. The same
 * rules hold at startup and for a config reload (a listener must not move to
 * an exposure that would have been refused at boot).
 */
export const exposureProblem = (config: BeamclawConfig): string | undefined => {
  const gateway = config.gateway
  if (gateway.bind === "custom") {
    const host = gateway.customBindHost?.trim()
    if (host === undefined || host === "") return "gateway.bind is custom, but gateway.customBindHost is not set (set it to the IPv4 address to listen on, or use gateway.bind loopback or lan)"
    if (!isIPv4(host)) return `gateway.bind is custom, so gateway.customBindHost must be an IPv4 address (got ${JSON.stringify(host)})`
  }
  const auth = gateway.auth
  if (auth.mode === "password" && auth.password === undefined) {
    return "gateway auth mode is password, but no password is configured (set gateway.auth.password, or use gateway.auth.mode token)"
  }
  if (auth.mode === "none" && !bindsLoopback(gateway)) {
    return `gateway.auth.mode is none, which is only allowed when the gateway binds to loopback, but gateway.bind is ${describeBind(gateway)}: anyone who can reach it could use the gateway. Set gateway.bind to loopback, or gateway.auth.mode to token (the default) or password`
  }
  return undefined
}

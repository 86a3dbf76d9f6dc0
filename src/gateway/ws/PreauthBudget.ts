/**
 * OpenClaw's pre-auth socket budget (`preauth-connection-budget.ts`): at most
 * `limit` WebSocket connections per client address that have not completed
 * `connect` yet. Over budget, the upgrade is refused with HTTP 503 "Too many
 * unauthenticated sockets" before the WebSocket handshake. A socket gives its
 * slot back once, when it is admitted (hello-ok) or when it goes away. One
 * Map of counts, entries deleted at zero so it cannot grow across addresses.
 * Loopback is not exempt, as in OpenClaw.
 */
import { normalizeAddress } from "../auth/GatewayAuth.ts"

/** OpenClaw's `DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP`. */
export const DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP = 32

/** The upgrade refusal's body, as OpenClaw writes it. */
export const OVER_BUDGET_MESSAGE = "Too many unauthenticated sockets"

/** Sockets whose address is unknown share one capped bucket instead of failing open. */
const UNKNOWN_ADDRESS_KEY = "\u0000unknown-client-address"

export interface PreauthBudget {
  readonly limit: number
  /** Takes a slot for the address; undefined when it is over budget, else the (idempotent) release. */
  readonly acquire: (clientAddress: string) => (() => void) | undefined
  /** Slots held by the address right now. */
  readonly held: (clientAddress: string) => number
}

export const make = (limit: number): PreauthBudget => {
  const counts = new Map<string, number>()
  const keyOf = (clientAddress: string) => normalizeAddress(clientAddress) || UNKNOWN_ADDRESS_KEY
  return {
    limit,
    acquire: (clientAddress) => {
      const key = keyOf(clientAddress)
      const next = (counts.get(key) ?? 0) + 1
      if (next > limit) return undefined
      counts.set(key, next)
      let released = false
      return () => {
        if (released) return
        released = true
        const current = counts.get(key) ?? 0
        if (current <= 1) counts.delete(key)
        else counts.set(key, current - 1)
      }
    },
    held: (clientAddress) => counts.get(keyOf(clientAddress)) ?? 0
  }
}

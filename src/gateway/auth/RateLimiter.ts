/**
 * Failed-auth rate limiting per client address, as OpenClaw's
 * `auth-rate-limit.ts`: a sliding window of failure times per
 * (scope, address); `maxAttempts` failures inside `windowMs` lock the
 * address out for `lockoutMs`. Loopback is exempt when `exemptLoopback`.
 * A success resets the address. Memory is bounded: expired entries are
 * pruned at most once a minute and whenever the table is full; when every
 * entry is a live lockout, new addresses are refused until one expires
 * (OpenClaw's overflow lock), so a flood cannot evict real lockouts.
 * Time comes from `Clock`, so TestClock drives it in tests.
 */
import { Clock, Effect } from "effect"
import { isLoopbackAddress, normalizeAddress } from "./GatewayAuth.ts"

export interface RateLimitPolicy {
  readonly maxAttempts: number
  readonly windowMs: number
  readonly lockoutMs: number
  readonly exemptLoopback: boolean
}

export const defaultPolicy: RateLimitPolicy = { maxAttempts: 10, windowMs: 60_000, lockoutMs: 300_000, exemptLoopback: true }

/** Separate buckets, as OpenClaw keeps shared-secret and device-token failures apart. */
export type RateLimitScope = "shared-secret" | "device-token" | "hook-auth"

export type RateLimitDecision =
  | { readonly allowed: true; readonly remaining: number }
  | { readonly allowed: false; readonly retryAfterMs: number }

export interface RateLimiter {
  /** Whether the address may try now. */
  readonly check: (scope: RateLimitScope, address: string) => Effect.Effect<RateLimitDecision>
  readonly recordFailure: (scope: RateLimitScope, address: string) => Effect.Effect<void>
  /** After a success. */
  readonly reset: (scope: RateLimitScope, address: string) => Effect.Effect<void>
  /** Tracked (scope, address) entries. */
  readonly size: Effect.Effect<number>
}

interface Entry {
  attempts: Array<number>
  lockedUntil: number | undefined
}

const PRUNE_INTERVAL_MS = 60_000
export const DEFAULT_MAX_ENTRIES = 10_000

/** The policy is read on every call, so a config edit applies at once. */
export const make = (
  policy: Effect.Effect<RateLimitPolicy>,
  options: { readonly maxEntries?: number | undefined } = {}
): RateLimiter => {
  const maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_MAX_ENTRIES)
  const entries = new Map<string, Entry>()
  let overflowLockedUntil: number | undefined
  let lastPrune = Number.NEGATIVE_INFINITY

  const keyOf = (scope: RateLimitScope, address: string) => {
    const normalized = normalizeAddress(address)
    return { key: `${scope}:${normalized === "" ? "unknown" : normalized}`, address: normalized }
  }

  const refresh = (entry: Entry, now: number, p: RateLimitPolicy) => {
    if (entry.lockedUntil !== undefined && now >= entry.lockedUntil) {
      entry.lockedUntil = undefined
      entry.attempts = []
    }
    const cutoff = now - p.windowMs
    entry.attempts = entry.attempts.filter((at) => at > cutoff)
  }

  const prune = (now: number, p: RateLimitPolicy) => {
    lastPrune = now
    for (const [key, entry] of entries) {
      if (entry.lockedUntil !== undefined && now < entry.lockedUntil) continue
      refresh(entry, now, p)
      if (entry.attempts.length === 0) entries.delete(key)
    }
    if (overflowLockedUntil !== undefined && (now >= overflowLockedUntil || entries.size < maxEntries)) overflowLockedUntil = undefined
  }

  const maybePrune = (now: number, p: RateLimitPolicy) => {
    if (now - lastPrune >= PRUNE_INTERVAL_MS) prune(now, p)
  }

  /** Makes room for one more entry; false when every entry is a live lockout. */
  const makeRoom = (now: number, p: RateLimitPolicy): boolean => {
    if (entries.size < maxEntries) return true
    prune(now, p)
    if (entries.size < maxEntries) return true
    for (const [key, entry] of entries) {
      if (entry.lockedUntil === undefined || now >= entry.lockedUntil) {
        entries.delete(key)
        return true
      }
    }
    return false
  }

  const exempt = (p: RateLimitPolicy, address: string) => p.exemptLoopback && isLoopbackAddress(address)

  const check = (scope: RateLimitScope, rawAddress: string) =>
    Effect.gen(function*() {
      const p = yield* policy
      const { address, key } = keyOf(scope, rawAddress)
      if (exempt(p, address)) return { allowed: true, remaining: p.maxAttempts } as const
      const now = yield* Clock.currentTimeMillis
      maybePrune(now, p)
      const entry = entries.get(key)
      if (entry === undefined) {
        if (overflowLockedUntil !== undefined && now < overflowLockedUntil && entries.size >= maxEntries) {
          return { allowed: false, retryAfterMs: overflowLockedUntil - now } as const
        }
        return { allowed: true, remaining: p.maxAttempts } as const
      }
      refresh(entry, now, p)
      // A lower maxAttempts from a config edit locks an address already over it.
      if (entry.lockedUntil === undefined && entry.attempts.length >= p.maxAttempts) entry.lockedUntil = now + p.lockoutMs
      if (entry.lockedUntil !== undefined && now < entry.lockedUntil) return { allowed: false, retryAfterMs: entry.lockedUntil - now } as const
      const remaining = Math.max(0, p.maxAttempts - entry.attempts.length)
      if (remaining > 0) return { allowed: true, remaining } as const
      return { allowed: false, retryAfterMs: Math.max(0, (entry.attempts[0] ?? now) + p.windowMs - now) } as const
    })

  const recordFailure = (scope: RateLimitScope, rawAddress: string) =>
    Effect.gen(function*() {
      const p = yield* policy
      const { address, key } = keyOf(scope, rawAddress)
      if (exempt(p, address)) return
      const now = yield* Clock.currentTimeMillis
      maybePrune(now, p)
      let entry = entries.get(key)
      if (entry === undefined) {
        if (!makeRoom(now, p)) {
          overflowLockedUntil = Math.max(overflowLockedUntil ?? 0, now + p.lockoutMs)
          return
        }
        entry = { attempts: [], lockedUntil: undefined }
        entries.set(key, entry)
      }
      if (entry.lockedUntil !== undefined && now < entry.lockedUntil) return
      refresh(entry, now, p)
      entry.attempts.push(now)
      if (entry.attempts.length >= p.maxAttempts) entry.lockedUntil = now + p.lockoutMs
    })

  return {
    check,
    recordFailure,
    reset: (scope, address) => Effect.sync(() => void entries.delete(keyOf(scope, address).key)),
    size: Effect.sync(() => entries.size)
  }
}

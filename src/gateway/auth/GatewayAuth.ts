/**
 * The GatewayAuth boundary: every way in (HTTP, the WebSocket protocol, RPC)
 * asks this one service whether a presented secret is good for a client
 * address. The Layer that implements it owns the token file, rate limits and
 * device pairing.
 */
import { timingSafeEqual } from "node:crypto"
import { Context, type Effect, Schema, type Stream } from "effect"
import type { DeviceTokenDenied } from "./DeviceTokenErrors.ts"

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

// ---------------------------------------------------------------------------
// Device identity and pairing (OpenClaw's `connect.params.device`)
// ---------------------------------------------------------------------------

/** `connect.params.device` as the client sent it. */
export interface DeviceIdentity {
  /** Hex SHA-256 of the raw 32-byte Ed25519 public key. */
  readonly id: string
  /** base64url of the raw 32 bytes, or a PEM `PUBLIC KEY`. */
  readonly publicKey: string
  /** base64url Ed25519 signature over the v3 (or v2) payload. */
  readonly signature: string
  /** The challenge's `ts`, in ms. */
  readonly signedAt: number
  readonly nonce?: string | undefined
}

/** What the connection knows besides the device block; every field here is part of the signed payload or the pairing decision. */
export interface DeviceContext {
  /** The nonce this connection sent in `connect.challenge`. */
  readonly expectedNonce: string
  readonly clientAddress: string
  /** True when `Forwarded`/`X-Forwarded-*`/`X-Real-IP` were present: a proxied loopback connection is not local. */
  readonly hasProxyHeaders?: boolean | undefined
  /** `connect.params.client.id` / `.mode` / `.platform` / `.deviceFamily` / `.displayName`. */
  readonly clientId: string
  readonly clientMode: string
  readonly platform?: string | undefined
  readonly deviceFamily?: string | undefined
  readonly displayName?: string | undefined
  /** `connect.params.role` (default `operator`) and `scopes` (default []). */
  readonly role: string
  readonly scopes: ReadonlyArray<string>
  /** What the client put in the signature's token field: `auth.token ?? auth.deviceToken ?? auth.bootstrapToken`. */
  readonly signatureToken?: string | undefined
  /** How the connection authenticated; a device-token connection is not silently granted wider scopes. */
  readonly authMethod?: Principal["method"] | undefined
}

/** OpenClaw's reason strings (`details.reason`) for a bad device block. */
export const DeviceAuthReason = Schema.Literals([
  "device-id-mismatch",
  "device-signature-stale",
  "device-nonce-missing",
  "device-nonce-mismatch",
  "device-signature",
  "device-public-key"
])
export type DeviceAuthReason = typeof DeviceAuthReason.Type

/** A device block that does not prove the key: answer INVALID_REQUEST with `details:{code, reason}` and close 1008. */
export class DeviceAuthFailed extends Schema.TaggedError<DeviceAuthFailed>()("DeviceAuthFailed", {
  reason: DeviceAuthReason,
  /** OpenClaw's `details.code`, e.g. `DEVICE_AUTH_NONCE_MISMATCH`. */
  code: Schema.String,
  message: Schema.String
}) {}

export const PairingReason = Schema.Literals(["not-paired", "role-upgrade", "scope-upgrade"])
export type PairingReason = typeof PairingReason.Type

/** The device must be approved first: answer NOT_PAIRED "pairing required" with `details:{code:"PAIRING_REQUIRED", requestId, reason}` and close 1008 "pairing required". */
export class PairingRequired extends Schema.TaggedError<PairingRequired>()("PairingRequired", {
  reason: PairingReason,
  requestId: Schema.String,
  deviceId: Schema.String,
  message: Schema.String
}) {}

export class PairingNotFound extends Schema.TaggedError<PairingNotFound>()("PairingNotFound", {
  id: Schema.String,
  message: Schema.String
}) {}

/** The pairing files could not be read or written. */
export class PairingStoreError extends Schema.TaggedError<PairingStoreError>()("PairingStoreError", {
  file: Schema.String,
  message: Schema.String
}) {}

export const DeviceToken = Schema.Struct({
  token: Schema.String,
  role: Schema.String,
  scopes: Schema.Array(Schema.String),
  /** When the (device, role) first got a token; kept across rotations, as OpenClaw. */
  createdAtMs: Schema.Number,
  /** When this token replaced an earlier one (`device.token.rotate`, or a reissue after a revoke). */
  rotatedAtMs: Schema.optionalKey(Schema.Number),
  /** Set by `device.token.revoke`: the entry stays for the record, but the token no longer authenticates. */
  revokedAtMs: Schema.optionalKey(Schema.Number)
})
export type DeviceToken = typeof DeviceToken.Type

/** One approved device, as kept in `<state>/devices/paired.json`. */
export const PairedDevice = Schema.Struct({
  deviceId: Schema.String,
  /** Canonical base64url of the raw key. */
  publicKey: Schema.String,
  displayName: Schema.optionalKey(Schema.String),
  platform: Schema.optionalKey(Schema.String),
  deviceFamily: Schema.optionalKey(Schema.String),
  clientId: Schema.optionalKey(Schema.String),
  clientMode: Schema.optionalKey(Schema.String),
  roles: Schema.Array(Schema.String),
  scopes: Schema.Array(Schema.String),
  remoteIp: Schema.optionalKey(Schema.String),
  /** Per role. */
  tokens: Schema.Record(Schema.String, DeviceToken),
  createdAtMs: Schema.Number,
  approvedAtMs: Schema.Number,
  /** `silent`: approved because it connected over loopback; `operator`: by `device.pair.approve`. */
  approvedVia: Schema.Literals(["silent", "operator"])
})
export type PairedDevice = typeof PairedDevice.Type

/** A pairing request waiting for an operator, as kept in `<state>/devices/pending.json`. */
export const PendingPairing = Schema.Struct({
  requestId: Schema.String,
  deviceId: Schema.String,
  publicKey: Schema.String,
  displayName: Schema.optionalKey(Schema.String),
  platform: Schema.optionalKey(Schema.String),
  deviceFamily: Schema.optionalKey(Schema.String),
  clientId: Schema.String,
  clientMode: Schema.String,
  role: Schema.String,
  roles: Schema.Array(Schema.String),
  scopes: Schema.Array(Schema.String),
  remoteIp: Schema.String,
  reason: PairingReason,
  /** True when the device is already paired and asks for more (a new role or scopes, or a new key). */
  isRepair: Schema.Boolean,
  silent: Schema.Boolean,
  /** Created (or last refreshed by a reconnect), ms. Requests expire 5 minutes after this. */
  ts: Schema.Number
})
export type PendingPairing = typeof PendingPairing.Type

/** A device that proved its key and is approved for the role and scopes it asked for. */
export interface DeviceApproved {
  readonly device: PairedDevice
  /** The payload form the signature matched. */
  readonly payloadVersion: "v2" | "v3"
  /** True when this connect paired (or upgraded) the device silently because it is local. */
  readonly silentlyApproved: boolean
  /**
   * The device token for (device, role), issued on first approval and reused after: `hello-ok.auth.deviceToken`.
   * Undefined when the connect authenticated with a device token: only `confirmDeviceToken`, given the token
   * presented, may hand one out then, so a rotation or revocation in between cannot leak or reissue one.
   */
  readonly deviceToken: DeviceToken | undefined
}

/** Broadcast these to operators holding `operator.pairing` (or `operator.admin`). */
export type PairingEvent =
  | { readonly event: "device.pair.requested"; readonly payload: PendingPairing }
  | {
    readonly event: "device.pair.resolved"
    readonly payload: { readonly requestId: string; readonly deviceId: string; readonly decision: "approved" | "rejected"; readonly ts: number }
  }

export interface DevicePairingList {
  readonly pending: ReadonlyArray<PendingPairing>
  readonly paired: ReadonlyArray<PairedDevice>
}

export interface DeviceTokenChange {
  readonly deviceId: string
  readonly role: string
  /** The caller's own scopes, for operator tokens: a caller cannot mint or revoke a token broader than itself. */
  readonly callerScopes?: ReadonlyArray<string> | undefined
}

/** `device.pair.*` operations, for the WebSocket methods (scope `operator.pairing`). */
export interface DevicePairing {
  readonly list: Effect.Effect<DevicePairingList>
  readonly approve: (requestId: string) => Effect.Effect<{ readonly requestId: string; readonly device: PairedDevice }, PairingNotFound | PairingStoreError>
  readonly reject: (requestId: string) => Effect.Effect<{ readonly requestId: string; readonly deviceId: string }, PairingNotFound | PairingStoreError>
  /** Forgets a paired device (and its tokens, and its pending requests). */
  readonly remove: (deviceId: string) => Effect.Effect<{ readonly deviceId: string }, PairingNotFound | PairingStoreError>
  /**
   * Replaces the token of (device, role) with a new one; the old one stops
   * authenticating at once. The role must be one the device was approved for;
   * `scopes` (default: the current token's, else the device's) must stay within
   * the device's approved scopes and, when `callerScopes` is given, within them too.
   */
  readonly rotateToken: (input: DeviceTokenChange & { readonly scopes?: ReadonlyArray<string> | undefined }) => Effect.Effect<DeviceToken, DeviceTokenDenied | PairingStoreError>
  /** Marks the token of (device, role) revoked; a connect presenting it fails as a device-token mismatch. */
  readonly revokeToken: (input: DeviceTokenChange) => Effect.Effect<DeviceToken, DeviceTokenDenied | PairingStoreError>
  /** Requests and resolutions as they happen. */
  readonly events: Stream.Stream<PairingEvent>
}

export class GatewayAuth extends Context.Service<GatewayAuth, {
  readonly mode: Effect.Effect<AuthMode>
  /**
   * Checks credentials presented from an address: constant-time, rate-limited
   * per address. With `deviceFallback` (a connect that also carries a device
   * token) a mismatch is not counted yet: the caller counts it with
   * `recordSharedSecretFailure` only if the device token fails too, as
   * OpenClaw, so a paired device reconnecting with its own token does not
   * lock itself out.
   */
  readonly check: (presented: PresentedCredentials, clientAddress: string, options?: { readonly deviceFallback?: boolean }) => Effect.Effect<Principal, AuthFailed>
  /** Counts a shared-secret mismatch whose counting `check` deferred (`deviceFallback`). */
  readonly recordSharedSecretFailure: (clientAddress: string) => Effect.Effect<void>
  /** `Authorization: Bearer <token or password>` on an HTTP request. */
  readonly checkBearer: (authorization: string | undefined, clientAddress: string) => Effect.Effect<Principal, AuthFailed>
  /**
   * OpenClaw's device-token fallback: when `check` fails and the connect
   * carries a device, `auth.deviceToken ?? auth.token` may be the token
   * issued to (device, role). Rate-limited in its own bucket.
   */
  readonly checkDeviceToken: (
    presented: { readonly deviceId: string; readonly role: string; readonly scopes: ReadonlyArray<string>; readonly token: string },
    clientAddress: string
  ) => Effect.Effect<Principal, AuthFailed>
  /**
   * The last step of a device-token connect, after `verifyDevice`: inside the
   * pairing store's lock, the presented token must still be the live,
   * unrevoked token of (device, role) covering `scopes`; it is returned as is
   * (never reissued). Otherwise a `mismatch`, as a stale token gets at
   * `checkDeviceToken`. Not rate-limited: `checkDeviceToken` already counted
   * this attempt, and losing a race to a rotation is not a guess.
   */
  readonly confirmDeviceToken: (
    presented: { readonly deviceId: string; readonly role: string; readonly scopes: ReadonlyArray<string>; readonly token: string }
  ) => Effect.Effect<DeviceToken, AuthFailed>
  /**
   * Verifies `connect.params.device` (id derived from the key, signedAt
   * within 2 minutes, the challenge nonce, an Ed25519 signature over the v3
   * or v2 payload), then the pairing: local devices are approved silently,
   * others get a pending request and `PairingRequired`.
   */
  readonly verifyDevice: (
    device: DeviceIdentity,
    context: DeviceContext
  ) => Effect.Effect<DeviceApproved, DeviceAuthFailed | PairingRequired | PairingStoreError>
  readonly pairing: DevicePairing
}>()("beamclaw/gateway/auth/GatewayAuth") {}

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i

/** `::ffff:1.2.3.4` → `1.2.3.4`, IPv6 lower-cased, a `%zone` dropped: one spelling per client for rate limits and locality. */
export const normalizeAddress = (address: string): string => {
  const trimmed = address.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1")
  const mapped = IPV4_MAPPED.exec(trimmed)
  if (mapped?.[1] !== undefined) return mapped[1]
  const zone = trimmed.indexOf("%")
  return zone === -1 ? trimmed : trimmed.slice(0, zone)
}

export const isLoopbackAddress = (address: string): boolean => {
  const normalized = normalizeAddress(address)
  return normalized === "::1" || normalized === "localhost" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(normalized)
}

/**
 * OpenClaw's `details.code` for a failed shared-secret check
 * (`AUTH_TOKEN_MISMATCH`, `AUTH_RATE_LIMITED`, ...), for WebSocket error frames.
 */
export const authFailureCode = (failure: AuthFailed, mode: AuthMode): string => {
  if (failure.reason === "rate_limited") return "AUTH_RATE_LIMITED"
  const secret = mode === "password" ? "PASSWORD" : "TOKEN"
  if (failure.reason === "missing") return `AUTH_${secret}_MISSING`
  if (failure.reason === "mismatch") return `AUTH_${secret}_MISMATCH`
  return mode === "none" ? "AUTH_UNAUTHORIZED" : `AUTH_${secret}_NOT_CONFIGURED`
}

/** OpenClaw's `details.code` for each device-auth reason. */
export const deviceAuthCode: Record<DeviceAuthReason, string> = {
  "device-id-mismatch": "DEVICE_AUTH_DEVICE_ID_MISMATCH",
  "device-signature-stale": "DEVICE_AUTH_SIGNATURE_EXPIRED",
  "device-nonce-missing": "DEVICE_AUTH_NONCE_REQUIRED",
  "device-nonce-mismatch": "DEVICE_AUTH_NONCE_MISMATCH",
  "device-signature": "DEVICE_AUTH_SIGNATURE_INVALID",
  "device-public-key": "DEVICE_AUTH_PUBLIC_KEY_INVALID"
}

/**
 * OpenClaw's `roleScopesAllow`: every requested scope is granted. For the
 * operator role `operator.admin` grants every `operator.*` scope and
 * `operator.write` also grants `operator.read` and `operator.talk`; other
 * roles need the exact `<role>.*` scope.
 */
export const scopesAllow = (role: string, requested: ReadonlyArray<string>, granted: ReadonlyArray<string>): boolean => {
  const allowed = granted.map((scope) => scope.trim())
  const prefix = `${role.trim()}.`
  return requested.every((raw) => {
    const scope = raw.trim()
    if (scope === "") return true
    if (role.trim() !== "operator") return scope.startsWith(prefix) && allowed.includes(scope)
    if (!scope.startsWith("operator.")) return false
    return allowed.includes(scope) ||
      allowed.includes("operator.admin") ||
      ((scope === "operator.read" || scope === "operator.talk" || scope === "operator.sessions.read" || scope === "operator.sessions.write") && allowed.includes("operator.write")) ||
      (scope === "operator.sessions.read" && (allowed.includes("operator.read") || allowed.includes("operator.sessions.write")))
  })
}

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

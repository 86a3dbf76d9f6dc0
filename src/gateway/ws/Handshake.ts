/**
 * The `connect` request, checked in OpenClaw's order (message-handler.ts):
 * protocol range, role, shared-secret auth, device identity (signature over
 * the challenge nonce), then pairing. Loopback devices are approved
 * silently; a remote device needs pairing, which answers NOT_PAIRED until
 * the pairing store exists.
 */
import { createHash, createPublicKey, verify } from "node:crypto"
import { Effect, Result } from "effect"
import { type AuthFailed, GatewayAuth, isLoopbackAddress, type Principal } from "../auth/GatewayAuth.ts"
import { type ConnectParams, type DeviceIdentity, type ErrorShape, MIN_PROBE_PROTOCOL_VERSION, PROTOCOL_VERSION } from "./Frames.ts"
import { parseRole, type Role } from "./Scopes.ts"

export interface Rejection {
  readonly error: ErrorShape
  readonly closeCode: number
  readonly closeReason: string
}

export interface Admitted {
  readonly protocol: number
  readonly role: Role
  readonly scopes: ReadonlyArray<string>
  readonly principal: Principal
  readonly deviceId: string | undefined
}

const reject = (code: ErrorShape["code"], message: string, options: { readonly details?: unknown; readonly closeCode?: number; readonly closeReason?: string; readonly retryable?: boolean; readonly retryAfterMs?: number } = {}): Rejection => ({
  error: {
    code,
    message,
    ...(options.details === undefined ? {} : { details: options.details }),
    ...(options.retryable === undefined ? {} : { retryable: options.retryable }),
    ...(options.retryAfterMs === undefined ? {} : { retryAfterMs: options.retryAfterMs })
  },
  closeCode: options.closeCode ?? 1008,
  closeReason: options.closeReason ?? message
})

/** The protocol both sides speak, or undefined when the client's range excludes every version we accept. */
export const negotiateProtocol = (params: ConnectParams, role: string | undefined): number | undefined => {
  const { minProtocol, maxProtocol } = params
  if (maxProtocol >= PROTOCOL_VERSION && minProtocol <= PROTOCOL_VERSION) return PROTOCOL_VERSION
  const probe = params.client.mode === "probe" && maxProtocol >= MIN_PROBE_PROTOCOL_VERSION && minProtocol <= PROTOCOL_VERSION
  const node = role === "node" && params.client.mode === "node" && maxProtocol >= 3 && minProtocol <= 3
  return probe || node ? Math.min(maxProtocol, PROTOCOL_VERSION) : undefined
}

const authDetailCode = (mode: string, failure: AuthFailed): string => {
  const secret = mode === "password" ? "PASSWORD" : "TOKEN"
  switch (failure.reason) {
    case "missing":
      return `AUTH_${secret}_MISSING`
    case "mismatch":
      return `AUTH_${secret}_MISMATCH`
    case "not_allowed":
      return `AUTH_${secret}_NOT_CONFIGURED`
    case "rate_limited":
      return "AUTH_RATE_LIMITED"
  }
}

const recommendedNextStep = (failure: AuthFailed): string =>
  failure.reason === "rate_limited" ? "wait_then_retry" : failure.reason === "not_allowed" ? "review_auth_configuration" : "update_auth_credentials"

// ---------------------------------------------------------------------------
// Device identity (Ed25519 over the pipe-joined payload; openclaw-gateway.md §2.6)
// ---------------------------------------------------------------------------

const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex")
const SIGNATURE_SKEW_MS = 10 * 60_000

const base64UrlDecode = (text: string): Buffer => Buffer.from(text.replace(/-/g, "+").replace(/_/g, "/"), "base64")

/** The raw 32-byte key from base64url, or from PEM (normalised as OpenClaw does). */
export const rawPublicKey = (publicKey: string): Buffer | undefined => {
  try {
    if (publicKey.includes("BEGIN PUBLIC KEY")) {
      const der = createPublicKey(publicKey).export({ format: "der", type: "spki" })
      return der.length === 44 && der.subarray(0, 12).equals(ED25519_SPKI_PREFIX) ? der.subarray(12) : undefined
    }
    const raw = base64UrlDecode(publicKey)
    return raw.length === 32 ? raw : undefined
  } catch {
    return undefined
  }
}

export const deviceIdOf = (raw: Buffer): string => createHash("sha256").update(raw).digest("hex")

const normalizeMeta = (value: string | undefined): string => (value ?? "").trim().replace(/[A-Z]/g, (c) => c.toLowerCase())

export interface DevicePayloadInput {
  readonly deviceId: string
  readonly clientId: string
  readonly clientMode: string
  readonly role: string
  readonly scopes: ReadonlyArray<string>
  readonly signedAtMs: number
  readonly token: string | null
  readonly nonce: string
  readonly platform?: string | undefined
  readonly deviceFamily?: string | undefined
}

export const devicePayloadV3 = (input: DevicePayloadInput): string =>
  ["v3", input.deviceId, input.clientId, input.clientMode, input.role, input.scopes.join(","), String(input.signedAtMs), input.token ?? "", input.nonce, normalizeMeta(input.platform), normalizeMeta(input.deviceFamily)].join("|")

export const devicePayloadV2 = (input: DevicePayloadInput): string =>
  ["v2", input.deviceId, input.clientId, input.clientMode, input.role, input.scopes.join(","), String(input.signedAtMs), input.token ?? "", input.nonce].join("|")

const devicePayloadV1 = (input: DevicePayloadInput): string =>
  ["v1", input.deviceId, input.clientId, input.clientMode, input.role, input.scopes.join(","), String(input.signedAtMs), input.token ?? ""].join("|")

const verifySignature = (raw: Buffer, payload: string, signature: string): boolean => {
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" })
    return verify(null, Buffer.from(payload, "utf8"), key, base64UrlDecode(signature))
  } catch {
    return false
  }
}

const deviceFailure = (message: string, code: string): Rejection => reject("INVALID_REQUEST", message, { details: { code } })

/** Checks a presented device identity against the challenge; the device id on success. */
export const verifyDevice = (
  device: DeviceIdentity,
  params: ConnectParams,
  context: { readonly role: Role; readonly scopes: ReadonlyArray<string>; readonly nonce: string; readonly loopback: boolean; readonly now: number }
): Result.Result<string, Rejection> => {
  const raw = rawPublicKey(device.publicKey)
  if (raw === undefined) return Result.fail(deviceFailure("device public key invalid", "DEVICE_AUTH_PUBLIC_KEY_INVALID"))
  if (deviceIdOf(raw) !== device.id) return Result.fail(deviceFailure("device identity mismatch", "DEVICE_AUTH_DEVICE_ID_MISMATCH"))
  if (Math.abs(context.now - device.signedAt) > SIGNATURE_SKEW_MS) return Result.fail(deviceFailure("device signature expired", "DEVICE_AUTH_SIGNATURE_EXPIRED"))
  if (device.nonce === undefined || device.nonce === "") {
    if (!context.loopback) return Result.fail(deviceFailure("device nonce required", "DEVICE_AUTH_NONCE_REQUIRED"))
  } else if (device.nonce !== context.nonce) {
    return Result.fail(deviceFailure("device nonce mismatch", "DEVICE_AUTH_NONCE_MISMATCH"))
  }
  const input: DevicePayloadInput = {
    deviceId: device.id,
    clientId: params.client.id,
    clientMode: params.client.mode,
    role: context.role,
    scopes: context.scopes,
    signedAtMs: device.signedAt,
    token: params.auth?.token ?? params.auth?.deviceToken ?? params.auth?.bootstrapToken ?? null,
    nonce: device.nonce ?? "",
    platform: params.client.platform,
    deviceFamily: params.client.deviceFamily
  }
  const payloads = device.nonce === undefined || device.nonce === "" ? [devicePayloadV1(input)] : [devicePayloadV3(input), devicePayloadV2(input)]
  if (!payloads.some((payload) => verifySignature(raw, payload, device.signature))) {
    return Result.fail(deviceFailure("device signature invalid", "DEVICE_AUTH_SIGNATURE_INVALID"))
  }
  return Result.succeed(device.id)
}

// ---------------------------------------------------------------------------
// The whole admission
// ---------------------------------------------------------------------------

export const admit = (params: ConnectParams, context: { readonly nonce: string; readonly clientAddress: string }) =>
  Effect.gen(function*() {
    const protocol = negotiateProtocol(params, params.role)
    if (protocol === undefined) {
      return yield* Effect.fail(reject("INVALID_REQUEST", "protocol mismatch", {
        details: {
          code: "PROTOCOL_MISMATCH",
          clientMinProtocol: params.minProtocol,
          clientMaxProtocol: params.maxProtocol,
          expectedProtocol: PROTOCOL_VERSION,
          minimumProbeProtocol: MIN_PROBE_PROTOCOL_VERSION
        },
        closeCode: 1002
      }))
    }
    const role = parseRole(params.role)
    if (role === undefined) return yield* Effect.fail(reject("INVALID_REQUEST", "invalid role"))
    let scopes: ReadonlyArray<string> = params.scopes ?? []

    const auth = yield* GatewayAuth
    const mode = yield* auth.mode
    const principal = yield* auth.check({ token: params.auth?.token, password: params.auth?.password }, context.clientAddress).pipe(
      Effect.mapError((failure) => {
        const message = `unauthorized: ${failure.message}`
        return reject("INVALID_REQUEST", message, {
          details: { code: authDetailCode(mode, failure), authReason: failure.reason, canRetryWithDeviceToken: false, recommendedNextStep: recommendedNextStep(failure) },
          ...(failure.reason === "rate_limited" ? { retryable: true, ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }) } : {})
        })
      })
    )
    const loopback = principal.loopback && isLoopbackAddress(context.clientAddress)
    const sharedSecret = principal.method === "token" || principal.method === "password"

    let deviceId: string | undefined
    if (params.device !== undefined) {
      const verified = verifyDevice(params.device, params, { role, scopes, nonce: context.nonce, loopback, now: Date.now() })
      if (Result.isFailure(verified)) return yield* Effect.fail(verified.failure)
      deviceId = verified.success
      if (!loopback) {
        // Loopback devices are approved silently; anything else waits for an operator's approval.
        return yield* Effect.fail(reject("NOT_PAIRED", "pairing required", {
          details: { code: "PAIRING_REQUIRED", reason: "not-paired", deviceId, requestedRole: role, requestedScopes: scopes },
          closeReason: "pairing required"
        }))
      }
    } else {
      const localTrusted = loopback && (
        (params.client.id === "cli" && params.client.mode === "cli") ||
        (params.client.id === "gateway-client" && params.client.mode === "backend")
      )
      const allowed = role === "operator" && (sharedSecret || (principal.method === "none" && loopback))
      if (!allowed) {
        return yield* Effect.fail(reject("NOT_PAIRED", "device identity required", { details: { code: "DEVICE_IDENTITY_REQUIRED" } }))
      }
      // A shared secret without a device keeps its scopes only for the local CLI and backend, as OpenClaw.
      if (!localTrusted && principal.method !== "none") scopes = []
    }
    const admitted: Admitted = { protocol, role, scopes, principal, deviceId }
    return admitted
  })

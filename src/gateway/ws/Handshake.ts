/**
 * The `connect` request, checked in OpenClaw's order (message-handler.ts):
 * protocol range, role, shared-secret auth (falling back to a device token),
 * then the device identity and its pairing, both decided by GatewayAuth.
 * Loopback devices are approved silently; any other device (a proxied
 * loopback connection counts as remote) waits for an operator's approval.
 */
import { Effect } from "effect"
import {
  type AuthFailed,
  authFailureCode,
  type AuthMode,
  type DeviceToken,
  GatewayAuth,
  isLoopbackAddress,
  type Principal
} from "../auth/GatewayAuth.ts"
import { type ConnectParams, type ErrorShape, MIN_PROBE_PROTOCOL_VERSION, PROTOCOL_VERSION } from "./Frames.ts"
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
  /** True for a loopback connection without proxy headers. */
  readonly local: boolean
  readonly deviceId: string | undefined
  /** Issued (or reused) for an approved device: `hello-ok.auth.deviceToken`. */
  readonly deviceToken: DeviceToken | undefined
}

export interface HandshakeContext {
  /** The nonce sent in this connection's `connect.challenge`. */
  readonly nonce: string
  readonly clientAddress: string
  /** `Forwarded` / `X-Forwarded-*` / `X-Real-IP` on the upgrade request. */
  readonly hasProxyHeaders: boolean
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

const recommendedNextStep = (failure: AuthFailed): string =>
  failure.reason === "rate_limited" ? "wait_then_retry" : failure.reason === "not_allowed" ? "review_auth_configuration" : "update_auth_credentials"

/** A failed shared-secret check, or a failed device-token fallback (`deviceTokenTried`), as OpenClaw's connect error. */
const authRejection = (mode: AuthMode, failure: AuthFailed, deviceTokenTried: boolean): Rejection => {
  const code = !deviceTokenTried || failure.reason === "rate_limited"
    ? authFailureCode(failure, mode)
    : failure.reason === "not_allowed"
    ? "AUTH_SCOPE_MISMATCH"
    : "AUTH_DEVICE_TOKEN_MISMATCH"
  return reject("INVALID_REQUEST", `unauthorized: ${failure.message}`, {
    details: { code, authReason: failure.reason, canRetryWithDeviceToken: false, recommendedNextStep: recommendedNextStep(failure) },
    ...(failure.reason === "rate_limited" ? { retryable: true, ...(failure.retryAfterMs === undefined ? {} : { retryAfterMs: failure.retryAfterMs }) } : {})
  })
}

export const admit = (params: ConnectParams, context: HandshakeContext) =>
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
    const device = params.device

    const auth = yield* GatewayAuth
    const mode = yield* auth.mode
    const deviceTokenPresented = params.auth?.deviceToken ?? params.auth?.token
    const deviceFallback = device !== undefined && deviceTokenPresented !== undefined && deviceTokenPresented !== ""
    const principal = yield* auth.check({ token: params.auth?.token, password: params.auth?.password }, context.clientAddress, { deviceFallback }).pipe(
      Effect.catch((failure) =>
        // OpenClaw's fallback: a paired device may present its own token instead of the shared secret. The shared
        // secret's mismatch counts only if the device token fails too, and its lockout does not stop the device
        // token (rate-limited in its own bucket).
        !deviceFallback || device === undefined || deviceTokenPresented === undefined
          ? Effect.fail(authRejection(mode, failure, false))
          : auth.checkDeviceToken({ deviceId: device.id, role, scopes, token: deviceTokenPresented }, context.clientAddress).pipe(
            Effect.tapError(() => failure.reason === "mismatch" ? auth.recordSharedSecretFailure(context.clientAddress) : Effect.void),
            Effect.mapError((deviceFailure) => authRejection(mode, deviceFailure, true))
          )
      )
    )
    const local = isLoopbackAddress(context.clientAddress) && !context.hasProxyHeaders
    const sharedSecret = principal.method === "token" || principal.method === "password"

    if (device !== undefined) {
      const approved = yield* auth.verifyDevice(device, {
        expectedNonce: context.nonce,
        clientAddress: context.clientAddress,
        hasProxyHeaders: context.hasProxyHeaders,
        clientId: params.client.id,
        clientMode: params.client.mode,
        platform: params.client.platform,
        deviceFamily: params.client.deviceFamily,
        displayName: params.client.displayName,
        role,
        scopes,
        signatureToken: params.auth?.token ?? params.auth?.deviceToken ?? params.auth?.bootstrapToken,
        authMethod: principal.method
      }).pipe(
        Effect.mapError((failure) => {
          switch (failure._tag) {
            case "DeviceAuthFailed":
              return reject("INVALID_REQUEST", failure.message, { details: { code: failure.code, reason: failure.reason } })
            case "PairingRequired":
              return reject("NOT_PAIRED", "pairing required", {
                details: { code: "PAIRING_REQUIRED", requestId: failure.requestId, reason: failure.reason, deviceId: failure.deviceId }
              })
            case "PairingStoreError":
              return reject("UNAVAILABLE", `device pairing is unavailable: ${failure.message}`, { closeCode: 1011, closeReason: "device pairing unavailable" })
          }
        })
      )
      const admitted: Admitted = { protocol, role, scopes, principal, local, deviceId: device.id, deviceToken: approved.deviceToken }
      return admitted
    }

    const localTrusted = local && (
      (params.client.id === "cli" && params.client.mode === "cli") ||
      (params.client.id === "gateway-client" && params.client.mode === "backend")
    )
    const allowed = role === "operator" && (sharedSecret || (principal.method === "none" && local))
    if (!allowed) {
      return yield* Effect.fail(reject("NOT_PAIRED", "device identity required", { details: { code: "DEVICE_IDENTITY_REQUIRED" } }))
    }
    // A shared secret without a device keeps its scopes only for the local CLI and backend, as OpenClaw.
    if (!localTrusted && principal.method !== "none") scopes = []
    const admitted: Admitted = { protocol, role, scopes, principal, local, deviceId: undefined, deviceToken: undefined }
    return admitted
  })

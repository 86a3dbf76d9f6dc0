/**
 * device.pair.list / approve / reject / remove and device.token.rotate /
 * revoke (scope operator.pairing), over GatewayAuth's pairing store. Device
 * tokens never leave the gateway through the pairing methods: a paired device
 * shows which roles hold a token and their scopes, not the token. A rotated
 * token comes back only to the device itself, authenticated with the token
 * being replaced (OpenClaw's in-band delivery). Without operator.admin, a
 * caller manages only operator-role grants within its own scopes, and a
 * device-token session only its own device, as OpenClaw's device authz.
 */
import { Effect, Schema } from "effect"
import type { DeviceTokenDenied } from "../../auth/DeviceTokenErrors.ts"
import { type DeviceTokenChange, GatewayAuth, type PairedDevice, scopesAllow } from "../../auth/GatewayAuth.ts"
import { denial } from "../../auth/PairingStore.ts"
import { invalidRequest, type MethodError, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler, type MethodContext, NonEmptyString } from "./Method.ts"

/** A paired device as clients see it: token metadata without the secret. */
export const redactDevice = (device: PairedDevice) => {
  const { tokens, ...rest } = device
  return {
    ...rest,
    tokens: Object.values(tokens).map((token) => ({
      role: token.role,
      scopes: token.scopes,
      createdAtMs: token.createdAtMs,
      ...(token.rotatedAtMs === undefined ? {} : { rotatedAtMs: token.rotatedAtMs }),
      ...(token.revokedAtMs === undefined ? {} : { revokedAtMs: token.revokedAtMs })
    }))
  }
}

const pairingError = (error: { readonly _tag: "PairingNotFound" | "PairingStoreError"; readonly message: string }) =>
  error._tag === "PairingNotFound" ? invalidRequest(error.message) : unavailable(error.message)

/**
 * Who is asking, as OpenClaw's device-session authz sees it: a session that
 * authenticated with a device token (not the shared secret) acts for that
 * device only, unless it holds operator.admin.
 */
const sessionAuthz = (context: MethodContext) => ({
  admin: context.scopes.includes("operator.admin"),
  callerDeviceId: context.deviceTokenAuth ? context.deviceId : undefined
})

const nonOperatorRole = (roles: ReadonlyArray<string>) => roles.some((role) => role.trim() !== "" && role.trim() !== "operator")

type PairingDenyReason = "unknown-request" | "device-ownership-mismatch" | "role-management-requires-admin" | "caller-missing-scope"

/** OpenClaw answers with one generic message per action; the reason rides in `details` (and the log). */
const pairingDenied = (message: string, reason: PairingDenyReason, target: Record<string, string>) =>
  Effect.logWarning(`${message} ${Object.entries(target).map(([key, value]) => `${key}=${value}`).join(" ")} reason=${reason}`).pipe(
    Effect.andThen(Effect.fail(invalidRequest(message, { reason, ...target })))
  )

const APPROVAL_DENIED = "device pairing approval denied"
const REJECTION_DENIED = "device pairing rejection denied"
const REMOVAL_DENIED = "device pairing removal denied"

const pendingRequest = (requestId: string) =>
  Effect.gen(function*() {
    const { pending } = yield* (yield* GatewayAuth).pairing.list
    return pending.find((request) => request.requestId === requestId)
  })

const list: Handler = (params, context) =>
  Effect.gen(function*() {
    yield* decodeParams("device.pair.list", Schema.Struct({}), params)
    const { pending, paired } = yield* (yield* GatewayAuth).pairing.list
    // A device-token session sees its own device only, as OpenClaw.
    const { admin, callerDeviceId } = sessionAuthz(context)
    const visible = (deviceId: string) => admin || callerDeviceId === undefined || deviceId === callerDeviceId
    return { pending: pending.filter((request) => visible(request.deviceId)), paired: paired.filter((device) => visible(device.deviceId)).map(redactDevice) }
  })

const RequestParams = Schema.Struct({ requestId: NonEmptyString })

/**
 * Without operator.admin, an approval stays within the caller: its own device
 * (device-token sessions), the operator role only, and no scope the caller
 * does not hold itself, so operator.pairing cannot mint operator.admin. A
 * request's role and scopes are fixed for its id, so checking before
 * approving leaves no gap.
 */
const approve: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.approve", RequestParams, params)
    const { admin, callerDeviceId } = sessionAuthz(context)
    if (!admin) {
      const request = yield* pendingRequest(decoded.requestId)
      const target = { requestId: decoded.requestId }
      if (request === undefined) return yield* pairingDenied(APPROVAL_DENIED, "unknown-request", target)
      if (callerDeviceId !== undefined && request.deviceId !== callerDeviceId) return yield* pairingDenied(APPROVAL_DENIED, "device-ownership-mismatch", target)
      if (nonOperatorRole([request.role, ...request.roles])) return yield* pairingDenied(APPROVAL_DENIED, "role-management-requires-admin", target)
      const missing = request.scopes.find((scope) => !scopesAllow(request.role, [scope], context.scopes))
      if (missing !== undefined) return yield* pairingDenied(APPROVAL_DENIED, "caller-missing-scope", { ...target, scope: missing })
    }
    const { requestId, device } = yield* (yield* GatewayAuth).pairing.approve(decoded.requestId).pipe(Effect.mapError(pairingError))
    return { requestId, device: redactDevice(device) }
  })

const reject: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.reject", RequestParams, params)
    const { admin, callerDeviceId } = sessionAuthz(context)
    if (!admin && callerDeviceId !== undefined) {
      const request = yield* pendingRequest(decoded.requestId)
      const target = { requestId: decoded.requestId }
      if (request === undefined) return yield* pairingDenied(REJECTION_DENIED, "unknown-request", target)
      if (request.deviceId !== callerDeviceId) return yield* pairingDenied(REJECTION_DENIED, "device-ownership-mismatch", target)
    }
    return yield* (yield* GatewayAuth).pairing.reject(decoded.requestId).pipe(Effect.mapError(pairingError))
  })

/**
 * OpenClaw closes the connections of a removed device, and those of a device
 * in the role whose token changed, with 4001 "device removed".
 */
const DEVICE_REMOVED_CLOSE_CODE = 4001
const DEVICE_REMOVED_CLOSE_REASON = "device removed"

const remove: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.remove", Schema.Struct({ deviceId: NonEmptyString }), params)
    const auth = yield* GatewayAuth
    const { admin, callerDeviceId } = sessionAuthz(context)
    if (!admin && callerDeviceId !== undefined) {
      const target = { deviceId: decoded.deviceId }
      if (decoded.deviceId.trim() !== callerDeviceId) return yield* pairingDenied(REMOVAL_DENIED, "device-ownership-mismatch", target)
      const paired = (yield* auth.pairing.list).paired.find((device) => device.deviceId === callerDeviceId)
      if (paired !== undefined && nonOperatorRole([...paired.roles, ...Object.values(paired.tokens).map((token) => token.role)])) {
        return yield* pairingDenied(REMOVAL_DENIED, "role-management-requires-admin", target)
      }
    }
    const removed = yield* auth.pairing.remove(decoded.deviceId).pipe(Effect.mapError(pairingError))
    // Its open connections were admitted on the approval just withdrawn. They go after this answer, as
    // OpenClaw's, so a device removing itself still hears that it worked.
    context.afterResponse(() => context.hub.closeDevice(removed.deviceId, DEVICE_REMOVED_CLOSE_CODE, DEVICE_REMOVED_CLOSE_REASON))
    return removed
  })

const TokenParams = { deviceId: NonEmptyString, role: NonEmptyString }
const RotateParams = Schema.Struct({ ...TokenParams, scopes: Schema.optionalKey(Schema.Array(NonEmptyString)) })
const RevokeParams = Schema.Struct(TokenParams)

/**
 * OpenClaw's device-management authorization: a session authenticated with a
 * device token manages only its own device unless it holds operator.admin,
 * and tokens of roles other than operator need operator.admin. Operator
 * tokens are further bounded by the caller's own scopes (in the store).
 */
const authorize = (
  context: MethodContext,
  deviceId: string,
  role: string
): Effect.Effect<{ readonly change: DeviceTokenChange; readonly selfRotation: boolean }, DeviceTokenDenied> => {
  const { admin, callerDeviceId } = sessionAuthz(context)
  const change = { deviceId, role, callerScopes: role === "operator" ? context.scopes : undefined }
  if (!admin && callerDeviceId !== undefined && callerDeviceId !== deviceId) return Effect.fail(denial(change, "device-ownership-mismatch"))
  if (!admin && role !== "operator") return Effect.fail(denial(change, "role-management-requires-admin"))
  return Effect.succeed({ change, selfRotation: callerDeviceId !== undefined && callerDeviceId === deviceId })
}

/** OpenClaw answers every refusal with the same message; the reason and target ride in `details`. */
const tokenDenied = (verb: "rotation" | "revocation") => (error: DeviceTokenDenied | { readonly _tag: "PairingStoreError"; readonly message: string }): Effect.Effect<never, MethodError> =>
  Effect.gen(function*() {
    if (error._tag === "PairingStoreError") return yield* Effect.fail(unavailable(error.message))
    yield* Effect.logWarning(`device token ${verb} denied device=${error.deviceId} role=${error.role} reason=${error.reason}${error.scope === undefined ? "" : ` scope=${error.scope}`}`)
    return yield* Effect.fail(invalidRequest(`device token ${verb} denied`, {
      reason: error.reason,
      deviceId: error.deviceId,
      role: error.role,
      ...(error.scope === undefined ? {} : { scope: error.scope }),
      detail: error.message
    }))
  })

const rotate: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.token.rotate", RotateParams, params)
    const deviceId = decoded.deviceId.trim()
    const role = decoded.role.trim()
    const auth = yield* GatewayAuth
    const result = yield* authorize(context, deviceId, role).pipe(
      Effect.flatMap(({ change, selfRotation }) =>
        auth.pairing.rotateToken({ ...change, ...(decoded.scopes === undefined ? {} : { scopes: decoded.scopes }) }).pipe(
          Effect.map((token) => ({ token, selfRotation }))
        )
      ),
      Effect.catch(tokenDenied("rotation"))
    )
    const { token, selfRotation } = result
    yield* Effect.logInfo(`device token rotated device=${deviceId} role=${token.role} scopes=${token.scopes.join(",")}`)
    // Connections admitted in this role (with the old token or the shared secret) go, after this answer.
    context.afterResponse(() => context.hub.closeDevice(deviceId, DEVICE_REMOVED_CLOSE_CODE, DEVICE_REMOVED_CLOSE_REASON, token.role))
    return {
      deviceId,
      role: token.role,
      ...(selfRotation ? { token: token.token } : {}),
      scopes: token.scopes,
      rotatedAtMs: token.rotatedAtMs ?? token.createdAtMs,
      tokenDelivery: selfRotation ? "in-band" : "withheld-cross-device"
    }
  })

const revoke: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.token.revoke", RevokeParams, params)
    const deviceId = decoded.deviceId.trim()
    const role = decoded.role.trim()
    const auth = yield* GatewayAuth
    const token = yield* authorize(context, deviceId, role).pipe(
      Effect.flatMap(({ change }) => auth.pairing.revokeToken(change)),
      Effect.catch(tokenDenied("revocation"))
    )
    yield* Effect.logInfo(`device token revoked device=${deviceId} role=${token.role}`)
    context.afterResponse(() => context.hub.closeDevice(deviceId, DEVICE_REMOVED_CLOSE_CODE, DEVICE_REMOVED_CLOSE_REASON, token.role))
    return { deviceId, role: token.role, revokedAtMs: token.revokedAtMs }
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "device.pair.list": list,
  "device.pair.approve": approve,
  "device.pair.reject": reject,
  "device.pair.remove": remove,
  "device.token.rotate": rotate,
  "device.token.revoke": revoke
})

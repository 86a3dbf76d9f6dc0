/**
 * device.pair.list / approve / reject / remove (scope operator.pairing),
 * over GatewayAuth's pairing store. Device tokens never leave the gateway
 * through these methods: a paired device shows which roles hold a token and
 * their scopes, not the token.
 */
import { Effect, Schema } from "effect"
import { GatewayAuth, type PairedDevice } from "../../auth/GatewayAuth.ts"
import { invalidRequest, unavailable } from "../Frames.ts"
import type { Hub } from "../Hub.ts"
import { decodeParams, type Handler, NonEmptyString } from "./Method.ts"

/** A paired device as clients see it: token metadata without the secret. */
export const redactDevice = (device: PairedDevice) => {
  const { tokens, ...rest } = device
  return {
    ...rest,
    tokens: Object.values(tokens).map((token) => ({ role: token.role, scopes: token.scopes, createdAtMs: token.createdAtMs }))
  }
}

const pairingError = (error: { readonly _tag: "PairingNotFound" | "PairingStoreError"; readonly message: string }) =>
  error._tag === "PairingNotFound" ? invalidRequest(error.message) : unavailable(error.message)

const list: Handler = (params) =>
  Effect.gen(function*() {
    yield* decodeParams("device.pair.list", Schema.Struct({}), params)
    const { pending, paired } = yield* (yield* GatewayAuth).pairing.list
    return { pending, paired: paired.map(redactDevice) }
  })

const RequestParams = Schema.Struct({ requestId: NonEmptyString })

const approve: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.approve", RequestParams, params)
    const { requestId, device } = yield* (yield* GatewayAuth).pairing.approve(decoded.requestId).pipe(Effect.mapError(pairingError))
    return { requestId, device: redactDevice(device) }
  })

const reject: Handler = (params) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.reject", RequestParams, params)
    return yield* (yield* GatewayAuth).pairing.reject(decoded.requestId).pipe(Effect.mapError(pairingError))
  })

const remove: Handler = (params, context) =>
  Effect.gen(function*() {
    const decoded = yield* decodeParams("device.pair.remove", Schema.Struct({ deviceId: NonEmptyString }), params)
    const removed = yield* (yield* GatewayAuth).pairing.remove(decoded.deviceId).pipe(Effect.mapError(pairingError))
    // Its open connections were admitted on the approval just withdrawn.
    context.hub.closeDevice(removed.deviceId, 1008, "device removed")
    return removed
  })

export const handlers = (_hub: Hub): Record<string, Handler> => ({
  "device.pair.list": list,
  "device.pair.approve": approve,
  "device.pair.reject": reject,
  "device.pair.remove": remove
})

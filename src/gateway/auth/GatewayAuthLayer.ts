/**
 * GatewayAuth over the live config. Building it is the gateway's startup
 * check for exposure: password mode without a password, `none` off
 * loopback, and `custom` bind without a usable host all stop the boot with
 * one clear message. Token mode without a configured token uses the token
 * generated on first run in `<state>/gateway.token` (the path is logged,
 * never the token). Failed secrets are rate-limited per client address;
 * device identities are verified and paired as OpenClaw does.
 */
import { Clock, Effect, Layer, PubSub, Redacted, Semaphore, Stream } from "effect"
import { AppConfig } from "../../config/AppConfig.ts"
import type { BeamclawConfig } from "../../config/ConfigSchema.ts"
import { Paths } from "../../config/Paths.ts"
import * as DeviceIdentity from "./DeviceIdentity.ts"
import { exposureProblem, GatewayAuthConfigError } from "./Exposure.ts"
import {
  AuthFailed,
  type DeviceApproved,
  DeviceAuthFailed,
  deviceAuthCode,
  type DeviceAuthReason,
  GatewayAuth,
  isLoopbackAddress,
  type PairingEvent,
  type PairingReason,
  PairingRequired,
  type PresentedCredentials,
  type Principal,
  safeEqual,
  scopesAllow
} from "./GatewayAuth.ts"
import * as PairingStore from "./PairingStore.ts"
import * as RateLimiter from "./RateLimiter.ts"
import * as TokenFile from "./TokenFile.ts"

export { bindsLoopback, exposureProblem, GatewayAuthConfigError } from "./Exposure.ts"

export { safeEqual } from "./GatewayAuth.ts"

/** `gateway.auth.rateLimit`; `exemptLoopback` (OpenClaw's key, default true) is honoured once the schema carries it. */
interface RateLimitSettings {
  readonly maxAttempts: number
  readonly windowMs: number
  readonly lockoutMs: number
  readonly exemptLoopback?: boolean | undefined
}

const policyOf = (config: BeamclawConfig): RateLimiter.RateLimitPolicy => {
  const settings: RateLimitSettings = config.gateway.auth.rateLimit
  return { maxAttempts: settings.maxAttempts, windowMs: settings.windowMs, lockoutMs: settings.lockoutMs, exemptLoopback: settings.exemptLoopback ?? true }
}

const RATE_LIMITED_MESSAGE = "Too many failed authentication attempts. Please try again later."

const deviceFailure = (reason: DeviceAuthReason, message: string) => new DeviceAuthFailed({ reason, code: deviceAuthCode[reason], message })

export const make = Effect.gen(function*() {
  const appConfig = yield* AppConfig
  const paths = yield* Paths
  const initial = yield* appConfig.get

  const problem = exposureProblem(initial)
  if (problem !== undefined) return yield* new GatewayAuthConfigError({ message: problem })

  // The generated token, loaded at most once (on first need: at startup, or when a reload switches to token mode).
  let generated: TokenFile.GeneratedToken | undefined
  const tokenLock = yield* Semaphore.make(1)
  const generatedToken = tokenLock.withPermits(1)(Effect.gen(function*() {
    if (generated !== undefined) return generated
    const loaded = yield* TokenFile.loadOrCreate(paths.home)
    generated = loaded
    if (loaded.widened) yield* Effect.logWarning(`${loaded.file} was readable by other users; its mode is now 0600`)
    yield* Effect.logInfo(
      loaded.created
        ? `gateway auth: no gateway token is configured, so one was generated and stored in ${loaded.file} (mode 0600). Clients need it: read it with \`cat ${loaded.file}\`, or set gateway.auth.token / BEAMCLAW_GATEWAY_TOKEN to choose your own`
        : `gateway auth: using the gateway token stored in ${loaded.file} (read it with \`cat ${loaded.file}\`)`
    )
    return loaded
  }))

  if (initial.gateway.auth.mode === "token" && initial.gateway.auth.token === undefined) {
    yield* generatedToken.pipe(Effect.mapError((error) => new GatewayAuthConfigError({ message: error.message })))
  }
  if (initial.gateway.auth.mode === "none") {
    yield* Effect.logWarning("gateway auth mode is none: every connection is unauthenticated (allowed because the gateway binds to loopback only)")
  }

  const store = yield* PairingStore.open(paths.home).pipe(Effect.mapError((error) => new GatewayAuthConfigError({ message: error.message })))
  const limiter = RateLimiter.make(Effect.map(appConfig.get, policyOf))
  const events = yield* PubSub.unbounded<PairingEvent>()
  const publish = (event: PairingEvent) => PubSub.publish(events, event).pipe(Effect.asVoid)

  // A reload cannot stop the listener from here, so say loudly what is now refused.
  yield* appConfig.watch(exposureProblem).pipe(
    Stream.drop(1),
    Stream.runForEach((next) => next === undefined ? Effect.void : Effect.logError(`gateway auth: ${next}; requests are refused until the config is fixed`)),
    Effect.forkScoped
  )

  const rateLimited = (retryAfterMs: number) => new AuthFailed({ reason: "rate_limited", message: RATE_LIMITED_MESSAGE, retryAfterMs })

  /** Runs a secret comparison behind the limiter: a mismatch counts (unless the caller counts it later), a success resets. */
  const limited = (scope: RateLimiter.RateLimitScope, clientAddress: string, attempt: Effect.Effect<Principal, AuthFailed>, countMismatch = true) =>
    Effect.gen(function*() {
      const decision = yield* limiter.check(scope, clientAddress)
      if (!decision.allowed) return yield* rateLimited(decision.retryAfterMs)
      return yield* attempt.pipe(
        Effect.tap(() => limiter.reset(scope, clientAddress)),
        Effect.tapError((failure) => failure.reason === "mismatch" && countMismatch ? limiter.recordFailure(scope, clientAddress) : Effect.void)
      )
    })

  const check = (presented: PresentedCredentials, clientAddress: string, options?: { readonly deviceFallback?: boolean }): Effect.Effect<Principal, AuthFailed> =>
    Effect.gen(function*() {
      const config = yield* appConfig.get
      const auth = config.gateway.auth
      const loopback = isLoopbackAddress(clientAddress)
      const refused = exposureProblem(config)
      if (refused !== undefined) return yield* new AuthFailed({ reason: "not_allowed", message: refused })
      if (auth.mode === "none") return { method: "none" as const, clientAddress, loopback }
      let expected: string
      if (auth.mode === "token") {
        if (auth.token !== undefined) {
          expected = Redacted.value(auth.token)
        } else {
          const loaded = yield* Effect.result(generatedToken)
          if (loaded._tag === "Failure") {
            yield* Effect.logError(`gateway auth: ${loaded.failure.message}`)
            return yield* new AuthFailed({ reason: "not_allowed", message: "gateway auth mode is token, but no token is configured and the generated token could not be read (set gateway.auth.token or BEAMCLAW_GATEWAY_TOKEN)" })
          }
          expected = loaded.success.token
        }
      } else if (auth.password !== undefined) {
        expected = Redacted.value(auth.password)
      } else {
        return yield* new AuthFailed({ reason: "not_allowed", message: "gateway auth mode is password, but no password is configured (set gateway.auth.password)" })
      }
      const mode = auth.mode
      // OpenClaw accepts the configured secret in either field; the mode's own field wins when both are sent.
      const given = mode === "token" ? presented.token || presented.password : presented.password || presented.token
      return yield* limited("shared-secret", clientAddress, Effect.suspend(() => {
        if (given === undefined || given === "") return Effect.fail(new AuthFailed({ reason: "missing", message: `gateway ${mode} missing` }))
        if (!safeEqual(given, expected)) return Effect.fail(new AuthFailed({ reason: "mismatch", message: `gateway ${mode} mismatch` }))
        return Effect.succeed<Principal>({ method: mode, clientAddress, loopback })
      }), options?.deviceFallback !== true)
    })

  const checkDeviceToken = (
    presented: { readonly deviceId: string; readonly role: string; readonly scopes: ReadonlyArray<string>; readonly token: string },
    clientAddress: string
  ): Effect.Effect<Principal, AuthFailed> =>
    limited("device-token", clientAddress, Effect.gen(function*() {
      if (presented.token === "") return yield* new AuthFailed({ reason: "missing", message: "device token missing" })
      const device = yield* store.get(presented.deviceId)
      const issued = device?.tokens[presented.role]
      // Compare against something even for an unknown device, so timing does not tell which devices exist.
      const matches = safeEqual(presented.token, issued?.token ?? "\u0000unknown-device\u0000")
      // A revoked or rotated-away token is a mismatch, as OpenClaw reports it (`device_token_mismatch`).
      if (issued === undefined || !matches || issued.revokedAtMs !== undefined) return yield* new AuthFailed({ reason: "mismatch", message: "device token mismatch" })
      if (!scopesAllow(presented.role, presented.scopes, issued.scopes)) {
        return yield* new AuthFailed({ reason: "not_allowed", message: "device token does not cover the requested scopes (approve the device again for them)" })
      }
      return { method: "device-token" as const, clientAddress, loopback: isLoopbackAddress(clientAddress) }
    }))

  const verifyDevice: GatewayAuth["Service"]["verifyDevice"] = (device, context) =>
    Effect.gen(function*() {
      const derived = DeviceIdentity.deriveDeviceId(device.publicKey)
      if (derived === undefined || derived !== device.id) return yield* deviceFailure("device-id-mismatch", "device identity mismatch")
      const now = yield* Clock.currentTimeMillis
      if (!Number.isFinite(device.signedAt) || Math.abs(now - device.signedAt) > DeviceIdentity.SIGNATURE_SKEW_MS) {
        return yield* deviceFailure("device-signature-stale", "device signature expired")
      }
      const nonce = device.nonce?.trim() ?? ""
      if (nonce === "") return yield* deviceFailure("device-nonce-missing", "device nonce required")
      if (!safeEqual(nonce, context.expectedNonce)) return yield* deviceFailure("device-nonce-mismatch", "device nonce mismatch")
      const raw = DeviceIdentity.rawPublicKey(device.publicKey)
      const publicKey = raw?.toString("base64url")
      if (raw === undefined || publicKey === undefined) return yield* deviceFailure("device-public-key", "device public key invalid")
      const fields = {
        deviceId: device.id,
        clientId: context.clientId,
        clientMode: context.clientMode,
        role: context.role,
        scopes: context.scopes,
        signedAtMs: device.signedAt,
        token: context.signatureToken,
        nonce
      }
      const payloadVersion = DeviceIdentity.verifySignature(raw, DeviceIdentity.buildPayloadV3({ ...fields, platform: context.platform, deviceFamily: context.deviceFamily }), device.signature)
        ? "v3" as const
        : DeviceIdentity.verifySignature(raw, DeviceIdentity.buildPayloadV2(fields), device.signature)
        ? "v2" as const
        : undefined
      if (payloadVersion === undefined) return yield* deviceFailure("device-signature", "device signature invalid")

      const paired = yield* store.get(device.id)
      const reason: PairingReason | undefined = paired === undefined || paired.publicKey !== publicKey
        ? "not-paired"
        : !paired.roles.includes(context.role)
        ? "role-upgrade"
        : context.scopes.length > 0 && !(paired.scopes.length > 0 && scopesAllow(context.role, context.scopes, paired.scopes))
        ? "scope-upgrade"
        : undefined

      let approvedDevice = paired
      let silentlyApproved = false
      if (reason !== undefined) {
        const local = isLoopbackAddress(context.clientAddress) && context.hasProxyHeaders !== true
        // Local connects are trusted (same host, or an SSH tunnel that implies local access anyway), except that a device token alone does not widen its own scopes.
        const silent = local && !(reason === "scope-upgrade" && context.authMethod === "device-token")
        const { created, request } = yield* store.request({
          deviceId: device.id,
          publicKey,
          displayName: context.displayName,
          platform: context.platform,
          deviceFamily: context.deviceFamily,
          clientId: context.clientId,
          clientMode: context.clientMode,
          role: context.role,
          scopes: context.scopes,
          remoteIp: context.clientAddress,
          reason,
          silent
        }, now)
        if (!silent) {
          if (created) yield* publish({ event: "device.pair.requested", payload: request })
          return yield* new PairingRequired({ reason, requestId: request.requestId, deviceId: device.id, message: "pairing required" })
        }
        const approved = yield* store.approve(request.requestId, now, "silent").pipe(
          // Only a concurrent reject/expiry can make it vanish between the two calls; treat it as still unpaired.
          Effect.catchTag("PairingNotFound", () => Effect.fail(new PairingRequired({ reason, requestId: request.requestId, deviceId: device.id, message: "pairing required" })))
        )
        yield* publish({ event: "device.pair.resolved", payload: { requestId: request.requestId, deviceId: device.id, decision: "approved", ts: now } })
        approvedDevice = approved.device
        silentlyApproved = true
      }
      if (approvedDevice === undefined) return yield* new PairingRequired({ reason: "not-paired", requestId: "", deviceId: device.id, message: "pairing required" })
      // A device-token connect gets its token from confirmDeviceToken, checked against the token it presented:
      // issuing here, outside that check, would hand the new token to the old one's holder after a rotation,
      // or a fresh one after a revocation.
      const deviceToken = context.authMethod === "device-token" ? undefined : yield* store.ensureToken(device.id, context.role, context.scopes, now).pipe(
        Effect.catchTag("PairingNotFound", () => Effect.fail(new PairingRequired({ reason: "not-paired", requestId: "", deviceId: device.id, message: "pairing required" })))
      )
      const current = (yield* store.get(device.id)) ?? approvedDevice
      const result: DeviceApproved = { device: current, payloadVersion, silentlyApproved, deviceToken }
      return result
    })

  return GatewayAuth.of({
    mode: appConfig.get.pipe(Effect.map((c) => c.gateway.auth.mode)),
    check,
    recordSharedSecretFailure: (clientAddress) => limiter.recordFailure("shared-secret", clientAddress),
    checkBearer: (authorization, clientAddress) => {
      const match = /^Bearer\s+(.+)$/i.exec(authorization?.trim() ?? "")
      const secret = match?.[1]?.trim()
      return check({ token: secret, password: secret }, clientAddress)
    },
    checkDeviceToken,
    confirmDeviceToken: (presented) =>
      store.confirmToken(presented.deviceId, presented.role, presented.scopes, presented.token).pipe(
        Effect.mapError(() => new AuthFailed({ reason: "mismatch", message: "device token mismatch" }))
      ),
    verifyDevice,
    pairing: {
      list: Effect.flatMap(Clock.currentTimeMillis, (now) => store.list(now)),
      approve: (requestId) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const { device } = yield* store.approve(requestId, now, "operator")
          yield* publish({ event: "device.pair.resolved", payload: { requestId, deviceId: device.deviceId, decision: "approved", ts: now } })
          return { requestId, device }
        }),
      reject: (requestId) =>
        Effect.gen(function*() {
          const now = yield* Clock.currentTimeMillis
          const request = yield* store.reject(requestId, now)
          yield* publish({ event: "device.pair.resolved", payload: { requestId, deviceId: request.deviceId, decision: "rejected", ts: now } })
          return { requestId, deviceId: request.deviceId }
        }),
      remove: (deviceId) => store.remove(deviceId).pipe(Effect.as({ deviceId })),
      rotateToken: (input) => Effect.flatMap(Clock.currentTimeMillis, (now) => store.rotateToken(input, now)),
      revokeToken: (input) => Effect.flatMap(Clock.currentTimeMillis, (now) => store.revokeToken(input, now)),
      events: Stream.fromPubSub(events)
    }
  })
})

/** Fails with `GatewayAuthConfigError` when the exposure is refused, the token file is unusable or the pairing files are corrupt. */
export const layer = Layer.effect(GatewayAuth, make)

/**
 * Paired devices and pending pairing requests, kept in the state directory
 * as OpenClaw's JSON-era files: `devices/paired.json` (by device id) and
 * `devices/pending.json` (by request id), both 0600 in a 0700 directory.
 * Loaded once, kept in memory, rewritten whole (temp file + rename) after
 * each change, one change at a time. Pending requests expire after 5 minutes.
 */
import { randomBytes, randomUUID } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Effect, Schema, Semaphore } from "effect"
import {
  type DeviceToken,
  type DeviceTokenChange,
  type PairedDevice,
  PairedDevice as PairedDeviceSchema,
  PairingNotFound,
  type PairingReason,
  PairingStoreError,
  type PendingPairing,
  PendingPairing as PendingPairingSchema,
  safeEqual,
  scopesAllow
} from "./GatewayAuth.ts"
import { isErrno } from "../../platform/Errno.ts"
import { DeviceTokenDenied, DeviceTokenMismatch } from "./DeviceTokenErrors.ts"

export const PENDING_TTL_MS = 5 * 60_000

export const devicesDir = (home: string) => path.join(home, "devices")
export const pairedFile = (home: string) => path.join(devicesDir(home), "paired.json")
export const pendingFile = (home: string) => path.join(devicesDir(home), "pending.json")

const PairedFile = Schema.fromJsonString(Schema.Record(Schema.String, PairedDeviceSchema))
const PendingFile = Schema.fromJsonString(Schema.Record(Schema.String, PendingPairingSchema))

const describe = (error: unknown) => error instanceof Error ? error.message : String(error)

const readJson = <S extends Schema.Codec<Record<string, unknown>, string>>(file: string, schema: S) =>
  Effect.gen(function*() {
    const text = yield* Effect.tryPromise({
      try: () => fs.readFile(file, "utf8"),
      catch: (error) => isErrno(error, "ENOENT") ? "missing" as const : new PairingStoreError({ file, message: `cannot read ${file}: ${describe(error)}` })
    }).pipe(Effect.catch((failure) => failure === "missing" ? Effect.succeed(undefined) : Effect.fail(failure)))
    if (text === undefined) return {}
    return yield* Schema.decodeUnknownEffect(schema)(text).pipe(
      Effect.mapError((error) => new PairingStoreError({ file, message: `${file} is not a valid pairing file (fix or remove it; removing it forgets the devices in it): ${error.message}` }))
    )
  })

const writeJson = (dir: string, file: string, value: unknown) =>
  Effect.tryPromise({
    try: async () => {
      await fs.mkdir(dir, { recursive: true, mode: 0o700 })
      const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`
      try {
        await fs.writeFile(temporary, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600, flag: "wx" })
        await fs.rename(temporary, file)
      } catch (error) {
        await fs.rm(temporary, { force: true })
        throw error
      }
    },
    catch: (error) => new PairingStoreError({ file, message: `cannot write ${file}: ${describe(error)}` })
  })

export interface PairingRequestInput {
  readonly deviceId: string
  readonly publicKey: string
  readonly displayName?: string | undefined
  readonly platform?: string | undefined
  readonly deviceFamily?: string | undefined
  readonly clientId: string
  readonly clientMode: string
  readonly role: string
  readonly scopes: ReadonlyArray<string>
  readonly remoteIp: string
  readonly reason: PairingReason
  readonly silent: boolean
}

const newToken = () => randomBytes(32).toString("base64url")

const denialMessages: Record<DeviceTokenDenied["reason"], (input: DeviceTokenChange, scope: string | undefined) => string> = {
  "unknown-device-or-role": (input) => `unknown device ${input.deviceId} or role ${input.role}: the device is not paired, is not approved for the role, or (revoke) holds no token for it`,
  "scope-outside-approved-baseline": (input) => `the scopes asked for are outside what device ${input.deviceId} was approved for`,
  "caller-missing-scope": (_input, scope) => `the caller does not hold ${scope ?? "a requested scope"}`,
  "device-ownership-mismatch": (input) => `a device-token session may only manage its own device, not ${input.deviceId}`,
  "role-management-requires-admin": (input) => `managing the ${input.role} role needs operator.admin`
}

export const denial = (input: DeviceTokenChange, reason: DeviceTokenDenied["reason"], scope?: string) =>
  new DeviceTokenDenied({
    reason,
    deviceId: input.deviceId,
    role: input.role,
    ...(scope === undefined ? {} : { scope }),
    message: denialMessages[reason](input, scope)
  })

const denied = (input: DeviceTokenChange, reason: DeviceTokenDenied["reason"], scope?: string) => Effect.fail(denial(input, reason, scope))

const union = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): Array<string> => [...new Set([...a, ...b])]
const sameSet = (a: ReadonlyArray<string>, b: ReadonlyArray<string>) => a.length === b.length && a.every((x) => b.includes(x))

export interface PairingStore {
  readonly get: (deviceId: string) => Effect.Effect<PairedDevice | undefined>
  readonly list: (now: number) => Effect.Effect<{ readonly pending: ReadonlyArray<PendingPairing>; readonly paired: ReadonlyArray<PairedDevice> }>
  /** Creates a request, or refreshes the pending one for the same device, key, role and scopes. */
  readonly request: (input: PairingRequestInput, now: number) => Effect.Effect<{ readonly request: PendingPairing; readonly created: boolean }, PairingStoreError>
  /** Approves a pending request: the device is paired (or gains the role and scopes) with the request's key. */
  readonly approve: (requestId: string, now: number, via: PairedDevice["approvedVia"]) => Effect.Effect<{ readonly request: PendingPairing; readonly device: PairedDevice }, PairingNotFound | PairingStoreError>
  readonly reject: (requestId: string, now: number) => Effect.Effect<PendingPairing, PairingNotFound | PairingStoreError>
  readonly remove: (deviceId: string) => Effect.Effect<PairedDevice, PairingNotFound | PairingStoreError>
  /** The device token for (device, role): reused while it is not revoked and its scopes still cover `scopes`, else issued anew. */
  readonly ensureToken: (deviceId: string, role: string, scopes: ReadonlyArray<string>, now: number) => Effect.Effect<DeviceToken, PairingNotFound | PairingStoreError>
  /**
   * `ensureToken` for a connect that authenticated with a device token: nothing is issued. The presented token
   * must be the live, unrevoked token of (device, role) and cover `scopes`, compared in constant time under the
   * lock (so after any rotation or revocation that got there first), else `DeviceTokenMismatch`.
   */
  readonly confirmToken: (deviceId: string, role: string, scopes: ReadonlyArray<string>, presented: string) => Effect.Effect<DeviceToken, DeviceTokenMismatch>
  /** OpenClaw's `rotateDeviceToken`: a new token for an approved role, within the approved (and the caller's) scopes. */
  readonly rotateToken: (input: DeviceTokenChange & { readonly scopes?: ReadonlyArray<string> | undefined }, now: number) => Effect.Effect<DeviceToken, DeviceTokenDenied | PairingStoreError>
  /** OpenClaw's `revokeDeviceToken`: the entry is kept with `revokedAtMs`, so the token no longer matches. */
  readonly revokeToken: (input: DeviceTokenChange, now: number) => Effect.Effect<DeviceToken, DeviceTokenDenied | PairingStoreError>
}

/** Scopes as OpenClaw normalizes them for device tokens: trimmed, no blanks, no duplicates. */
const normalizeScopes = (scopes: ReadonlyArray<string>): Array<string> => [...new Set(scopes.map((scope) => scope.trim()).filter((scope) => scope !== ""))]

export const open = (home: string): Effect.Effect<PairingStore, PairingStoreError> =>
  Effect.gen(function*() {
    const dir = devicesDir(home)
    const paired: Record<string, PairedDevice> = { ...yield* readJson(pairedFile(home), PairedFile) }
    const pending: Record<string, PendingPairing> = { ...yield* readJson(pendingFile(home), PendingFile) }
    const lock = yield* Semaphore.make(1)
    const serialized = <A, E>(effect: Effect.Effect<A, E>) => lock.withPermits(1)(effect)

    const savePaired = writeJson(dir, pairedFile(home), paired)
    const savePending = writeJson(dir, pendingFile(home), pending)

    /** Drops expired requests in memory; the next write persists the removal. */
    const expire = (now: number): boolean => {
      let changed = false
      for (const [id, request] of Object.entries(pending)) {
        if (now - request.ts > PENDING_TTL_MS) {
          delete pending[id]
          changed = true
        }
      }
      return changed
    }

    const findPending = (requestId: string, now: number) => {
      expire(now)
      const request = pending[requestId]
      return request === undefined
        ? Effect.fail(new PairingNotFound({ id: requestId, message: `unknown or expired pairing request ${requestId}` }))
        : Effect.succeed(request)
    }

    /** The device and its token for a role it was approved for; a token entry alone grants no management target. */
    const tokenContext = (input: DeviceTokenChange) => {
      const device = paired[input.deviceId.trim()]
      const role = input.role.trim()
      if (device === undefined || !device.roles.includes(role)) return Effect.fail(denial(input, "unknown-device-or-role"))
      return Effect.succeed({ device, role, existing: device.tokens[role] })
    }

    const store: PairingStore = {
      get: (deviceId) => Effect.sync(() => paired[deviceId]),
      list: (now) =>
        Effect.sync(() => {
          expire(now)
          return {
            pending: Object.values(pending).sort((a, b) => a.ts - b.ts),
            paired: Object.values(paired).sort((a, b) => a.approvedAtMs - b.approvedAtMs)
          }
        }),
      request: (input, now) =>
        serialized(Effect.gen(function*() {
          expire(now)
          const existing = Object.values(pending).find((request) =>
            request.deviceId === input.deviceId && request.publicKey === input.publicKey && request.role === input.role && sameSet(request.scopes, input.scopes)
          )
          const current = paired[input.deviceId]
          const request: PendingPairing = {
            requestId: existing?.requestId ?? randomUUID(),
            deviceId: input.deviceId,
            publicKey: input.publicKey,
            ...(input.displayName === undefined ? {} : { displayName: input.displayName }),
            ...(input.platform === undefined ? {} : { platform: input.platform }),
            ...(input.deviceFamily === undefined ? {} : { deviceFamily: input.deviceFamily }),
            clientId: input.clientId,
            clientMode: input.clientMode,
            role: input.role,
            roles: current !== undefined && current.publicKey === input.publicKey ? union(current.roles, [input.role]) : [input.role],
            scopes: [...input.scopes],
            remoteIp: input.remoteIp,
            reason: input.reason,
            isRepair: current !== undefined,
            silent: input.silent,
            ts: now
          }
          pending[request.requestId] = request
          yield* savePending
          return { request, created: existing === undefined }
        })),
      approve: (requestId, now, via) =>
        serialized(Effect.gen(function*() {
          const request = yield* findPending(requestId, now)
          const current = paired[request.deviceId]
          // A new key replaces the old identity wholesale: its grants and tokens belonged to another key.
          const keep = current !== undefined && current.publicKey === request.publicKey ? current : undefined
          const displayName = request.displayName ?? keep?.displayName
          const platform = request.platform ?? keep?.platform
          const deviceFamily = request.deviceFamily ?? keep?.deviceFamily
          const device: PairedDevice = {
            deviceId: request.deviceId,
            publicKey: request.publicKey,
            ...(displayName === undefined ? {} : { displayName }),
            ...(platform === undefined ? {} : { platform }),
            ...(deviceFamily === undefined ? {} : { deviceFamily }),
            clientId: request.clientId,
            clientMode: request.clientMode,
            roles: union(keep?.roles ?? [], [request.role]),
            scopes: union(keep?.scopes ?? [], request.scopes),
            remoteIp: request.remoteIp,
            tokens: keep?.tokens ?? {},
            createdAtMs: keep?.createdAtMs ?? now,
            approvedAtMs: now,
            approvedVia: via
          }
          paired[device.deviceId] = device
          delete pending[requestId]
          yield* savePaired
          yield* savePending
          return { request, device }
        })),
      reject: (requestId, now) =>
        serialized(Effect.gen(function*() {
          const request = yield* findPending(requestId, now)
          delete pending[requestId]
          yield* savePending
          return request
        })),
      remove: (deviceId) =>
        serialized(Effect.gen(function*() {
          const device = paired[deviceId]
          if (device === undefined) return yield* new PairingNotFound({ id: deviceId, message: `unknown device ${deviceId}` })
          delete paired[deviceId]
          let pendingChanged = false
          for (const [id, request] of Object.entries(pending)) {
            if (request.deviceId === deviceId) {
              delete pending[id]
              pendingChanged = true
            }
          }
          yield* savePaired
          if (pendingChanged) yield* savePending
          return device
        })),
      confirmToken: (deviceId, role, scopes, presented) =>
        serialized(Effect.suspend(() => {
          const current = paired[deviceId]?.tokens[role]
          // Compared even when there is nothing to compare with, so timing does not tell which devices exist.
          const matches = safeEqual(presented, current?.token ?? "\u0000no-token\u0000")
          return current === undefined || !matches || current.revokedAtMs !== undefined || !scopesAllow(role, scopes, current.scopes)
            ? Effect.fail(new DeviceTokenMismatch({ deviceId, role, message: `the presented token is not the live token of device ${deviceId} for role ${role}` }))
            : Effect.succeed(current)
        })),
      ensureToken: (deviceId, role, scopes, now) =>
        serialized(Effect.gen(function*() {
          const device = paired[deviceId]
          if (device === undefined) return yield* new PairingNotFound({ id: deviceId, message: `unknown device ${deviceId}` })
          const existing = device.tokens[role]
          const live = existing?.revokedAtMs === undefined ? existing : undefined
          if (live !== undefined && scopes.every((scope) => live.scopes.includes(scope))) return live
          // A revoked token's scopes are not carried over: the reissue covers what this connect asked for.
          const token: DeviceToken = {
            token: newToken(),
            role,
            scopes: union(live?.scopes ?? [], scopes),
            createdAtMs: existing?.createdAtMs ?? now,
            ...(existing === undefined ? {} : { rotatedAtMs: now })
          }
          paired[deviceId] = { ...device, tokens: { ...device.tokens, [role]: token } }
          yield* savePaired
          return token
        })),
      rotateToken: (input, now) =>
        serialized(Effect.gen(function*() {
          const { device, role, existing } = yield* tokenContext(input)
          const requested = normalizeScopes(input.scopes ?? existing?.scopes ?? device.scopes)
          if (!scopesAllow(role, requested, device.scopes)) return yield* denied(input, "scope-outside-approved-baseline")
          const missing = input.callerScopes === undefined ? undefined : requested.find((scope) => !scopesAllow(role, [scope], input.callerScopes ?? []))
          if (missing !== undefined) return yield* denied(input, "caller-missing-scope", missing)
          const token: DeviceToken = { token: newToken(), role, scopes: requested, createdAtMs: existing?.createdAtMs ?? now, rotatedAtMs: now }
          paired[device.deviceId] = { ...device, tokens: { ...device.tokens, [role]: token } }
          yield* savePaired
          return token
        })),
      revokeToken: (input, now) =>
        serialized(Effect.gen(function*() {
          const { device, role, existing } = yield* tokenContext(input)
          if (existing === undefined) return yield* denied(input, "unknown-device-or-role")
          const missing = input.callerScopes === undefined ? undefined : existing.scopes.find((scope) => !scopesAllow(role, [scope], input.callerScopes ?? []))
          if (missing !== undefined) return yield* denied(input, "caller-missing-scope", missing)
          const token: DeviceToken = { ...existing, revokedAtMs: now }
          paired[device.deviceId] = { ...device, tokens: { ...device.tokens, [role]: token } }
          yield* savePaired
          return token
        }))
    }
    return store
  })

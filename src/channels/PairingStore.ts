/**
 * DM pairing for chat channels, as OpenClaw's JSON-era pairing store: an
 * unknown sender gets an 8-character code, the owner approves it
 * (`beamclaw pairing approve discord <CODE>`), and the sender joins the
 * channel account's allow list.
 *
 * Files, under `<stateDir>/credentials/` (0700), each 0600:
 * - `<channel>-pairing.json`: `{version: 1, requests: [{id, code, createdAt, lastSeenAt, meta: {accountId, name?}}]}`
 *   (pending requests of every account of the channel);
 * - `<channel>-allowFrom.json` for the default account, `<channel>-<account>-allowFrom.json`
 *   for the others: `{version: 1, allowFrom: [senderId, …]}`.
 *
 * Files are read on every call (they are tiny, and the CLI may have changed
 * them) and replaced whole: temp file, fsync, rename, so a crash leaves the
 * old file or the new one. Changes in this process go one at a time.
 *
 * A damaged file is never overwritten. A damaged pending-requests file holds
 * only short-lived requests, so it is moved aside (`*.corrupt.<ms>`) with a
 * warning and the store starts over, and senders simply get new codes. A
 * damaged allow list is the record of who was let in: every call that needs it
 * fails with `ChannelPairingStoreError` naming the file and the problem, so
 * nobody is silently locked out or let in, until the owner repairs it.
 */
import { randomBytes, randomInt } from "node:crypto"
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { Clock, Context, Effect, Layer, Schema, Semaphore } from "effect"
import { Paths } from "../config/Paths.ts"
import { writeFileAtomic } from "../platform/AtomicFile.ts"
import { ChannelPairingStoreError, InvalidPairingTarget, PairingCodeNotFound, PairingRequest } from "./PairingSchemas.ts"
export { ChannelPairingStoreError, InvalidPairingTarget, PairingCodeNotFound, PairingRequest } from "./PairingSchemas.ts"
import { isErrno } from "../platform/Errno.ts"
import { DEFAULT_ACCOUNT_ID, normalizeAccountId } from "./Routing.ts"

export const PAIRING_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
export const PAIRING_CODE_LENGTH = 8
/** A request lives one hour from its creation, however often the sender writes again. */
export const PAIRING_TTL_MS = 60 * 60_000
/** Pending requests per channel account; more senders are refused until one is approved, rejected or expires. */
export const PAIRING_MAX_PENDING = 3

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------



const PairingFile = Schema.Struct({ version: Schema.Literal(1), requests: Schema.Array(PairingRequest) })
const AllowFromFile = Schema.Struct({ version: Schema.Literal(1), allowFrom: Schema.Array(Schema.String) })
const VersionProbe = Schema.Struct({ version: Schema.Unknown })
const JsonText = Schema.fromJsonString(Schema.Unknown)

export const credentialsDir = (home: string): string => path.join(home, "credentials")
export const pairingFile = (home: string, channel: string): string => path.join(credentialsDir(home), `${channel}-pairing.json`)
/** The default account keeps OpenClaw's unsuffixed file, so a single-account setup reads the same file as before. */
export const allowFromFile = (home: string, channel: string, accountId: string): string =>
  path.join(credentialsDir(home), accountId === DEFAULT_ACCOUNT_ID ? `${channel}-allowFrom.json` : `${channel}-${accountId}-allowFrom.json`)

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/** A pairing file cannot be read, is damaged, or cannot be written. */
// ---------------------------------------------------------------------------
// The service
// ---------------------------------------------------------------------------

export interface UpsertRequestInput {
  readonly channel: string
  /** Missing means the default account. */
  readonly accountId?: string | undefined
  readonly senderId: string
  /** The sender's display name, shown by `pairing list`. */
  readonly name?: string | undefined
}

export interface UpsertRequestResult {
  /** A new request: send the pairing reply now (it is sent once per request, not on every message). */
  readonly created: boolean
  /** The sender's code: new, or the one already pending. `undefined` when refused (too many pending). */
  readonly code: string | undefined
  readonly request: PairingRequest | undefined
}

type StoreError = ChannelPairingStoreError | InvalidPairingTarget

export interface PairingStoreShape {
  /** Creates a request for the sender, or refreshes its pending one (same code, `created: false`), or refuses it. */
  readonly upsertRequest: (input: UpsertRequestInput) => Effect.Effect<UpsertRequestResult, StoreError>
  /** Pending, unexpired requests of the channel (of one account when given), oldest first. */
  readonly list: (channel: string, accountId?: string | undefined) => Effect.Effect<ReadonlyArray<PairingRequest>, StoreError>
  /** Adds the code's sender to its account's allow list and removes the request. The code is case-insensitive. */
  readonly approve: (channel: string, code: string, accountId?: string | undefined) => Effect.Effect<PairingRequest, StoreError | PairingCodeNotFound>
  /** Removes the request; the sender may ask again later. */
  readonly reject: (channel: string, code: string, accountId?: string | undefined) => Effect.Effect<PairingRequest, StoreError | PairingCodeNotFound>
  /** The senders approved for the channel account. */
  readonly allowFrom: (channel: string, accountId?: string | undefined) => Effect.Effect<ReadonlyArray<string>, StoreError>
  readonly isAllowed: (channel: string, accountId: string | undefined, senderId: string) => Effect.Effect<boolean, StoreError>
}

export class PairingStore extends Context.Service<PairingStore, PairingStoreShape>()("beamclaw/channels/PairingStore") {
  /** Under the state directory of `Paths`. */
  static readonly layer = Layer.effect(PairingStore, Effect.gen(function*() {
    return yield* make((yield* Paths).home)
  }))
  /** Under `home`, for tests and tools. */
  static readonly layerAt = (home: string) => Layer.effect(PairingStore, make(home))
}

// ---------------------------------------------------------------------------
// Implementation
// ---------------------------------------------------------------------------

const CHANNEL_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/
const SENDER_PATTERN = /^[^\s\u0000-\u001f\u007f]{1,256}$/

const describe = (error: unknown): string => error instanceof Error ? error.message : String(error)

const channelOf = (raw: string): Effect.Effect<string, InvalidPairingTarget> => {
  const channel = raw.trim().toLowerCase()
  return CHANNEL_PATTERN.test(channel)
    ? Effect.succeed(channel)
    : Effect.fail(new InvalidPairingTarget({ message: `invalid channel id ${JSON.stringify(raw)}: use lower-case letters, digits, "_" or "-"` }))
}

const senderOf = (raw: string): Effect.Effect<string, InvalidPairingTarget> => {
  const sender = raw.trim()
  return SENDER_PATTERN.test(sender)
    ? Effect.succeed(sender)
    : Effect.fail(new InvalidPairingTarget({ message: `invalid sender id ${JSON.stringify(raw)}` }))
}

const accountOfRequest = (request: PairingRequest): string => normalizeAccountId(request.meta.accountId)

const isExpired = (request: PairingRequest, now: number): boolean => now - Date.parse(request.createdAt) >= PAIRING_TTL_MS

/** Text from a file, `undefined` when it does not exist. */
const readText = (file: string): Effect.Effect<string | undefined, ChannelPairingStoreError> =>
  Effect.tryPromise({
    try: () => fs.readFile(file, "utf8").catch((error: unknown) => isErrno(error, "ENOENT") ? undefined : Promise.reject(error)),
    catch: (error) => new ChannelPairingStoreError({ file, message: `cannot read ${file}: ${describe(error)}` })
  })

type Decoded<A> =
  | { readonly _tag: "Ok"; readonly value: A }
  | { readonly _tag: "Damaged"; readonly problem: string }
  | { readonly _tag: "Newer"; readonly problem: string }

/** JSON, then the version, then the shape: a file from a newer BeamClaw is told apart from a damaged one. */
const decodeFile = <A>(text: string, schema: Schema.Codec<A, unknown>): Decoded<A> => {
  const json = Schema.decodeUnknownResult(JsonText)(text)
  if (json._tag === "Failure") return { _tag: "Damaged", problem: `not valid JSON (${json.failure.message.split("\n")[0]})` }
  const probe = Schema.decodeUnknownResult(VersionProbe)(json.success)
  if (probe._tag === "Success" && probe.success.version !== 1) {
    return { _tag: "Newer", problem: `version ${JSON.stringify(probe.success.version)} is not supported (this BeamClaw reads version 1)` }
  }
  const decoded = Schema.decodeUnknownResult(schema)(json.success, { errors: "all" })
  return decoded._tag === "Success" ? { _tag: "Ok", value: decoded.success } : { _tag: "Damaged", problem: decoded.failure.message.replace(/\n\s*/g, " ") }
}

/** Temp file beside the target, fsync, rename, fsync of the directory: the old file or the new one, never half of one. */
const writeJson = (file: string, value: unknown): Effect.Effect<void, ChannelPairingStoreError> =>
  Effect.tryPromise({
    try: () => writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`),
    catch: (error) => new ChannelPairingStoreError({ file, message: `cannot write ${file}: ${describe(error)}` })
  })

const generateCode = (taken: ReadonlySet<string>): Effect.Effect<string, ChannelPairingStoreError> =>
  Effect.suspend(() => {
    for (let attempt = 0; attempt < 500; attempt++) {
      let code = ""
      for (let i = 0; i < PAIRING_CODE_LENGTH; i++) code += PAIRING_CODE_ALPHABET[randomInt(PAIRING_CODE_ALPHABET.length)]
      if (!taken.has(code)) return Effect.succeed(code)
    }
    return Effect.fail(new ChannelPairingStoreError({ file: "", message: "could not draw an unused pairing code in 500 attempts" }))
  })

export const make = (home: string): Effect.Effect<PairingStoreShape> =>
  Effect.gen(function*() {
    const lock = yield* Semaphore.make(1)
    const serialized = <A, E>(effect: Effect.Effect<A, E>) => lock.withPermits(1)(effect)

    const moveAside = Effect.fnUntraced(function*(file: string, problem: string, now: number) {
      let target = `${file}.corrupt.${now}`
      const exists = yield* Effect.promise(() => fs.access(target).then(() => true, () => false))
      if (exists) target = `${target}-${randomBytes(2).toString("hex")}`
      yield* Effect.tryPromise({
        try: () => fs.rename(file, target),
        catch: (error) => new ChannelPairingStoreError({ file, message: `${file} is damaged (${problem}) and could not be moved aside: ${describe(error)}` })
      })
      yield* Effect.logWarning(`pairing requests file ${file} was damaged (${problem}); moved it to ${target} and started with no pending requests`)
    })

    const readRequests = Effect.fnUntraced(function*(channel: string, now: number) {
      const file = pairingFile(home, channel)
      const text = yield* readText(file)
      if (text === undefined) return [] as ReadonlyArray<PairingRequest>
      const decoded = decodeFile(text, PairingFile)
      switch (decoded._tag) {
        case "Ok":
          return decoded.value.requests
        case "Newer":
          return yield* new ChannelPairingStoreError({ file, message: `${file}: ${decoded.problem}` })
        case "Damaged":
          yield* moveAside(file, decoded.problem, now)
          return [] as ReadonlyArray<PairingRequest>
      }
    })

    const writeRequests = (channel: string, requests: ReadonlyArray<PairingRequest>) =>
      writeJson(pairingFile(home, channel), { version: 1, requests })

    const readAllowFrom = Effect.fnUntraced(function*(channel: string, accountId: string) {
      const file = allowFromFile(home, channel, accountId)
      const text = yield* readText(file)
      if (text === undefined) return [] as ReadonlyArray<string>
      const decoded = decodeFile(text, AllowFromFile)
      if (decoded._tag === "Ok") return decoded.value.allowFrom
      return yield* new ChannelPairingStoreError({
        file,
        message: `${file} is not a valid allow list (${decoded.problem}); fix it by hand (it is {"version": 1, "allowFrom": ["<sender id>", …]}) — it is left untouched`
      })
    })

    /** The live requests, and whether anything expired (so the next write drops it). */
    const liveRequests = (requests: ReadonlyArray<PairingRequest>, now: number) => {
      const live = requests.filter((request) => !isExpired(request, now))
      return { live, pruned: live.length !== requests.length }
    }

    const findByCode = Effect.fnUntraced(function*(rawChannel: string, code: string, accountId: string | undefined) {
      const channel = yield* channelOf(rawChannel)
      const account = accountId === undefined ? undefined : normalizeAccountId(accountId)
      const now = yield* Clock.currentTimeMillis
      const { live } = liveRequests(yield* readRequests(channel, now), now)
      const wanted = code.trim().toUpperCase()
      const request = live.find((candidate) =>
        candidate.code.toUpperCase() === wanted && (account === undefined || accountOfRequest(candidate) === account)
      )
      if (request === undefined) {
        return yield* new PairingCodeNotFound({
          channel,
          code,
          message: `no pending pairing request with code ${JSON.stringify(code)} for ${channel}${account === undefined ? "" : ` account ${account}`} (unknown, already handled, or expired after 1 hour)`
        })
      }
      return { channel, request, remaining: live.filter((candidate) => candidate !== request) }
    })

    const upsertRequest: PairingStoreShape["upsertRequest"] = (input) =>
      serialized(Effect.gen(function*() {
        const channel = yield* channelOf(input.channel)
        const senderId = yield* senderOf(input.senderId)
        const accountId = normalizeAccountId(input.accountId)
        const now = yield* Clock.currentTimeMillis
        const stamp = new Date(now).toISOString()
        const { live, pruned: expired } = liveRequests(yield* readRequests(channel, now), now)

        // Beyond the cap (a hand-edited file), only the most recently active requests stay.
        const mine = live.filter((request) => accountOfRequest(request) === accountId)
        const dropped = new Set(
          [...mine].sort((a, b) => Date.parse(b.lastSeenAt) - Date.parse(a.lastSeenAt)).slice(PAIRING_MAX_PENDING)
        )
        const kept = live.filter((request) => !dropped.has(request))
        const keptMine = mine.filter((request) => !dropped.has(request))
        const changed = expired || dropped.size > 0

        const existing = keptMine.find((request) => request.id === senderId)
        if (existing !== undefined) {
          const name = input.name ?? existing.meta.name
          const refreshed: PairingRequest = {
            ...existing,
            lastSeenAt: stamp,
            meta: { accountId, ...(name === undefined ? {} : { name }) }
          }
          yield* writeRequests(channel, kept.map((request) => request === existing ? refreshed : request))
          return { created: false, code: existing.code, request: refreshed }
        }
        if (keptMine.length >= PAIRING_MAX_PENDING) {
          if (changed) yield* writeRequests(channel, kept)
          return { created: false, code: undefined, request: undefined }
        }
        const code = yield* generateCode(new Set(kept.map((request) => request.code.toUpperCase())))
        const request: PairingRequest = {
          id: senderId,
          code,
          createdAt: stamp,
          lastSeenAt: stamp,
          meta: { accountId, ...(input.name === undefined ? {} : { name: input.name }) }
        }
        yield* writeRequests(channel, [...kept, request])
        return { created: true, code, request }
      }))

    const list: PairingStoreShape["list"] = (rawChannel, accountId) =>
      serialized(Effect.gen(function*() {
        const channel = yield* channelOf(rawChannel)
        const account = accountId === undefined ? undefined : normalizeAccountId(accountId)
        const now = yield* Clock.currentTimeMillis
        return liveRequests(yield* readRequests(channel, now), now).live
          .filter((request) => account === undefined || accountOfRequest(request) === account)
          .sort((a, b) => Date.parse(a.createdAt) - Date.parse(b.createdAt))
      }))

    const approve: PairingStoreShape["approve"] = (rawChannel, code, accountId) =>
      serialized(Effect.gen(function*() {
        const { channel, remaining, request } = yield* findByCode(rawChannel, code, accountId)
        const account = accountOfRequest(request)
        const allowed = yield* readAllowFrom(channel, account)
        // The allow list first: a crash between the two writes leaves an approved sender with a stale request, never the reverse.
        if (!allowed.includes(request.id)) {
          yield* writeJson(allowFromFile(home, channel, account), { version: 1, allowFrom: [...allowed, request.id] })
        }
        yield* writeRequests(channel, remaining)
        return request
      }))

    const reject: PairingStoreShape["reject"] = (rawChannel, code, accountId) =>
      serialized(Effect.gen(function*() {
        const { channel, remaining, request } = yield* findByCode(rawChannel, code, accountId)
        yield* writeRequests(channel, remaining)
        return request
      }))

    const allowFrom: PairingStoreShape["allowFrom"] = (rawChannel, accountId) =>
      Effect.gen(function*() {
        const channel = yield* channelOf(rawChannel)
        return yield* readAllowFrom(channel, normalizeAccountId(accountId))
      })

    const isAllowed: PairingStoreShape["isAllowed"] = (rawChannel, accountId, rawSender) =>
      Effect.gen(function*() {
        const senderId = rawSender.trim()
        if (senderId === "") return false
        const allowed = yield* allowFrom(rawChannel, accountId)
        return allowed.some((entry) => entry.trim() === senderId)
      })

    return { upsertRequest, list, approve, reject, allowFrom, isAllowed }
  })

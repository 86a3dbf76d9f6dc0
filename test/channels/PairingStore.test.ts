import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { TestClock } from "effect/testing"
import {
  allowFromFile,
  PAIRING_CODE_ALPHABET,
  pairingFile,
  PairingStore
} from "../../src/channels/PairingStore.ts"
import { Paths } from "../../src/config/Paths.ts"

const START = Date.parse("2026-11-25T10:00:00.000Z")
const ALICE = "111111111111111111"
const BOB = "222222222222222222"
const CAROL = "333333333333333333"
const DAVE = "444444444444444444"

const tempHome = Effect.acquireRelease(
  Effect.promise(() => fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-pairing-"))),
  (dir) => Effect.promise(() => fs.rm(dir, { recursive: true, force: true }))
)

/** A store over a fresh state directory, the TestClock at START. */
const withStore = <A, E>(body: (home: string) => Effect.Effect<A, E, PairingStore>) =>
  Effect.scoped(Effect.gen(function*() {
    const home = yield* tempHome
    yield* TestClock.setTime(START)
    return yield* body(home).pipe(Effect.provide(PairingStore.layerAt(home)))
  }))

const readJson = (file: string) => Effect.promise(async () => JSON.parse(await fs.readFile(file, "utf8")) as unknown)
const exists = (file: string) => Effect.promise(() => fs.access(file).then(() => true, () => false))
const writeRaw = (file: string, text: string) =>
  Effect.promise(async () => {
    await fs.mkdir(path.dirname(file), { recursive: true })
    await fs.writeFile(file, text)
  })

describe("PairingStore", () => {
  it.effect("creates a request with an 8-character code in OpenClaw's file layout, private to the owner", () =>
    withStore((home) => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const result = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE, name: "Alice" })
      assert.isTrue(result.created)
      assert.match(result.code ?? "", new RegExp(`^[${PAIRING_CODE_ALPHABET}]{8}$`))
      assert.deepStrictEqual(yield* readJson(pairingFile(home, "discord")), {
        version: 1,
        requests: [{ id: ALICE, code: result.code, createdAt: "2026-11-25T10:00:00.000Z", lastSeenAt: "2026-11-25T10:00:00.000Z", meta: { accountId: "default", name: "Alice" } }]
      })
      const file = yield* Effect.promise(() => fs.stat(pairingFile(home, "discord")))
      assert.strictEqual(file.mode & 0o777, 0o600)
      const dir = yield* Effect.promise(() => fs.stat(path.join(home, "credentials")))
      assert.strictEqual(dir.mode & 0o777, 0o700)
      const leftovers = (yield* Effect.promise(() => fs.readdir(path.join(home, "credentials")))).filter((name) => name.endsWith(".tmp"))
      assert.deepStrictEqual(leftovers, [])
    })))

  it.effect("gives a returning sender the same code and refreshes lastSeenAt, without a new reply", () =>
    withStore(() => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const first = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      yield* TestClock.adjust("10 minutes")
      const again = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE, name: "Alice" })
      assert.isFalse(again.created)
      assert.strictEqual(again.code, first.code)
      assert.strictEqual(again.request?.createdAt, "2026-11-25T10:00:00.000Z")
      assert.strictEqual(again.request?.lastSeenAt, "2026-11-25T10:10:00.000Z")
      assert.strictEqual(again.request?.meta.name, "Alice")
      assert.strictEqual((yield* pairing.list("discord")).length, 1)
    })))

  it.effect("holds at most 3 pending requests per channel account and refuses a 4th sender", () =>
    withStore(() => Effect.gen(function*() {
      const pairing = yield* PairingStore
      for (const sender of [ALICE, BOB, CAROL]) assert.isTrue((yield* pairing.upsertRequest({ channel: "discord", senderId: sender })).created)
      assert.deepStrictEqual(yield* pairing.upsertRequest({ channel: "discord", senderId: DAVE }), { created: false, code: undefined, request: undefined })
      assert.isFalse((yield* pairing.list("discord")).some((request) => request.id === DAVE))
      // Another account has its own three.
      assert.isTrue((yield* pairing.upsertRequest({ channel: "discord", accountId: "work", senderId: DAVE })).created)
      // A pending sender still gets its code back while the account is full.
      assert.isDefined((yield* pairing.upsertRequest({ channel: "discord", senderId: BOB })).code)
      // Once the first three expire, the fourth sender gets a code.
      yield* TestClock.adjust("1 hour")
      assert.isTrue((yield* pairing.upsertRequest({ channel: "discord", senderId: DAVE })).created)
    })))

  it.effect("expires a request one hour after it was created, however often the sender writes", () =>
    withStore(() => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const { code } = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      yield* TestClock.adjust("59 minutes")
      yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      yield* TestClock.adjust("59999 millis")
      assert.strictEqual((yield* pairing.list("discord")).length, 1)
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* pairing.list("discord"), [])
      const failure = yield* Effect.flip(pairing.approve("discord", code ?? ""))
      assert.strictEqual(failure._tag, "PairingCodeNotFound")
      const renewed = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      assert.isTrue(renewed.created)
    })))

  it.effect("approves by code in any case: the sender joins the allow list and the request goes", () =>
    withStore((home) => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const { code } = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      yield* pairing.upsertRequest({ channel: "discord", senderId: BOB })
      assert.isFalse(yield* pairing.isAllowed("discord", undefined, ALICE))
      const approved = yield* pairing.approve("discord", ` ${(code ?? "").toLowerCase()} `)
      assert.strictEqual(approved.id, ALICE)
      assert.isTrue(yield* pairing.isAllowed("discord", undefined, ALICE))
      assert.isTrue(yield* pairing.isAllowed("discord", "default", ` ${ALICE}`))
      assert.isFalse(yield* pairing.isAllowed("discord", undefined, BOB))
      assert.deepStrictEqual((yield* pairing.list("discord")).map((request) => request.id), [BOB])
      assert.deepStrictEqual(yield* readJson(allowFromFile(home, "discord", "default")), { version: 1, allowFrom: [ALICE] })
      assert.isTrue(yield* exists(path.join(home, "credentials", "discord-allowFrom.json")))
      const again = yield* Effect.flip(pairing.approve("discord", code ?? ""))
      assert.strictEqual(again._tag, "PairingCodeNotFound")
    })))

  it.effect("keeps each account's approvals in its own file; the default account uses the unsuffixed one", () =>
    withStore((home) => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const work = yield* pairing.upsertRequest({ channel: "discord", accountId: "Work", senderId: ALICE })
      const failure = yield* Effect.flip(pairing.approve("discord", work.code ?? "", "default"))
      assert.strictEqual(failure._tag, "PairingCodeNotFound")
      yield* pairing.approve("discord", work.code ?? "", "work")
      assert.isTrue(yield* pairing.isAllowed("discord", "work", ALICE))
      assert.isFalse(yield* pairing.isAllowed("discord", undefined, ALICE))
      assert.isTrue(yield* exists(path.join(home, "credentials", "discord-work-allowFrom.json")))
      assert.isFalse(yield* exists(path.join(home, "credentials", "discord-allowFrom.json")))
      // Without an account, a code is found in any account (codes are unique per channel).
      const other = yield* pairing.upsertRequest({ channel: "discord", accountId: "work", senderId: BOB })
      assert.strictEqual((yield* pairing.approve("discord", other.code ?? "")).id, BOB)
      assert.deepStrictEqual(yield* pairing.allowFrom("discord", "work"), [ALICE, BOB])
    })))

  it.effect("rejects a request: it goes, and the sender is not let in", () =>
    withStore(() => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const { code } = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      assert.strictEqual((yield* pairing.reject("discord", code ?? "")).id, ALICE)
      assert.deepStrictEqual(yield* pairing.list("discord"), [])
      assert.isFalse(yield* pairing.isAllowed("discord", undefined, ALICE))
      const failure = yield* Effect.flip(pairing.reject("discord", code ?? ""))
      assert.include(failure.message, JSON.stringify(code))
      // Rejection is not a ban: the sender can ask again.
      assert.isTrue((yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })).created)
    })))

  it.effect("names an unknown code in its error", () =>
    withStore(() => Effect.gen(function*() {
      const failure = yield* Effect.flip((yield* PairingStore).approve("discord", "NOPE2345"))
      assert.strictEqual(failure._tag, "PairingCodeNotFound")
      assert.include(failure.message, "NOPE2345")
    })))

  it.effect("draws codes unique among pending requests", () =>
    withStore(() => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const codes = new Set<string>()
      for (let account = 0; account < 40; account++) {
        for (const sender of [ALICE, BOB, CAROL]) {
          const { code } = yield* pairing.upsertRequest({ channel: "discord", accountId: `a${account}`, senderId: sender })
          assert.isDefined(code)
          codes.add(code ?? "")
        }
      }
      assert.strictEqual(codes.size, 120)
      assert.strictEqual((yield* pairing.list("discord")).length, 120)
    })))

  it.effect("serializes concurrent requests: exactly three of six senders get codes", () =>
    withStore((home) => Effect.gen(function*() {
      const pairing = yield* PairingStore
      const senders = ["1", "2", "3", "4", "5", "6"]
      const results = yield* Effect.all(senders.map((senderId) => pairing.upsertRequest({ channel: "discord", senderId })), { concurrency: "unbounded" })
      assert.strictEqual(results.filter((result) => result.created).length, 3)
      const file = (yield* readJson(pairingFile(home, "discord"))) as { requests: Array<unknown> }
      assert.strictEqual(file.requests.length, 3)
    })))

  it.effect("reads OpenClaw's files (no accountId means the default account) and trims a hand-edited excess to the 3 most recent", () =>
    withStore((home) => Effect.gen(function*() {
      const request = (id: string, minute: number) => ({
        id,
        code: `CODE${id}AAA`.slice(0, 8),
        createdAt: new Date(START - 30 * 60_000).toISOString(),
        lastSeenAt: new Date(START - 30 * 60_000 + minute * 60_000).toISOString(),
        meta: {}
      })
      yield* writeRaw(pairingFile(home, "discord"), JSON.stringify({ version: 1, requests: ["1", "2", "3", "4", "5"].map((id, i) => request(id, i)) }))
      const pairing = yield* PairingStore
      assert.strictEqual((yield* pairing.list("discord", "default")).length, 5)
      const result = yield* pairing.upsertRequest({ channel: "discord", senderId: "6" })
      assert.deepStrictEqual(result, { created: false, code: undefined, request: undefined })
      assert.deepStrictEqual((yield* pairing.list("discord")).map((r) => r.id).sort(), ["3", "4", "5"])
    })))

  it.effect("moves a damaged pending-requests file aside and starts over", () =>
    withStore((home) => Effect.gen(function*() {
      const file = pairingFile(home, "discord")
      yield* writeRaw(file, "{ this is not json")
      const pairing = yield* PairingStore
      assert.deepStrictEqual(yield* pairing.list("discord"), [])
      const backup = `${file}.corrupt.${START}`
      assert.strictEqual(yield* Effect.promise(() => fs.readFile(backup, "utf8")), "{ this is not json")
      assert.isFalse(yield* exists(file))
      assert.isTrue((yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })).created)
      // A second damaged file the same millisecond does not overwrite the first backup.
      yield* writeRaw(file, JSON.stringify({ version: 1, requests: [{ id: ALICE }] }))
      yield* pairing.list("discord")
      const backups = (yield* Effect.promise(() => fs.readdir(path.dirname(file)))).filter((name) => name.includes(".corrupt."))
      assert.strictEqual(backups.length, 2)
    })))

  it.effect("fails on a damaged allow list, naming the file and the problem, and leaves it alone", () =>
    withStore((home) => Effect.gen(function*() {
      const file = allowFromFile(home, "discord", "default")
      const damaged = JSON.stringify({ version: 1, allowFrom: [123456789012345680] })
      yield* writeRaw(file, damaged)
      const pairing = yield* PairingStore
      const failure = yield* Effect.flip(pairing.isAllowed("discord", undefined, ALICE))
      assert.strictEqual(failure._tag, "ChannelPairingStoreError")
      assert.include(failure.message, file)
      assert.include(failure.message, "allowFrom")
      const { code } = yield* pairing.upsertRequest({ channel: "discord", senderId: ALICE })
      const approveFailure = yield* Effect.flip(pairing.approve("discord", code ?? ""))
      assert.strictEqual(approveFailure._tag, "ChannelPairingStoreError")
      assert.strictEqual((yield* pairing.list("discord")).length, 1, "the request stays until the approval can be recorded")
      assert.strictEqual(yield* Effect.promise(() => fs.readFile(file, "utf8")), damaged)
      yield* writeRaw(file, "][")
      assert.include((yield* Effect.flip(pairing.allowFrom("discord"))).message, "not valid JSON")
    })))

  it.effect("refuses files from a newer version instead of moving them aside", () =>
    withStore((home) => Effect.gen(function*() {
      const file = pairingFile(home, "discord")
      yield* writeRaw(file, JSON.stringify({ version: 2, entries: {} }))
      const failure = yield* Effect.flip((yield* PairingStore).list("discord"))
      assert.strictEqual(failure._tag, "ChannelPairingStoreError")
      assert.include(failure.message, "version 2")
      assert.isTrue(yield* exists(file))
    })))

  it.effect("refuses channel and sender ids that could name other files", () =>
    withStore((home) => Effect.gen(function*() {
      const pairing = yield* PairingStore
      for (const channel of ["../x", "dis/cord", "", "a b"]) {
        const failure = yield* Effect.flip(pairing.upsertRequest({ channel, senderId: ALICE }))
        assert.strictEqual(failure._tag, "InvalidPairingTarget", channel)
      }
      for (const senderId of ["", "   ", "a b", "x\u0000"]) {
        const failure = yield* Effect.flip(pairing.upsertRequest({ channel: "discord", senderId }))
        assert.strictEqual(failure._tag, "InvalidPairingTarget", JSON.stringify(senderId))
      }
      assert.isFalse(yield* pairing.isAllowed("discord", undefined, ""))
      assert.isFalse(yield* exists(path.join(home, "credentials")))
      // Account ids are normalized into safe file-name parts.
      const { code } = yield* pairing.upsertRequest({ channel: "Discord", accountId: "../Evil", senderId: ALICE })
      yield* pairing.approve("discord", code ?? "")
      assert.isTrue(yield* exists(path.join(home, "credentials", "discord-evil-allowFrom.json")))
    })))

  it.effect("works through Paths under the state directory", () =>
    Effect.scoped(Effect.gen(function*() {
      const home = yield* tempHome
      yield* Effect.gen(function*() {
        yield* (yield* PairingStore).upsertRequest({ channel: "discord", senderId: ALICE })
      }).pipe(Effect.provide(PairingStore.layer.pipe(Layer.provide(Paths.layerFrom({ home })))))
      assert.isTrue(yield* exists(path.join(home, "credentials", "discord-pairing.json")))
    })))
})

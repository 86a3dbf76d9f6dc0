import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { AppConfig } from "../../../src/config/AppConfig.ts"
import { GatewayAuth } from "../../../src/gateway/auth/GatewayAuth.ts"
import * as GatewayAuthLayer from "../../../src/gateway/auth/GatewayAuthLayer.ts"
import * as TokenFile from "../../../src/gateway/auth/TokenFile.ts"
import { tempDir } from "../../support/TestApp.ts"
import { authLayer, buildFailure, collectLogs, decodeConfig } from "./AuthHarness.ts"

const mode = async (file: string) => (await fs.stat(file)).mode & 0o777

describe("token mode without a configured token", () => {
  it.effect("generates a token on first run in <state>/gateway.token (0600), logs the path but never the token, and reuses it", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const file = path.join(home, "gateway.token")
      const logs = collectLogs()
      const first = yield* Effect.scoped(Effect.gen(function*() {
        const auth = yield* GatewayAuth
        const token = (yield* Effect.promise(() => fs.readFile(file, "utf8"))).trim()
        assert.match(token, /^[A-Za-z0-9_-]{43}$/)
        assert.strictEqual(yield* Effect.promise(() => mode(file)), 0o600)
        const ok = yield* auth.check({ token }, "10.0.0.5")
        assert.deepStrictEqual(ok, { method: "token", clientAddress: "10.0.0.5", loopback: false })
        const bad = yield* Effect.flip(auth.check({ token: "nope" }, "10.0.0.5"))
        assert.strictEqual(bad.reason, "mismatch")
        return token
      }).pipe(Effect.provide(authLayer(home, decodeConfig(), logs))))
      const startup = logs.lines.join("\n")
      assert.include(startup, file)
      assert.include(startup, `cat ${file}`)
      assert.notInclude(startup, first)

      const again = collectLogs()
      const second = yield* Effect.scoped(Effect.gen(function*() {
        const auth = yield* GatewayAuth
        yield* auth.check({ token: first }, "10.0.0.5")
        return (yield* Effect.promise(() => fs.readFile(file, "utf8"))).trim()
      }).pipe(Effect.provide(authLayer(home, decodeConfig(), again))))
      assert.strictEqual(second, first, "the token is reused on later starts")
      assert.include(again.lines.join("\n"), `using the gateway token stored in ${file}`)
    }))

  it.effect("a configured token (gateway.auth.token / BEAMCLAW_GATEWAY_TOKEN) wins and no file is created", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.scoped(Effect.gen(function*() {
        const auth = yield* GatewayAuth
        yield* auth.check({ token: "configured-secret" }, "127.0.0.1")
        assert.strictEqual((yield* Effect.flip(auth.check({ token: "x" }, "127.0.0.1"))).reason, "mismatch")
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { token: "configured-secret" } })))))
      const exists = yield* Effect.promise(() => fs.stat(path.join(home, "gateway.token")).then(() => true, () => false))
      assert.isFalse(exists)
    }))

  it.effect("two starts racing on one state directory end up with the same token", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const results = yield* Effect.all(Array.from({ length: 8 }, () => TokenFile.loadOrCreate(home)), { concurrency: "unbounded" })
      assert.strictEqual(new Set(results.map((r) => r.token)).size, 1)
      assert.strictEqual(results.filter((r) => r.created).length, 1)
      const leftovers = (yield* Effect.promise(() => fs.readdir(home))).filter((name) => name !== "gateway.token")
      assert.deepStrictEqual(leftovers, [], "no temp files are left behind")
    }))

  it.effect("a token file readable by others is tightened to 0600; an empty one stops the start with a clear error", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const file = path.join(home, "gateway.token")
      yield* Effect.promise(() => fs.writeFile(file, "my-old-token\n", { mode: 0o644 }))
      yield* Effect.promise(() => fs.chmod(file, 0o644))
      const logs = collectLogs()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* (yield* GatewayAuth).check({ token: "my-old-token" }, "10.0.0.1")
      }).pipe(Effect.provide(authLayer(home, decodeConfig(), logs))))
      assert.strictEqual(yield* Effect.promise(() => mode(file)), 0o600)
      assert.include(logs.lines.join("\n"), "readable by other users")

      yield* Effect.promise(() => fs.writeFile(file, "  \n"))
      const failure = yield* buildFailure(home, decodeConfig())
      assert.include(failure, `${file} does not hold a token`)
    }))
})

describe("startup refusals", () => {
  it.effect("password mode without a password", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const failure = yield* buildFailure(home, decodeConfig({ auth: { mode: "password" } }))
      assert.strictEqual(failure, "gateway auth mode is password, but no password is configured (set gateway.auth.password, or use gateway.auth.mode token)")
    }))

  it.effect("mode none is refused unless the gateway binds to loopback, naming gateway.bind", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      const lan = yield* buildFailure(home, decodeConfig({ auth: { mode: "none" }, bind: "lan" }))
      assert.include(lan, "gateway.auth.mode is none")
      assert.include(lan, "gateway.bind is lan (0.0.0.0)")
      const custom = yield* buildFailure(home, decodeConfig({ auth: { mode: "none" }, bind: "custom", customBindHost: "192.168.1.10" }))
      assert.include(custom, "gateway.bind is custom (192.168.1.10)")
      assert.isUndefined(yield* buildFailure(home, decodeConfig({ auth: { mode: "none" } })))
      assert.isUndefined(yield* buildFailure(home, decodeConfig({ auth: { mode: "none" }, bind: "custom", customBindHost: "127.0.0.1" })))
    }))

  it.effect("custom bind needs an IPv4 customBindHost, as OpenClaw", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      assert.include(yield* buildFailure(home, decodeConfig({ bind: "custom", auth: { token: "t" } })), "gateway.customBindHost is not set")
      assert.include(yield* buildFailure(home, decodeConfig({ bind: "custom", customBindHost: "example.com", auth: { token: "t" } })), "must be an IPv4 address (got \"example.com\")")
      assert.isUndefined(yield* buildFailure(home, decodeConfig({ bind: "custom", customBindHost: "10.1.2.3", auth: { token: "t" } })))
    }))

  it("exposureProblem accepts the defaults and lan with a secret", () => {
    assert.isUndefined(GatewayAuthLayer.exposureProblem(decodeConfig()))
    assert.isUndefined(GatewayAuthLayer.exposureProblem(decodeConfig({ bind: "lan", auth: { mode: "password", password: "p" } })))
  })
})

describe("checks over the live config", () => {
  const remote = "203.0.113.7"

  it.effect("none mode lets loopback-bound gateways through; a reload to none on lan is refused per request", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.gen(function*() {
        const auth = yield* GatewayAuth
        const config = yield* AppConfig
        assert.deepStrictEqual(yield* auth.check({}, "127.0.0.1"), { method: "none", clientAddress: "127.0.0.1", loopback: true })
        yield* config.set(decodeConfig({ auth: { mode: "none" }, bind: "lan" }))
        const refused = yield* Effect.flip(auth.check({}, remote))
        assert.strictEqual(refused.reason, "not_allowed")
        assert.include(refused.message, "gateway.bind")
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { mode: "none" } }))), Effect.scoped)
    }))

  it.effect("password mode; either field may carry the secret; Bearer works for both modes", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.gen(function*() {
        const auth = yield* GatewayAuth
        assert.strictEqual(yield* auth.mode, "password")
        assert.strictEqual((yield* auth.check({ password: "pw" }, remote)).method, "password")
        assert.strictEqual((yield* auth.check({ token: "pw" }, remote)).method, "password")
        assert.strictEqual((yield* auth.checkBearer("Bearer pw", remote)).method, "password")
        assert.strictEqual((yield* Effect.flip(auth.checkBearer(undefined, remote))).reason, "missing")
        assert.strictEqual((yield* Effect.flip(auth.checkBearer("Basic cHc=", remote))).reason, "missing")
        assert.strictEqual((yield* Effect.flip(auth.checkBearer("Bearer pW", remote))).reason, "mismatch")
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { mode: "password", password: "pw" } }))), Effect.scoped)
    }))

  it.effect("failed attempts are rate-limited per address with retryAfterMs; success resets; missing does not count; loopback exempt", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.gen(function*() {
        const auth = yield* GatewayAuth
        const wrong = (address: string) => Effect.flip(auth.check({ token: "wrong" }, address))
        for (let i = 0; i < 9; i++) assert.strictEqual((yield* wrong(remote)).reason, "mismatch")
        // A success resets the counter...
        yield* auth.check({ token: "secret" }, remote)
        for (let i = 0; i < 9; i++) yield* wrong(remote)
        // ...and missing credentials are not counted.
        for (let i = 0; i < 5; i++) assert.strictEqual((yield* Effect.flip(auth.check({}, remote))).reason, "missing")
        assert.strictEqual((yield* wrong(remote)).reason, "mismatch")
        const limited = yield* Effect.flip(auth.check({ token: "secret" }, remote))
        assert.strictEqual(limited.reason, "rate_limited")
        assert.strictEqual(limited.retryAfterMs, 300_000)
        assert.strictEqual((yield* Effect.flip(auth.checkBearer("Bearer secret", remote))).reason, "rate_limited")
        // Other addresses and loopback are unaffected.
        yield* auth.check({ token: "secret" }, "203.0.113.8")
        for (let i = 0; i < 20; i++) yield* wrong("127.0.0.1")
        yield* auth.check({ token: "secret" }, "127.0.0.1")
        yield* TestClock.adjust("300 seconds")
        assert.strictEqual((yield* auth.check({ token: "secret" }, remote)).method, "token")
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { token: "secret" } }))), Effect.scoped)
    }))

  it.effect("rateLimit settings come from gateway.auth.rateLimit", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.gen(function*() {
        const auth = yield* GatewayAuth
        yield* Effect.flip(auth.check({ token: "wrong" }, remote))
        yield* Effect.flip(auth.check({ token: "wrong" }, remote))
        const limited = yield* Effect.flip(auth.check({ token: "secret" }, remote))
        assert.deepStrictEqual([limited.reason, limited.retryAfterMs], ["rate_limited", 1_000])
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { token: "secret", rateLimit: { maxAttempts: 2, lockoutMs: 1_000 } } }))), Effect.scoped)
    }))

  it.effect("a reload into token mode without a token generates the token file then", () =>
    Effect.gen(function*() {
      const home = yield* tempDir()
      yield* Effect.gen(function*() {
        const auth = yield* GatewayAuth
        yield* (yield* AppConfig).set(decodeConfig())
        yield* Effect.flip(auth.check({ token: "x" }, "127.0.0.1"))
        const token = (yield* Effect.promise(() => fs.readFile(path.join(home, "gateway.token"), "utf8"))).trim()
        assert.strictEqual((yield* auth.check({ token }, "127.0.0.1")).method, "token")
      }).pipe(Effect.provide(authLayer(home, decodeConfig({ auth: { mode: "password", password: "pw" } }))), Effect.scoped)
    }))
})

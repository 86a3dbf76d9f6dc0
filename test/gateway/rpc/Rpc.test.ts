import { createHash } from "node:crypto"
import * as fs from "node:fs/promises"
import { assert, describe, layer } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Stream } from "effect"
import { RpcClient } from "effect/rpc"
import { parse as parseYaml } from "yaml"
import { BeamclawClient, type SessionEvent, type TurnEvent } from "../../../src/client/index.ts"
import { errorReply } from "../../support/FakeAnthropic.ts"
import * as RpcServer from "./RpcServer.ts"
import { PairingStore } from "../../../src/channels/PairingStore.ts"

const { RpcTestServer } = RpcServer

const clientWith = (token: (server: RpcServer.RpcTestServerShape) => string | undefined) =>
  Layer.unwrap(Effect.gen(function*() {
    const server = yield* RpcTestServer
    return BeamclawClient.layer({ url: server.url, token: token(server) })
  }))

const authorised = clientWith((server) => server.token)

const collect = <E>(stream: Stream.Stream<TurnEvent, E>) => Stream.runCollect(stream).pipe(Effect.map((chunk) => [...chunk]))

const textOf = (events: ReadonlyArray<TurnEvent>) => events.flatMap((event) => event._tag === "TextDelta" ? [event.text] : []).join("")

const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex")

const readConfigFile = Effect.gen(function*() {
  const server = yield* RpcTestServer
  return yield* Effect.promise(() => fs.readFile(server.configFile))
})

layer(RpcServer.layer, { excludeTestServices: true, timeout: "20 seconds" })("typed RPC at /rpc", (it) => {
  describe("sessions", () => {
    it.effect("Send streams the turn; History and ListSessions show it", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        const events = yield* collect(client.Send({ sessionKey: "rpc-send", text: "hello", runId: "run-1" }))
        assert.deepStrictEqual(events.map((event) => event._tag).filter((tag) => tag !== "TextDelta"), ["TurnStarted", "TurnCompleted"])
        const started = events[0]
        assert.strictEqual(started?._tag === "TurnStarted" ? started.sessionKey : undefined, "agent:main:rpc-send")
        assert.strictEqual(textOf(events), "echo: hello")
        const completed = events.at(-1)
        assert.strictEqual(completed?._tag === "TurnCompleted" ? completed.runId : undefined, "run-1")

        const history = yield* client.History({ sessionKey: "rpc-send" })
        assert.strictEqual(history.sessionKey, "agent:main:rpc-send")
        const roles = history.entries.flatMap((entry) => entry.type === "message" ? [entry.message.role] : [])
        assert.deepStrictEqual(roles, ["user", "assistant"])
        const limited = yield* client.History({ sessionKey: "rpc-send", limit: 1 })
        assert.strictEqual(limited.entries.length, 1)

        const rows = yield* client.ListSessions({})
        const row = rows.find((candidate) => candidate.key === "agent:main:rpc-send")
        assert.strictEqual(row?.entry.turnCount, 1)
        assert.strictEqual(row?.live, true)
        assert.isTrue((yield* client.ListSessions({ agentId: "other" })).every((candidate) => candidate.key.startsWith("agent:other:")))
      }).pipe(Effect.provide(authorised)))

    it.effect("a provider failure reaches the client as a typed ProviderError", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const client = yield* BeamclawClient
        server.fake.push(errorReply(400, "invalid_request_error", "prompt is too long"))
        const error = yield* collect(client.Send({ sessionKey: "rpc-fail", text: "hello" })).pipe(Effect.flip)
        assert.strictEqual(error._tag, "ProviderError")
        assert.include(error.message, "prompt is too long")
      }).pipe(Effect.provide(authorised)))

    it.effect("interrupting Send cancels the model call", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const client = yield* BeamclawClient
        server.fake.push({ kind: "hang" })
        const before = server.fake.requests.length
        const sending = yield* collect(client.Send({ sessionKey: "rpc-cancel", text: "wait" })).pipe(Effect.forkChild)
        const request = yield* Effect.gen(function*() {
          while (server.fake.requests.length <= before) yield* Effect.sleep("10 millis")
          return server.fake.requests[before]
        }).pipe(Effect.timeout("5 seconds"))
        // The model call is running; the client stops listening, so the upstream request must be aborted.
        yield* Fiber.interrupt(sending)
        const closed = yield* Effect.promise(() => request?.closed ?? Promise.resolve("missing"))
        assert.strictEqual(closed, "aborted")
      }).pipe(Effect.provide(authorised)))

    it.effect("Reset starts a fresh session", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        yield* collect(client.Send({ sessionKey: "rpc-reset", text: "one" }))
        const before = (yield* client.ListSessions({})).find((row) => row.key === "agent:main:rpc-reset")
        const reset = yield* client.Reset({ sessionKey: "rpc-reset" })
        assert.strictEqual(reset.sessionKey, "agent:main:rpc-reset")
        assert.notStrictEqual(reset.entry.sessionId, before?.entry.sessionId)
        assert.strictEqual(reset.entry.turnCount, 0)
        assert.strictEqual((yield* client.History({ sessionKey: "rpc-reset" })).entries.length, 0)
      }).pipe(Effect.provide(authorised)))

    it.effect("bad session keys, unknown agents and empty text are typed errors", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        const badKey = yield* collect(client.Send({ sessionKey: "agent:main:bad key", text: "hi" })).pipe(Effect.flip)
        assert.strictEqual(badKey._tag, "InvalidSessionKey")
        assert.include(badKey.message, "bad key")
        assert.strictEqual((yield* client.History({ sessionKey: "agent::" }).pipe(Effect.flip))._tag, "InvalidSessionKey")
        assert.strictEqual((yield* client.Reset({ sessionKey: "agent:main:a::b" }).pipe(Effect.flip))._tag, "InvalidSessionKey")
        assert.strictEqual((yield* Stream.runDrain(client.Subscribe({ sessionKey: "agent:main:" })).pipe(Effect.flip))._tag, "InvalidSessionKey")
        const unknownAgent = yield* collect(client.Send({ agentId: "nobody", text: "hi" })).pipe(Effect.flip)
        assert.strictEqual(unknownAgent._tag, "UnknownAgent")
        assert.strictEqual((yield* client.History({ sessionKey: "agent:nobody:main" }).pipe(Effect.flip))._tag, "UnknownAgent")
        assert.strictEqual((yield* client.ListSessions({ agentId: "nobody" }).pipe(Effect.flip))._tag, "UnknownAgent")
        const empty = yield* collect(client.Send({ text: "   " })).pipe(Effect.flip)
        assert.strictEqual(empty._tag, "InvalidRequest")
      }).pipe(Effect.provide(authorised)))

    it.effect("Subscribe sees turns sent by another client, and failures", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const watcher = yield* BeamclawClient
        const subscribed = yield* Deferred.make<void>()
        const watching = yield* watcher.Subscribe({ sessionKey: "rpc-watch" }).pipe(
          Stream.tap((event) => event._tag === "Subscribed" ? Deferred.succeed(subscribed, undefined) : Effect.void),
          Stream.takeUntil((event) => event._tag === "TurnFailed"),
          Stream.runCollect,
          Effect.forkChild
        )
        yield* Deferred.await(subscribed)
        const sender = BeamclawClient.layer({ url: server.url, token: server.token })
        yield* Effect.gen(function*() {
          const client = yield* BeamclawClient
          yield* collect(client.Send({ sessionKey: "RPC-WATCH", text: "watched", runId: "watched-run" }))
          server.fake.push(errorReply(400, "invalid_request_error", "rejected"))
          yield* collect(client.Send({ sessionKey: "rpc-watch", text: "fails", runId: "failing-run" })).pipe(Effect.ignore)
        }).pipe(Effect.provide(sender))
        const seen: ReadonlyArray<SessionEvent> = [...yield* Fiber.join(watching).pipe(Effect.timeout("5 seconds"))]
        assert.deepStrictEqual(seen[0], { _tag: "Subscribed", sessionKey: "agent:main:rpc-watch" })
        const firstRun = seen.flatMap((event) => event._tag === "Turn" && event.runId === "watched-run" ? [event.event] : [])
        assert.strictEqual(firstRun[0]?._tag, "TurnStarted")
        assert.strictEqual(firstRun.at(-1)?._tag, "TurnCompleted")
        assert.strictEqual(textOf(firstRun), "echo: watched")
        const failed = seen.at(-1)
        assert.strictEqual(failed?._tag, "TurnFailed")
        assert.strictEqual(failed?._tag === "TurnFailed" ? failed.error : undefined, "ProviderError")
        assert.strictEqual(failed?._tag === "TurnFailed" ? failed.runId : undefined, "failing-run")
      }).pipe(Effect.provide(authorised)))

    it.effect("CleanupSessions runs a maintenance pass: typed summaries, a dry run that keeps live sessions, typed errors for bad targets", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const client = yield* BeamclawClient
        yield* collect(client.Send({ sessionKey: "rpc-cleanup", text: "hi" }))
        const rows = yield* client.ListSessions({})
        // The transcript of a live session vanishes: fixMissing would drop its entry, but a live session is never touched.
        const row = rows.find((candidate) => candidate.key === "agent:main:rpc-cleanup")
        yield* Effect.promise(() => fs.rm(`${server.home}/agents/main/sessions/${row?.entry.sessionId ?? "none"}.jsonl`))
        const [summary, ...more] = yield* client.CleanupSessions({ dryRun: true, fixMissing: true })
        assert.strictEqual(more.length, 0, "the default agent only")
        assert.strictEqual(summary?.agentId, "main")
        assert.strictEqual(summary?.storePath, `${server.home}/agents/main/sessions/sessions.json`)
        assert.isTrue(summary?.dryRun)
        assert.strictEqual(summary?.mode, "enforce")
        assert.strictEqual(summary?.beforeCount, rows.filter((candidate) => candidate.key.startsWith("agent:main:")).length)
        assert.deepStrictEqual(summary?.actions, [], "nothing old, nothing over the cap, and the live session is kept")
        assert.isFalse(summary?.diskBudget?.overBudget)
        const all = yield* client.CleanupSessions({ allAgents: true, dryRun: true })
        assert.include(all.map((s) => s.agentId), "main")
        assert.strictEqual((yield* client.CleanupSessions({ agentId: "nobody" }).pipe(Effect.flip))._tag, "UnknownAgent")
        assert.strictEqual((yield* client.CleanupSessions({ agentId: "main", allAgents: true }).pipe(Effect.flip))._tag, "InvalidRequest")
        assert.strictEqual((yield* client.CleanupSessions({ activeKey: "agent:main:a::b" }).pipe(Effect.flip))._tag, "InvalidSessionKey")
      }).pipe(Effect.provide(authorised)))

    it.effect("Status reports uptime, sessions, actors and memory", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        yield* collect(client.Send({ sessionKey: "rpc-status", text: "hi" }))
        const status = yield* client.Status()
        assert.strictEqual(status.pid, process.pid)
        assert.isAbove(status.uptimeMs, 0)
        assert.isAtLeast(status.sessions, 1)
        assert.isAtLeast(status.actors.live, 1)
        assert.isAbove(status.memory.rss, 0)
        assert.match(status.version, /^\d+\.\d+\.\d+/)
      }).pipe(Effect.provide(authorised)))
  })

  describe("channels", () => {
    it.effect("ChannelsStatus lists no accounts when no channel is enabled; pairing is listed, approved and rejected over RPC", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        assert.deepStrictEqual(yield* client.ChannelsStatus(), [])
        const store = yield* PairingStore
        const first = yield* store.upsertRequest({ channel: "discord", senderId: "111", name: "alice" })
        const second = yield* store.upsertRequest({ channel: "discord", senderId: "222", name: "bob" })
        const pending = yield* client.PairingList({ channel: "discord" })
        assert.deepStrictEqual(pending.map((request) => request.id), ["111", "222"])
        const approved = yield* client.PairingApprove({ channel: "discord", code: (first.code ?? "").toLowerCase() })
        assert.strictEqual(approved.id, "111")
        assert.isTrue(yield* store.isAllowed("discord", undefined, "111"))
        const rejected = yield* client.PairingReject({ channel: "discord", code: second.code ?? "" })
        assert.strictEqual(rejected.id, "222")
        assert.isFalse(yield* store.isAllowed("discord", undefined, "222"))
        const unknown = yield* Effect.flip(client.PairingApprove({ channel: "discord", code: "ZZZZZZZZ" }))
        assert.strictEqual(unknown._tag, "PairingCodeNotFound")
        const bad = yield* Effect.flip(client.PairingList({ channel: "../etc" }))
        assert.strictEqual(bad._tag, "InvalidPairingTarget")
      }).pipe(Effect.provide(authorised)))
  })

  describe("auth", () => {
    it.effect("a wrong token fails every call with AuthFailed", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        const error = yield* client.Status().pipe(Effect.flip)
        assert.strictEqual(error._tag, "AuthFailed")
        assert.strictEqual(error._tag === "AuthFailed" ? error.reason : undefined, "mismatch")
        const sendError = yield* collect(client.Send({ text: "hi" })).pipe(Effect.flip)
        assert.strictEqual(sendError._tag, "AuthFailed")
      }).pipe(Effect.provide(clientWith(() => "wrong-token"))))

    it.effect("no token fails with AuthFailed missing; a per-request header works", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const client = yield* BeamclawClient
        const error = yield* client.ListSessions({}).pipe(Effect.flip)
        assert.strictEqual(error._tag === "AuthFailed" ? error.reason : error._tag, "missing")
        const rows = yield* client.ListSessions({}).pipe(RpcClient.withHeaders({ authorization: `Bearer ${server.token}` }))
        assert.isArray(rows)
      }).pipe(Effect.provide(clientWith(() => undefined))))

    it.effect("a request cannot claim another connection's address", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        const error = yield* client.Status().pipe(RpcClient.withHeaders({ "x-beamclaw-rpc-connection": "forged" }), Effect.flip)
        assert.strictEqual(error._tag === "AuthFailed" ? error.reason : error._tag, "not_allowed")
        assert.isAbove((yield* client.Status()).uptimeMs, 0)
      }).pipe(Effect.provide(authorised)))

    it.effect("plain HTTP on /rpc is refused with 426", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const response = yield* Effect.promise(() => fetch(`${server.httpUrl}/rpc`))
        assert.strictEqual(response.status, 426)
        assert.strictEqual(response.headers.get("upgrade"), "websocket")
        const post = yield* Effect.promise(() => fetch(`${server.httpUrl}/rpc`, { method: "POST", body: "{}" }))
        assert.strictEqual(post.status, 405)
      }))

    it.effect("a token in the URL is refused by the client", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const error = yield* Effect.gen(function*() {
          yield* BeamclawClient
        }).pipe(Effect.provide(BeamclawClient.layer({ url: `${server.url}?token=${server.token}` })), Effect.flip)
        assert.strictEqual(error._tag, "ClientConfigError")
      }))
  })

  describe("config", () => {
    it.effect("GetConfig redacts secrets and hashes the file", () =>
      Effect.gen(function*() {
        const client = yield* BeamclawClient
        const snapshot = yield* client.GetConfig()
        const server = yield* RpcTestServer
        assert.strictEqual(snapshot.path, server.configFile)
        assert.isTrue(snapshot.exists)
        assert.strictEqual(snapshot.hash, sha256(yield* readConfigFile))
        const text = JSON.stringify(snapshot.config)
        assert.notInclude(text, server.token)
        assert.notInclude(text, "sk-test")
        assert.include(text, "<redacted>")
      }).pipe(Effect.provide(authorised)))

    it.effect("PatchConfig checks the base hash, validates, writes and reloads", () =>
      Effect.gen(function*() {
        const server = yield* RpcTestServer
        const client = yield* BeamclawClient
        const snapshot = yield* client.GetConfig()
        const original = yield* readConfigFile

        const noHash = yield* client.PatchConfig({ patch: { logging: { level: "debug" } } }).pipe(Effect.flip)
        assert.strictEqual(noHash._tag, "ConfigConflict")
        assert.include(noHash.message, "base hash required")
        const stale = yield* client.PatchConfig({ patch: { logging: { level: "debug" } }, baseHash: "0".repeat(64) }).pipe(Effect.flip)
        assert.strictEqual(stale._tag, "ConfigConflict")
        assert.strictEqual(stale._tag === "ConfigConflict" ? stale.currentHash : undefined, snapshot.hash)
        const invalid = yield* client.PatchConfig({ patch: { gateway: { port: "not a port" } }, baseHash: snapshot.hash ?? "" }).pipe(Effect.flip)
        assert.strictEqual(invalid._tag, "ConfigInvalid")
        assert.isTrue(invalid._tag === "ConfigInvalid" && invalid.issues.some((issue) => issue.path === "gateway.port"))
        const reserved = yield* client.PatchConfig({ patch: JSON.parse("{\"__proto__\":{\"x\":1}}"), baseHash: snapshot.hash ?? "" }).pipe(Effect.flip)
        assert.strictEqual(reserved._tag, "ConfigInvalid")
        assert.deepStrictEqual(yield* readConfigFile, original, "nothing is written by a refused patch")

        const patched = yield* client.PatchConfig({
          patch: {
            logging: { level: "debug" },
            agents: { list: [{ id: "third", name: "Third" }] },
            // Echoing the redacted placeholder keeps the secret.
            gateway: { auth: { token: "<redacted>" } }
          },
          baseHash: snapshot.hash ?? ""
        })
        assert.includeMembers([...patched.changed], ["logging.level", "agents.list"])
        const written = yield* readConfigFile
        assert.strictEqual(patched.hash, sha256(written))
        const text = written.toString("utf8")
        assert.isTrue(text.startsWith(RpcServer.CONFIG_COMMENT), "the YAML comment survives")
        const parsed = parseYaml(text)
        assert.strictEqual(parsed.logging.level, "debug")
        assert.deepStrictEqual(parsed.agents.list.map((agent: { id: string }) => agent.id), ["main", "other", "third"])
        assert.strictEqual(parsed.gateway.auth.token, server.token)
        // The live config changed: the new agent is usable at once.
        const events = yield* collect(client.Send({ agentId: "third", text: "new agent" }))
        assert.strictEqual(textOf(events), "echo: new agent")
        assert.strictEqual((yield* client.GetConfig()).hash, patched.hash)

        const replaced = yield* client.PatchConfig({ patch: { agents: { list: [{ id: "main", default: true }, { id: "other" }] } }, baseHash: patched.hash, replacePaths: ["agents.list"] })
        assert.deepStrictEqual(parseYaml((yield* readConfigFile).toString("utf8")).agents.list.map((agent: { id: string }) => agent.id), ["main", "other"])
        const deleted = yield* client.PatchConfig({ patch: { logging: null }, baseHash: replaced.hash })
        assert.include([...deleted.changed], "logging.level")
        assert.notProperty(parseYaml((yield* readConfigFile).toString("utf8")), "logging")
      }).pipe(Effect.provide(authorised)))
  })
})

/**
 * Webhooks, as OpenClaw serves them: POST <hooks.path>/wake and
 * <hooks.path>/agent (default /hooks), on only when hooks.enabled. The hook
 * token travels in a header (Authorization: Bearer, x-beamclaw-token or
 * x-openclaw-token), never the query string; failed attempts are throttled
 * per client address. /agent runs an isolated turn in a fresh
 * `hook:<uuid>` session and answers with its run id at once (or, with
 * waitForCompletion, when it ends). /wake is accepted and recorded, but
 * heartbeats do not exist yet, so nothing runs; the response says so.
 *
 * hooks.path is read when the server starts; the other keys on every request.
 */
import { createHash, randomUUID } from "node:crypto"
import { Deferred, Effect, Layer, Result, Stream } from "effect"
import { DetachedRuns } from "../../runtime/DetachedRuns.ts"
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "effect/http"
import { AgentDirectory } from "../../agent/AgentDirectory.ts"
import { AppConfig } from "../../config/AppConfig.ts"
import { revealSecret } from "../../config/ConfigSchema.ts"
import { SessionEvents } from "../rpc/SessionEvents.ts"
import { safeEqual } from "../auth/GatewayAuthLayer.ts"
import { clientAddress, header, readJson } from "../openai/HttpBody.ts"
import { type AgentRequest, parseAgent, parseWake, type WakeMode, wrapExternal } from "./HookRequest.ts"

export const HOOK_MAX_BODY_BYTES = 256 * 1024
const FAILURE_LIMIT = 20
const FAILURE_WINDOW_MS = 60_000
const REPLAY_TTL_MS = 5 * 60_000
const REPLAY_MAX = 1000
const WAKES_KEPT = 100

export interface Completion {
  readonly status: "ok" | "error"
  readonly replyDisposition: "visible" | "empty"
}

export interface RecordedWake {
  readonly text: string
  readonly mode: WakeMode
  readonly agentId: string
  readonly at: number
}

/** `/hooks/` → `/hooks`; a missing leading slash is added. */
export const normalizeHookPath = (path: string): `/${string}` => {
  const trimmed = path.trim().replace(/^\/+|\/+$/g, "")
  return `/${trimmed}`
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  HttpServerResponse.jsonUnsafe(body, { status, headers: { "cache-control": "no-store", ...headers } })

const failure = (status: number, error: string) => json(status, { ok: false, error })

const hasQueryToken = (url: string): boolean => {
  const query = url.split("?")[1]
  return query !== undefined && new URLSearchParams(query).has("token")
}

const presentedToken = (request: HttpServerRequest.HttpServerRequest): string | undefined => {
  const headers = request.headers
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization?.trim() ?? "")?.[1]?.trim()
  if (bearer !== undefined && bearer !== "") return bearer
  return header(headers, "x-beamclaw-token", "x-openclaw-token")
}

const sha = (text: string) => createHash("sha256").update(text).digest("hex")

export const layer = Layer.unwrap(Effect.gen(function*() {
  const appConfig = yield* AppConfig
  const base = normalizeHookPath((yield* appConfig.get).hooks.path)
  if (base === "/") {
    yield* Effect.logWarning("hooks.path may not be \"/\"; the webhooks are not served")
    return Layer.empty
  }
  const detached = yield* DetachedRuns
  const failures = new Map<string, Array<number>>()
  const replays = new Map<string, { readonly runId: string; readonly done: Deferred.Deferred<Completion>; expiresAt: number }>()
  const wakes: Array<RecordedWake> = []

  /** Undefined when the token is good; otherwise the response to send. */
  const authenticate = (request: HttpServerRequest.HttpServerRequest, expected: string) => {
    const address = clientAddress(request)
    const presented = presentedToken(request)
    if (presented !== undefined && safeEqual(presented, expected)) {
      failures.delete(address)
      return undefined
    }
    const now = Date.now()
    const recent = (failures.get(address) ?? []).filter((at) => at > now - FAILURE_WINDOW_MS)
    if (recent.length >= FAILURE_LIMIT) {
      const retryAfter = Math.max(1, Math.ceil(((recent[0] ?? now) + FAILURE_WINDOW_MS - now) / 1000))
      failures.set(address, recent)
      return HttpServerResponse.text("Too Many Requests", { status: 429, headers: { "retry-after": String(retryAfter) } })
    }
    recent.push(now)
    failures.set(address, recent)
    // Bounded memory under a spray of addresses: forget the stalest first.
    if (failures.size > 10_000) {
      for (const [key, times] of failures) if ((times.at(-1) ?? 0) <= now - FAILURE_WINDOW_MS) failures.delete(key)
    }
    return HttpServerResponse.text("Unauthorized", { status: 401, headers: { "www-authenticate": "Bearer" } })
  }

  const sweepReplays = (now: number) => {
    for (const [key, entry] of replays) if (entry.expiresAt <= now) replays.delete(key)
    while (replays.size > REPLAY_MAX) {
      const oldest = replays.keys().next()
      if (oldest.done === true) break
      replays.delete(oldest.value)
    }
  }

  const runAgent = (hook: AgentRequest, agentId: string) =>
    Effect.gen(function*() {
      const sessions = yield* SessionEvents
      const runId = randomUUID()
      const sessionKey = `agent:${agentId}:hook:${randomUUID()}`
      const done = yield* Deferred.make<Completion>()
      const turn = sessions.send(sessionKey, { runId, text: wrapExternal(hook.name, hook.message) }).pipe(
        Stream.runFold(() => "", (text, event) => event._tag === "TurnCompleted" ? event.text : text),
        Effect.matchEffect({
          onFailure: (error) =>
            Effect.logWarning(`hook ${JSON.stringify(hook.name)} run ${runId} in ${sessionKey} failed: ${error.message}`).pipe(
              Effect.as<Completion>({ status: "error", replyDisposition: "empty" })
            ),
          onSuccess: (text) =>
            Effect.logInfo(`hook ${JSON.stringify(hook.name)} run ${runId} in ${sessionKey} finished (${text.length} chars; channel delivery is not built yet, so the reply stays in the session)`).pipe(
              Effect.as<Completion>({ status: "ok", replyDisposition: text.trim() === "" ? "empty" : "visible" })
            )
        }),
        Effect.flatMap((completion) => Deferred.succeed(done, completion))
      )
      // The run belongs to the gateway, not to the request: it goes on if the caller hangs up.
      yield* detached.fork(turn)
      return { runId, done }
    })

  const handle = (sub: string) =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const config = (yield* appConfig.get).hooks
      if (!config.enabled) return HttpServerResponse.text("Not Found", { status: 404 })
      if (hasQueryToken(request.url)) {
        return HttpServerResponse.text(
          "Hook token must be provided via Authorization: Bearer <token> or X-BeamClaw-Token (or X-OpenClaw-Token) header (query parameters are not allowed).",
          { status: 400 }
        )
      }
      if (request.method !== "POST") return HttpServerResponse.text("Method Not Allowed", { status: 405, headers: { allow: "POST" } })
      const token = revealSecret(config.token)
      if (token === undefined) return failure(503, "hooks.enabled requires hooks.token; set hooks.token to use the webhooks")
      const denied = authenticate(request, token)
      if (denied !== undefined) return denied
      if (sub !== "wake" && sub !== "agent") return HttpServerResponse.text("Not Found", { status: 404 })

      const body = yield* readJson(request, HOOK_MAX_BODY_BYTES, {})
      switch (body._tag) {
        case "TooLarge":
          return failure(413, "payload too large")
        case "Unreadable":
          return failure(400, body.message)
        case "Malformed":
          return failure(400, `invalid JSON: ${body.message}`)
      }
      const agents = yield* AgentDirectory
      const agentIds = yield* agents.agentIds
      const defaultAgentId = yield* agents.defaultAgentId

      if (sub === "wake") {
        const wake = parseWake(body.json, agentIds)
        if (Result.isFailure(wake)) return failure(400, wake.failure)
        const agentId = wake.success.agentId ?? defaultAgentId
        wakes.push({ text: wake.success.text, mode: wake.success.mode, agentId, at: Date.now() })
        if (wakes.length > WAKES_KEPT) wakes.shift()
        yield* Effect.logInfo(`hook wake for agent ${agentId} (${wake.success.mode}) recorded; heartbeats are not built yet, so no heartbeat runs`)
        return json(200, {
          ok: true,
          mode: wake.success.mode,
          eventOutcome: "recorded",
          heartbeat: "unavailable",
          note: "The wake was recorded, but this gateway has no heartbeat yet, so nothing runs."
        })
      }

      const hook = parseAgent(body.json, agentIds)
      if (Result.isFailure(hook)) return failure(400, hook.failure)
      const agentId = hook.success.agentId ?? defaultAgentId
      const idempotencyKey = header(request.headers, "idempotency-key", "x-beamclaw-idempotency-key", "x-openclaw-idempotency-key") ?? hook.success.idempotencyKey
      const replayKey = idempotencyKey === undefined || idempotencyKey.length > 256
        ? undefined
        : [sha(token), sha(`${base}/agent`), sha(idempotencyKey), sha(JSON.stringify([agentId, hook.success.name, hook.success.message]))].join(":")
      const now = Date.now()
      sweepReplays(now)
      const replayed = replayKey === undefined ? undefined : replays.get(replayKey)
      const run = replayed ?? (yield* runAgent(hook.success, agentId))
      if (replayKey !== undefined && replayed === undefined) {
        const entry = { runId: run.runId, done: run.done, expiresAt: Number.POSITIVE_INFINITY }
        replays.set(replayKey, entry)
        // The replay window starts when the run ends.
        yield* Deferred.await(run.done).pipe(
          Effect.andThen(Effect.sync(() => { entry.expiresAt = Date.now() + REPLAY_TTL_MS })),
          detached.fork
        )
      }
      if (!hook.success.waitForCompletion) return json(200, { ok: true, runId: run.runId })
      const completion = yield* Deferred.await(run.done)
      return json(200, { ok: true, runId: run.runId, completion })
    })

  const subPath = Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?")[0] ?? ""
    return yield* handle(path.slice(base.length).replace(/^\/+|\/+$/g, ""))
  })

  // The router files <base> and <base>/* under one route; the handler reads the sub-path itself.
  return HttpRouter.add("*", `${base}/*`, subPath)
}))

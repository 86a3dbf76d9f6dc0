/**
 * One WebSocket connection: the challenge, the `connect` handshake, then
 * req/res/event frames. Outbound frames go through a bounded per-connection
 * queue drained by a writer fiber, so a slow client is disconnected (or
 * skipped, for droppable events) instead of growing memory.
 */
import { randomUUID } from "node:crypto"
import { Cause, Deferred, Duration, Effect, FiberSet, Queue, Result, Schema, SchemaIssue } from "effect"
import { isArrayNonEmpty } from "effect/Array"
import * as Socket from "effect/socket/Socket"
import { AgentDirectory } from "../../agent/AgentDirectory.ts"
import { Paths } from "../../config/Paths.ts"
import { GatewayAuth } from "../auth/GatewayAuth.ts"
import {
  ConnectParams,
  errorShapeOf,
  type ErrorShape,
  MAX_BUFFERED_BYTES,
  MAX_PAYLOAD_BYTES,
  MAX_PREAUTH_PAYLOAD_BYTES,
  MethodError,
  RequestFrame,
  responseError,
  responseOk,
  strict,
  truncateCloseReason
} from "./Frames.ts"
import * as Handshake from "./Handshake.ts"
import { type FrameKind, type Hub, type HubClient, type PresenceEntry, SESSION_SCOPED_EVENTS_CAP } from "./Hub.ts"
import type { Handler, MethodContext } from "./methods/Method.ts"
import { healthSummary } from "./methods/System.ts"
import { missingScope, parseRole } from "./Scopes.ts"

export const EVENTS = ["connect.challenge", "agent", "chat", "presence", "tick", "shutdown", "health", "sessions.changed", "device.pair.requested", "device.pair.resolved"] as const
/**
 * OpenClaw's server capabilities (hello-ok `features.capabilities`) that BeamClaw
 * honours. Clients check them before some calls: `openclaw models list` refuses
 * a gateway without `published-model-catalog` (models.list answers from the
 * gateway's catalogue, with details when asked).
 */
export const CAPABILITIES = ["published-model-catalog"] as const

const formatIssue = SchemaIssue.makeFormatterDefault()
const decodeRequest = Schema.decodeUnknownResult(RequestFrame)
const decodeConnect = Schema.decodeUnknownResult(ConnectParams)

/** Requests one connection may have in flight at once; more are answered UNAVAILABLE (retryable) at once. */
export const MAX_IN_FLIGHT_REQUESTS = 1024

/** At most this many frames per corked write. */
const WRITE_BATCH_FRAMES = 512

/** A device connect overlapped by a token change or removal of (device, role) ends as the connections it closed did: OpenClaw's 4001 "device removed". */
const DEVICE_CHANGED_CLOSE_CODE = 4001
const DEVICE_CHANGED_CLOSE_REASON = "device removed"
const DEVICE_CHANGED_MESSAGE = "the device's token was changed or the device removed during connect; connect again"

/** As Handshake answers a stale device token (AUTH_DEVICE_TOKEN_MISMATCH), for one found stale at the last step. */
const deviceTokenMismatch = (message: string): ErrorShape => ({
  code: "INVALID_REQUEST",
  message: `unauthorized: ${message}`,
  details: { code: "AUTH_DEVICE_TOKEN_MISMATCH", authReason: "mismatch", canRetryWithDeviceToken: false, recommendedNextStep: "update_auth_credentials" }
})

/**
 * After a close frame is sent, how long the client gets to answer it before the socket is dropped; while output
 * sent before it is still leaving, how long that output may stand still (a client that reads nothing).
 */
const CLOSE_GRACE_MS = 1000

/**
 * After a close frame, how often the unsent output is looked at, and how long in all a client still reading it
 * (the output keeps falling) may take: a large answer, or a rotated device token, must not be cut off on a slow
 * link, nor a socket be held without end.
 */
const CLOSE_DRAIN_CHECK_MS = 200
const CLOSE_DRAIN_MAX_MS = 30_000

/** Backlog past which a response is refused: twice an event's, since the client asked for it (see FrameKind). */
const MAX_BUFFERED_BYTES_BEFORE_RESPONSE = 2 * MAX_BUFFERED_BYTES

const byteLength = (data: string | Uint8Array): number => typeof data === "string" ? Buffer.byteLength(data, "utf8") : data.byteLength
const asText = (data: string | Uint8Array): string => typeof data === "string" ? data : Buffer.from(data).toString("utf8")

const parseJson = (text: string): Result.Result<unknown, string> => {
  try {
    const value: unknown = JSON.parse(text)
    return Result.succeed(value)
  } catch (error) {
    return Result.fail(error instanceof Error ? error.message : String(error))
  }
}

const idOf = (value: unknown): string | undefined =>
  typeof value === "object" && value !== null && "id" in value && typeof value.id === "string" && value.id !== "" ? value.id : undefined

export interface Peer {
  readonly clientAddress: string
  /** The upgrade request carried proxy headers: a loopback peer is then not local. */
  readonly hasProxyHeaders: boolean
  /** Gives back this socket's slot in the pre-auth budget (idempotent): called on hello-ok, and when the connection ends. */
  readonly releasePreauth?: (() => void) | undefined
}

/** The byte stream under the WebSocket, corked while a batch of frames is written, and dropped when the connection is done. */
export interface Transport {
  readonly cork: () => void
  readonly uncork: () => void
  readonly destroy: () => void
  /** Bytes written to the socket that the kernel has not taken yet: what a client that does not read leaves behind. */
  readonly writableLength: number
  /**
   * Of the writes under way, the bytes the kernel has not taken yet, where the platform shows it: it falls as a
   * client reads, where writableLength falls only once a whole write is done (on a slow link, seconds apart).
   */
  readonly writeQueueSize: number | undefined
}

export const run = (socket: Socket.Socket, peer: Peer, hub: Hub, methods: Record<string, Handler>, transport?: Transport) =>
  Effect.gen(function*() {
    const connId = randomUUID()
    const nonce = randomUUID()
    const reader = yield* socket.reader
    const writer = yield* socket.writer
    // Bounded by bytes, as OpenClaw's maxBufferedBytes, not by a frame count:
    // many small events must not cut off a client that is merely busy.
    const outbound = yield* Queue.unbounded<string | Socket.CloseEvent>()
    const closeNow = yield* Deferred.make<Socket.CloseEvent>()
    const closeSent = yield* Deferred.make<void>()
    const requests = yield* FiberSet.make()
    let closing = false
    let queuedBytes = 0
    let inFlight = 0

    /**
     * Queues a frame; false when the client is already too far behind for a
     * frame of this kind: what waits in the queue and what sits unsent in the
     * socket's buffer (the writer hands frames to the socket at once, so a
     * client that stops reading shows only there), as OpenClaw's check of the
     * socket's buffered amount. The frame itself does not count, so one large
     * answer to a client that keeps up is never refused.
     */
    const offer = (frame: string, kind: FrameKind): boolean => {
      if (closing) return true
      const backlog = queuedBytes + (transport?.writableLength ?? 0)
      if (backlog > (kind === "event" ? MAX_BUFFERED_BYTES : MAX_BUFFERED_BYTES_BEFORE_RESPONSE)) return false
      if (!Queue.offerUnsafe(outbound, frame)) return false
      queuedBytes += frame.length
      return true
    }
    const send = (value: unknown, kind: FrameKind): void => {
      if (!offer(JSON.stringify(value), kind)) close(1008, "slow consumer")
    }
    const respond = (value: unknown): void => send(value, "response")
    /** Closes after the frames already queued (a rejection's response goes out first). */
    const close = (code: number, reason: string): void => {
      if (closing) return
      closing = true
      const event = new Socket.CloseEvent(code, truncateCloseReason(reason))
      if (!Queue.offerUnsafe(outbound, event)) Deferred.doneUnsafe(closeNow, Effect.succeed(event))
    }

    // Everything queued since the writer last ran goes out in one batch, with the
    // TCP socket corked, so a burst of events costs one writev instead of one per frame.
    yield* Effect.forkScoped(Effect.gen(function*() {
      while (true) {
        const items = yield* Queue.takeBetween(outbound, 1, WRITE_BATCH_FRAMES)
        let closeEvent: Socket.CloseEvent | undefined
        const frames: Array<string> = []
        for (const item of items) {
          if (typeof item !== "string") {
            closeEvent = item
            break
          }
          queuedBytes -= item.length
          frames.push(item)
        }
        if (isArrayNonEmpty(frames)) {
          transport?.cork()
          yield* writer.writeAll(frames).pipe(Effect.ensuring(Effect.sync(() => transport?.uncork())))
        }
        if (closeEvent !== undefined) {
          yield* writer.write(closeEvent)
          yield* Deferred.succeed(closeSent, undefined)
          return
        }
      }
    }).pipe(Effect.ignore))
    yield* Effect.forkScoped(Deferred.await(closeNow).pipe(
      Effect.flatMap((event) => writer.write(event)),
      Effect.ignore,
      Effect.andThen(Deferred.succeed(closeSent, undefined))
    ))

    let client: (HubClient & { readonly context: Omit<MethodContext, "respondInterim" | "afterResponse"> }) | undefined
    // Until it registers, the hub knows this socket only here: a shutdown's close-all reaches it through this.
    const untrackPending = hub.trackPending(close)

    // Handshake deadline: no valid connect in time closes the socket.
    yield* Effect.forkScoped(Effect.sleep(Duration.millis(hub.options.handshakeTimeoutMs)).pipe(
      Effect.andThen(Effect.sync(() => {
        if (client === undefined) close(1008, "handshake timeout")
      }))
    ))

    send({ type: "event", event: "connect.challenge", payload: { nonce, ts: Date.now() } }, "event")

    const rejectHandshake = (id: string | undefined, error: ErrorShape, closeCode: number, closeReason: string) => {
      if (id !== undefined) respond(responseError(id, error))
      close(closeCode, closeReason)
    }

    const handshake = (data: string | Uint8Array) =>
      Effect.gen(function*() {
        if (byteLength(data) > MAX_PREAUTH_PAYLOAD_BYTES) return close(1009, "preauth payload too large")
        const parsed = parseJson(asText(data))
        if (Result.isFailure(parsed)) return close(1008, "invalid handshake: malformed JSON")
        const frame = decodeRequest(parsed.success, strict)
        if (Result.isFailure(frame)) return close(1008, "invalid request frame")
        const id = frame.success.id
        if (frame.success.method !== "connect") {
          const message = "invalid handshake: first request must be connect"
          return rejectHandshake(id, { code: "INVALID_REQUEST", message }, 1008, message)
        }
        const params = decodeConnect(frame.success.params ?? {}, strict)
        if (Result.isFailure(params)) {
          const message = `invalid connect params: ${formatIssue(params.failure.issue)}`
          return rejectHandshake(id, { code: "INVALID_REQUEST", message }, 1008, message)
        }
        // Read before any credential is checked: see the re-check just before hello-ok.
        const requestedRole = parseRole(params.success.role)
        const generation = params.success.device === undefined || requestedRole === undefined
          ? undefined
          : hub.deviceGeneration(params.success.device.id, requestedRole)
        const admitted = yield* Handshake.admit(params.success, { nonce, clientAddress: peer.clientAddress, hasProxyHeaders: peer.hasProxyHeaders }).pipe(Effect.result)
        if (Result.isFailure(admitted)) {
          const rejection = admitted.failure
          return rejectHandshake(id, rejection.error, rejection.closeCode, rejection.closeReason)
        }
        const { role, scopes, protocol } = admitted.success
        const auth = yield* GatewayAuth
        let deviceToken = admitted.success.deviceToken
        if (admitted.success.principal.method === "device-token" && admitted.success.deviceId !== undefined) {
          // The token checked at auth may have been rotated or revoked since: it must still be live now, under
          // the store's lock, and hello-ok carries that token, never one the presenter did not already hold.
          const presented = params.success.auth?.deviceToken ?? params.success.auth?.token ?? ""
          const confirmed = yield* auth.confirmDeviceToken({ deviceId: admitted.success.deviceId, role, scopes, token: presented }).pipe(Effect.result)
          if (Result.isFailure(confirmed)) return rejectHandshake(id, deviceTokenMismatch(confirmed.failure.message), 1008, `unauthorized: ${confirmed.failure.message}`)
          deviceToken = confirmed.success
        }
        const info = params.success.client
        const self: HubClient & { readonly context: Omit<MethodContext, "respondInterim" | "afterResponse"> } = {
          connId,
          role,
          scopes,
          deviceId: admitted.success.deviceId,
          sessionScoped: params.success.caps?.includes(SESSION_SCOPED_EVENTS_CAP) === true,
          subscriptions: new Set(),
          seq: 0,
          offer,
          close,
          context: {
            hub,
            connId,
            role,
            scopes,
            client: info,
            deviceId: admitted.success.deviceId,
            deviceTokenAuth: admitted.success.principal.method === "device-token"
          }
        }
        const agents = yield* AgentDirectory
        const policy = yield* agents.sessionPolicy
        const defaultAgentId = yield* agents.defaultAgentId
        const paths = yield* Paths
        const health = yield* healthSummary
        const authMode = yield* auth.mode
        const presence: PresenceEntry | undefined = info.id === "cli" ? undefined : {
          host: info.displayName ?? info.id,
          ...(admitted.success.local ? {} : { ip: peer.clientAddress }),
          version: info.version,
          platform: info.platform,
          ...(info.deviceFamily === undefined ? {} : { deviceFamily: info.deviceFamily }),
          ...(info.modelIdentifier === undefined ? {} : { modelIdentifier: info.modelIdentifier }),
          mode: info.mode,
          ...(admitted.success.deviceId === undefined ? {} : { deviceId: admitted.success.deviceId }),
          roles: [role],
          scopes,
          ...(info.instanceId === undefined ? {} : { instanceId: info.instanceId }),
          reason: "connect",
          ts: Date.now()
        }
        // From here to hub.register nothing yields, so a token change or removal of this device either bumped
        // the generation already (this connect goes) or will find the connection registered (and close it).
        if (generation !== undefined && admitted.success.deviceId !== undefined && hub.deviceGeneration(admitted.success.deviceId, role) !== generation) {
          return rejectHandshake(id, { code: "UNAVAILABLE", message: DEVICE_CHANGED_MESSAGE, retryable: true }, DEVICE_CHANGED_CLOSE_CODE, DEVICE_CHANGED_CLOSE_REASON)
        }
        respond(responseOk(id, {
          type: "hello-ok",
          protocol,
          server: { version: hub.options.version, connId },
          features: { methods: Object.keys(methods), events: EVENTS, capabilities: CAPABILITIES },
          snapshot: {
            presence: [...hub.presenceList(), ...(presence === undefined ? [] : [presence])],
            health,
            stateVersion: { ...hub.stateVersion },
            uptimeMs: Date.now() - hub.startedAt,
            configPath: paths.configFile,
            stateDir: paths.home,
            sessionDefaults: { defaultAgentId, mainKey: policy.mainKey, mainSessionKey: `agent:${defaultAgentId}:${policy.mainKey}`, scope: "per-sender" },
            authMode
          },
          auth: deviceToken === undefined
            ? { role, scopes }
            : { deviceToken: deviceToken.token, role, scopes, issuedAtMs: deviceToken.rotatedAtMs ?? deviceToken.createdAtMs },
          policy: { maxPayload: MAX_PAYLOAD_BYTES, maxBufferedBytes: MAX_BUFFERED_BYTES, tickIntervalMs: hub.options.tickIntervalMs }
        }))
        client = self
        peer.releasePreauth?.()
        hub.register(self, presence)
        untrackPending()
      })

    const dispatch = (frame: RequestFrame, connected: NonNullable<typeof client>) =>
      Effect.gen(function*() {
        const { id, method } = frame
        if (method === "connect") return respond(responseError(id, { code: "INVALID_REQUEST", message: "connect is only valid as the first request" }))
        if (connected.role !== "operator") return respond(responseError(id, { code: "INVALID_REQUEST", message: `unauthorized role: ${connected.role}` }))
        // A method this gateway does not have is named as such before any scope check: otherwise a client
        // without admin would be told "missing scope: operator.admin" (what unlisted methods need) for one
        // OpenClaw has and BeamClaw does not (cron.list, wake, usage.cost), as if its credentials were wrong.
        // hello-ok lists the methods anyway, so this tells nobody anything new. Own entries only: the table is
        // an object, and `toString` or `constructor` from its prototype is no handler (called, it never answered).
        const handler = Object.hasOwn(methods, method) ? methods[method] : undefined
        if (handler === undefined) return respond(responseError(id, { code: "INVALID_REQUEST", message: `unknown method: ${method}` }))
        const missing = missingScope(method, connected.scopes, frame.params)
        if (missing !== undefined) {
          return respond(responseError(id, {
            code: "FORBIDDEN",
            message: `missing scope: ${missing}`,
            details: { code: "MISSING_SCOPE", missingScope: missing, requiredScopes: [missing] }
          }))
        }
        const afterResponse: Array<() => void> = []
        const context: MethodContext = {
          ...connected.context,
          respondInterim: (payload) => respond(responseOk(id, payload)),
          afterResponse: (action) => {
            afterResponse.push(action)
          }
        }
        const exit = yield* Effect.exit(handler(frame.params, context))
        if (exit._tag === "Success") {
          respond(responseOk(id, exit.value))
          for (const action of afterResponse) action()
          return
        }
        if (Cause.hasInterruptsOnly(exit.cause)) return
        const failure = Cause.findError(exit.cause)
        if (failure._tag === "Success" && failure.success instanceof MethodError) return respond(responseError(id, errorShapeOf(failure.success)))
        yield* Effect.logError(`ws method ${method} failed`, exit.cause)
        const squashed = Cause.squash(exit.cause)
        respond(responseError(id, { code: "UNAVAILABLE", message: squashed instanceof Error ? squashed.message : String(squashed) }))
      })

    const message = (data: string | Uint8Array) =>
      Effect.gen(function*() {
        if (closing) return
        const connected = client
        if (connected === undefined) return yield* handshake(data)
        if (byteLength(data) > MAX_PAYLOAD_BYTES) return close(1009, "payload too large")
        const parsed = parseJson(asText(data))
        if (Result.isFailure(parsed)) {
          return respond(responseError("invalid", { code: "INVALID_REQUEST", message: `invalid request frame: malformed JSON (${parsed.failure})` }))
        }
        const frame = decodeRequest(parsed.success, strict)
        if (Result.isFailure(frame)) {
          return respond(responseError(idOf(parsed.success) ?? "invalid", { code: "INVALID_REQUEST", message: `invalid request frame: ${formatIssue(frame.failure.issue)}` }))
        }
        // Requests run concurrently; responses may come back out of order, as in OpenClaw. Bounded per connection,
        // as OpenClaw's start queue: one client cannot park an unbounded number of fibers (agent.wait, say).
        if (inFlight >= MAX_IN_FLIGHT_REQUESTS) {
          return respond(responseError(frame.success.id, { code: "UNAVAILABLE", message: `too many requests in flight on this connection (at most ${MAX_IN_FLIGHT_REQUESTS}); wait for answers before sending more`, retryable: true }))
        }
        inFlight++
        yield* FiberSet.run(requests, dispatch(frame.success, connected).pipe(Effect.ensuring(Effect.sync(() => {
          inFlight--
        }))))
      })

    const readLoop = Effect.gen(function*() {
      while (true) {
        const batch = yield* reader.pull
        for (const data of batch) yield* message(data)
      }
    }).pipe(Effect.catchTag("SocketError", () => Effect.void))

    // Interrupted while open means the listener is going away: say so before the socket drops.
    const goingAway = Effect.suspend(() => {
      if (closing || client === undefined) return Effect.void
      closing = true
      return writer.write(JSON.stringify({ type: "event", event: "shutdown", payload: { reason: "gateway stopping" } })).pipe(
        Effect.andThen(writer.write(new Socket.CloseEvent(1012, "service restart"))),
        Effect.timeout(Duration.millis(CLOSE_GRACE_MS)),
        Effect.ignore
      )
    })

    // After the close frame, what was sent before it may still sit unsent in the socket's buffer (a large answer on a
    // slow link): the socket stays while that keeps falling, and goes once it has stood still for the grace (a client
    // that reads nothing, or has read everything and not answered the close), or after CLOSE_DRAIN_MAX_MS in all.
    const lingerAfterClose = Effect.gen(function*() {
      let unsent = transport?.writableLength ?? 0
      let queued = transport?.writeQueueSize ?? 0
      let stillMs = 0
      for (let waitedMs = 0; stillMs < CLOSE_GRACE_MS && waitedMs < CLOSE_DRAIN_MAX_MS; waitedMs += CLOSE_DRAIN_CHECK_MS) {
        yield* Effect.sleep(Duration.millis(CLOSE_DRAIN_CHECK_MS))
        const nowUnsent = transport?.writableLength ?? 0
        const nowQueued = transport?.writeQueueSize ?? 0
        // A write done (writableLength falls) or the kernel taking part of one (the write queue falls) is progress.
        stillMs = nowUnsent < unsent || nowQueued < queued ? 0 : stillMs + CLOSE_DRAIN_CHECK_MS
        unsent = nowUnsent
        queued = nowQueued
      }
    })

    yield* Effect.raceFirst(
      readLoop,
      Deferred.await(closeSent).pipe(Effect.andThen(lingerAfterClose))
    ).pipe(Effect.onInterrupt(() => goingAway), Effect.ensuring(Effect.sync(() => {
      closing = true
      peer.releasePreauth?.()
      untrackPending()
      hub.unregister(connId)
      // The close handshake had its grace: a client that has not answered is cut off now, instead of holding its
      // socket for the WebSocket library's own 30 s close timeout (a shutdown interrupts the wait sooner).
      transport?.destroy()
    })))
  })

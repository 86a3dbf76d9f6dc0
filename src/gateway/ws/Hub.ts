/**
 * State shared by every WebSocket connection of one gateway listener: the
 * connected clients, broadcasting with a per-client `seq` (OpenClaw's
 * server-broadcast.ts), presence, state versions, and the registry of runs
 * the gateway owns (chat.send / agent runs keep going when their client
 * leaves, so they live here, not in a connection).
 */
import * as Os from "node:os"
import { Deferred, Effect, Latch, type Scope } from "effect"
import { DetachedRuns } from "../../runtime/DetachedRuns.ts"
import * as PreauthBudget from "./PreauthBudget.ts"
import { eventAllowed, type Role } from "./Scopes.ts"

export interface PresenceEntry {
  readonly host?: string
  readonly ip?: string
  readonly version?: string
  readonly platform?: string
  readonly deviceFamily?: string
  readonly modelIdentifier?: string
  readonly mode?: string
  readonly reason?: string
  readonly text?: string
  readonly ts: number
  readonly deviceId?: string
  readonly roles?: ReadonlyArray<string>
  readonly scopes?: ReadonlyArray<string>
  readonly instanceId?: string
}

/**
 * What a frame is to the client, for the slow-consumer limit: an event is
 * broadcast to it (refused once the client is maxBufferedBytes behind); a
 * response answers its own request (refused only at twice that: it asked for
 * the answer, and refusing one closes the connection).
 */
export type FrameKind = "event" | "response"

/** What the hub needs from a connection to reach it. */
export interface HubClient {
  readonly connId: string
  readonly role: Role
  readonly scopes: ReadonlyArray<string>
  /** The paired device this connection proved, if any. */
  readonly deviceId?: string | undefined
  /**
   * Declared the `session-scoped-events` capability: `agent` and `chat` events
   * reach it only for the sessions it subscribed to (sessions.messages.subscribe),
   * as OpenClaw's server-broadcast.ts. Other clients receive every run's events.
   */
  readonly sessionScoped: boolean
  /** Store keys of the sessions this connection subscribed to (kept by the hub: subscribe / unsubscribe). */
  readonly subscriptions: Set<string>
  /** Queues a frame; false when the client is too far behind for a frame of this kind (see FrameKind). */
  readonly offer: (frame: string, kind: FrameKind) => boolean
  /** Closes the connection (slow consumer, shutdown). */
  readonly close: (code: number, reason: string) => void
  seq: number
}

export interface BroadcastOptions {
  /** Skip a client whose queue is full instead of disconnecting it (its seq still advances). */
  readonly dropIfSlow?: boolean
  readonly stateVersion?: boolean
  /** The session an `agent` / `chat` event belongs to, for session-scoped clients. */
  readonly sessionKey?: string
}

/** The events a session-scoped client receives only for its subscribed sessions. */
const SESSION_SCOPED_EVENTS: ReadonlySet<string> = new Set(["agent", "chat"])

/** The connect capability that asks for session-scoped events. */
export const SESSION_SCOPED_EVENTS_CAP = "session-scoped-events"

export type RunStatus = "running" | "ok" | "error" | "aborted" | "timeout"

export interface RunRecord {
  readonly runId: string
  readonly sessionKey: string
  readonly kind: "chat" | "agent"
  readonly startedAt: number
  status: RunStatus
  endedAt: number | undefined
  error: string | undefined
  errorCode: "AGENT_TIMEOUT" | "UNAVAILABLE" | "INVALID_REQUEST" | undefined
  text: string
  sessionId: string | undefined
  model: string | undefined
  usage: { readonly input: number; readonly output: number; readonly cacheRead: number; readonly cacheWrite: number; readonly total: number } | undefined
  readonly done: Deferred.Deferred<void>
}

export interface HubOptions {
  readonly version: string
  readonly tickIntervalMs: number
  readonly handshakeTimeoutMs: number
  /** Unauthenticated sockets allowed per client address (PreauthBudget); OpenClaw's 32 when absent. */
  readonly maxPreauthConnectionsPerIp?: number | undefined
}

const FINISHED_RUNS_KEPT = 1000
const FINISHED_RUN_TTL_MS = 5 * 60_000

export const make = Effect.fnUntraced(function*(options: HubOptions) {
  const clients = new Map<string, HubClient>()
  /** Open while any client is connected: the periodic broadcasts wait on it, so a gateway without clients runs no timer for them. */
  const connected = Latch.makeUnsafe(false)
  const presence = new Map<string, PresenceEntry>()
  const stateVersion = { presence: 0, health: 0 }
  const startedAt = Date.now()
  const runs = new Map<string, RunRecord>()
  // Runs belong to the gateway, not to the connection that started them (nor to this listener).
  const detached = yield* DetachedRuns
  const preauth = PreauthBudget.make(options.maxPreauthConnectionsPerIp ?? PreauthBudget.DEFAULT_MAX_PREAUTH_CONNECTIONS_PER_IP)

  const selfPresence = (): PresenceEntry => ({
    host: Os.hostname(),
    version: options.version,
    platform: process.platform,
    mode: "gateway",
    reason: "self",
    text: `Gateway: ${Os.hostname()} · app ${options.version} · mode gateway · reason self`,
    ts: Date.now()
  })

  const presenceList = (): ReadonlyArray<PresenceEntry> => [selfPresence(), ...presence.values()]

  const eventFrame = (event: string, payloadJson: string, seq: number | undefined, withVersion: boolean): string =>
    `{"type":"event","event":${JSON.stringify(event)},"payload":${payloadJson}` +
    (seq === undefined ? "" : `,"seq":${seq}`) +
    (withVersion ? `,"stateVersion":${JSON.stringify(stateVersion)}` : "") +
    "}"

  // Session-scoped events go to the unscoped clients and to the subscribers of their
  // session only, so a run's events cost O(interested clients), not O(all clients).
  const unscoped = new Set<HubClient>()
  const subscribers = new Map<string, Set<HubClient>>()
  const allowed = new WeakMap<HubClient, Map<string, boolean>>()

  const allows = (client: HubClient, event: string): boolean => {
    let cache = allowed.get(client)
    if (cache === undefined) {
      cache = new Map()
      allowed.set(client, cache)
    }
    let verdict = cache.get(event)
    if (verdict === undefined) {
      verdict = eventAllowed(event, client.role, client.scopes)
      cache.set(event, verdict)
    }
    return verdict
  }

  const deliver = (client: HubClient, event: string, payloadJson: string, opts: BroadcastOptions): void => {
    if (!allows(client, event)) return
    client.seq += 1
    if (!client.offer(eventFrame(event, payloadJson, client.seq, opts.stateVersion === true), "event")) {
      if (opts.dropIfSlow !== true) client.close(1008, "slow consumer")
    }
  }

  const broadcast = (event: string, payload: unknown, opts: BroadcastOptions = {}): void => {
    const payloadJson = JSON.stringify(payload ?? null)
    if (!SESSION_SCOPED_EVENTS.has(event)) {
      for (const client of clients.values()) deliver(client, event, payloadJson, opts)
      return
    }
    for (const client of unscoped) deliver(client, event, payloadJson, opts)
    const subscribed = opts.sessionKey === undefined ? undefined : subscribers.get(opts.sessionKey)
    if (subscribed !== undefined) for (const client of subscribed) deliver(client, event, payloadJson, opts)
  }

  const subscribe = (connId: string, sessionKey: string): void => {
    const client = clients.get(connId)
    if (client === undefined || client.subscriptions.has(sessionKey)) return
    client.subscriptions.add(sessionKey)
    let set = subscribers.get(sessionKey)
    if (set === undefined) {
      set = new Set()
      subscribers.set(sessionKey, set)
    }
    set.add(client)
  }

  const unsubscribe = (connId: string, sessionKey: string): void => {
    const client = clients.get(connId)
    if (client === undefined || !client.subscriptions.delete(sessionKey)) return
    const set = subscribers.get(sessionKey)
    set?.delete(client)
    if (set?.size === 0) subscribers.delete(sessionKey)
  }

  /** A targeted event: no seq, as OpenClaw's broadcastToConnIds. */
  const sendTo = (connId: string, event: string, payload: unknown): void => {
    const client = clients.get(connId)
    if (client === undefined) return
    if (!client.offer(eventFrame(event, JSON.stringify(payload ?? null), undefined, false), "event")) client.close(1008, "slow consumer")
  }

  const register = (client: HubClient, entry: PresenceEntry | undefined): void => {
    clients.set(client.connId, client)
    connected.openUnsafe()
    if (!client.sessionScoped) unscoped.add(client)
    if (entry !== undefined) {
      presence.set(client.connId, entry)
      stateVersion.presence += 1
      broadcast("presence", { presence: presenceList() }, { dropIfSlow: true, stateVersion: true })
    }
  }

  const unregister = (connId: string): void => {
    const client = clients.get(connId)
    if (client !== undefined) {
      for (const sessionKey of [...client.subscriptions]) unsubscribe(connId, sessionKey)
      unscoped.delete(client)
    }
    clients.delete(connId)
    if (clients.size === 0) connected.closeUnsafe()
    if (presence.delete(connId)) {
      stateVersion.presence += 1
      broadcast("presence", { presence: presenceList() }, { dropIfSlow: true, stateVersion: true })
    }
  }

  /** Finished runs in the order they ended: pruning drops from the front, so a new run costs no scan of every run. */
  const finishedRuns = new Map<string, RunRecord>()
  const runEnded = (run: RunRecord): void => {
    finishedRuns.delete(run.runId)
    finishedRuns.set(run.runId, run)
  }
  const pruneRuns = (): void => {
    const now = Date.now()
    for (const run of finishedRuns.values()) {
      const expired = run.endedAt !== undefined && now - run.endedAt > FINISHED_RUN_TTL_MS
      if (!expired && finishedRuns.size <= FINISHED_RUNS_KEPT) break
      finishedRuns.delete(run.runId)
      if (runs.get(run.runId) === run) runs.delete(run.runId)
    }
  }

  const newRun = (runId: string, sessionKey: string, kind: "chat" | "agent") =>
    Effect.gen(function*() {
      pruneRuns()
      const run: RunRecord = {
        runId,
        sessionKey,
        kind,
        startedAt: Date.now(),
        status: "running",
        endedAt: undefined,
        error: undefined,
        errorCode: undefined,
        text: "",
        sessionId: undefined,
        model: undefined,
        usage: undefined,
        done: yield* Deferred.make<void>()
      }
      runs.set(runId, run)
      return run
    })

  /** Forks a run into the gateway's own fiber set (it outlives the requesting connection). */
  const fork = <A, E>(effect: Effect.Effect<A, E>) => detached.fork(effect)

  /** Sockets still in their handshake (not registered yet): a shutdown closes them too, not only the clients. */
  const pending = new Set<(code: number, reason: string) => void>()
  const trackPending = (close: (code: number, reason: string) => void): (() => void) => {
    pending.add(close)
    return () => {
      pending.delete(close)
    }
  }

  const closeAll = (code: number, reason: string): void => {
    for (const client of clients.values()) client.close(code, reason)
    for (const close of [...pending]) close(code, reason)
  }

  // Bumped by closeDevice. A connect reads it before its credentials are checked and re-checks it just before
  // it registers (no yield in between): a rotation, revocation or removal whose close-all ran while the connect
  // was still in flight, so could not see it, is caught there. Keys are (device, role), and (device) for removals;
  // one entry per device ever closed this way, so bounded by the pairing store.
  const generations = new Map<string, number>()
  const generationKey = (deviceId: string, role: string | undefined) => role === undefined ? deviceId : `${deviceId}\u0000${role}`

  /** Changes whenever the connections of (device, role) are closed by a token change or a device removal. */
  const deviceGeneration = (deviceId: string, role: string): number =>
    (generations.get(generationKey(deviceId, undefined)) ?? 0) + (generations.get(generationKey(deviceId, role)) ?? 0)

  /** Closes the connections of a device, or only those in `role` (a token rotation or revocation is per role). */
  const closeDevice = (deviceId: string, code: number, reason: string, role?: string): void => {
    const key = generationKey(deviceId, role)
    generations.set(key, (generations.get(key) ?? 0) + 1)
    for (const client of clients.values()) {
      if (client.deviceId === deviceId && (role === undefined || client.role === role)) client.close(code, reason)
    }
  }

  return {
    options,
    startedAt,
    stateVersion,
    clients,
    whileConnected: connected.await,
    runs,
    presenceList,
    broadcast,
    subscribe,
    unsubscribe,
    sendTo,
    register,
    unregister,
    trackPending,
    newRun,
    runEnded,
    fork,
    closeAll,
    closeDevice,
    deviceGeneration,
    preauth,
    bumpHealth: () => {
      stateVersion.health += 1
    }
  }
})

export type Hub = Effect.Success<ReturnType<typeof make>>
export type HubScope = Scope.Scope

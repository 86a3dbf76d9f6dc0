/**
 * Everything the gateway serves with, built once its port answers the
 * probes (Gateway.ts): the sessions, auth, the config writer, detached runs,
 * the session event fan-out and the chat channels, and the route table of a
 * listener. This module is loaded with `import()` after the bind, so none of
 * its code is on the way to the first /health.
 */
import { Effect, Layer } from "effect"
import { HttpRouter } from "effect/http"
import { ChannelHost } from "../channels/ChannelHost.ts"
import { type AccountStatus, ChannelSupervisor } from "../channels/ChannelSupervisor.ts"
import { InboundDedupe } from "../channels/Dedupe.ts"
import * as DiscordChannel from "../channels/discord/DiscordChannel.ts"
import { PairingStore } from "../channels/PairingStore.ts"
import { ConfigWriter } from "../config/ConfigWriter.ts"
import * as GatewayAuthLayer from "../gateway/auth/GatewayAuthLayer.ts"
import { Readiness } from "../gateway/Readiness.ts"
import { SessionEvents } from "../gateway/rpc/SessionEvents.ts"
import { SessionMaintenance } from "../session/SessionMaintenance.ts"
import * as Routes from "../gateway/Routes.ts"
import { sessions } from "./App.ts"
import { DetachedRuns } from "./DetachedRuns.ts"

/** Ready when every enabled channel account is connected; otherwise the reasons, per account. */
const channelReadiness = (statuses: ReadonlyArray<AccountStatus>) =>
  Effect.gen(function*() {
    const readiness = yield* Readiness
    const down = statuses.filter((status) => !status.connected)
    yield* readiness.set("channels", down.length === 0
      ? { up: true }
      : { up: false, reason: down.map((s) => `${s.channel}:${s.accountId} ${s.state}${s.lastError === undefined ? "" : ` (${s.lastError})`}`).join("; ") })
  })

/**
 * The chat channels: one supervised fiber per enabled account, and the layer
 * that turns their messages into turns. On shutdown the accounts stop first
 * (each waits for its conversations), then ChannelHost gives the lanes still
 * at work their grace and closes the journals only after the last lane, then
 * the detached runs get theirs. The lanes live in ChannelHost, not in
 * DetachedRuns, so no lane can outlive the journal it writes to.
 */
const channels = ChannelSupervisor.layer([DiscordChannel.plugin], { onStatus: channelReadiness }).pipe(
  Layer.provideMerge(ChannelHost.layer),
  Layer.provideMerge(Layer.mergeAll(PairingStore.layer, InboundDedupe.layer()))
)

/**
 * The gateway's services over the boot layers (config, paths, platform, log
 * level, readiness, the log ring). On shutdown the channels stop first, then
 * detached runs get their grace, then the session actors stop.
 */
export const layer = (options: { readonly readOnly?: boolean | undefined }) =>
  channels.pipe(
    Layer.provideMerge(Layer.mergeAll(ConfigWriter.layer, DetachedRuns.layer, SessionEvents.layer, SessionMaintenance.layer({ readOnly: options.readOnly }))),
    // Auth needs only the config: built beside the sessions, so its files are read and written while the sessions start.
    Layer.provideMerge(Layer.mergeAll(GatewayAuthLayer.layer, sessions(options.readOnly ?? false)))
  )

/**
 * The full route table of one listener (OpenAI, webhooks, typed RPC, the
 * OpenClaw WebSocket and the probes), built into that listener's scope so it
 * is released before the listener: WebSocket clients get OpenClaw's
 * `shutdown` event and close 1012 before the HTTP server waits for open sockets.
 */
export const routeTable = HttpRouter.toHttpEffect(Routes.served)

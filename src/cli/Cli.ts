/**
 * The `beamclaw` command line. With no subcommand it runs the gateway.
 * Commands that run turns do so in-process on the same session layer the
 * gateway uses, after checking that no gateway owns the state directory.
 */
import * as fs from "node:fs/promises"
import { Console, Effect, Option, Predicate, Redacted, Schema, Stream } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as Terminal from "effect/Terminal"
import { textOf } from "../agent/Message.ts"
import type { TurnEvent } from "../agent/TurnEvent.ts"
import { AgentDirectory } from "../agent/AgentDirectory.ts"
import { AppConfig } from "../config/AppConfig.ts"
import { encodeConfig, getPath, loadConfig } from "../config/ConfigLoader.ts"
import { renderValue, renderYaml } from "../config/ConfigRender.ts"
import { Paths } from "../config/Paths.ts"
import { launchGateway } from "../entry/gateway.ts"
import * as App from "../runtime/App.ts"
import * as StateLease from "../runtime/StateLease.ts"
import { Sessions } from "../session/Sessions.ts"
import type { CleanupSummary } from "../session/CleanupSummary.ts"
import { SessionMaintenance } from "../session/SessionMaintenance.ts"
import { formatBytes } from "../config/Units.ts"
import { PairingStore } from "../channels/PairingStore.ts"
import * as SessionKey from "../session/SessionKey.ts"
import type * as Transcript from "../session/Transcript.ts"
import type { BeamclawRpcClient } from "../client/BeamclawClient.ts"
import * as Spinner from "./Spinner.ts"
import { tokenFile } from "../gateway/auth/TokenFile.ts"
import { exposureProblem } from "../gateway/auth/Exposure.ts"

class GatewayUnreachable extends Schema.TaggedError<GatewayUnreachable>()("GatewayUnreachable", {
  message: Schema.String
}) {}

import { VERSION } from "../Version.ts"

/** Turns any failure into one clear line on stderr and a non-zero exit. */
const userFacing = <A, E extends { readonly message: string }, R>(effect: Effect.Effect<A, E, R>) =>
  effect.pipe(Effect.mapError((error) => new CliError.UserError({ cause: error, userMessage: `beamclaw: ${error.message}` })))

const json = Flag.Boolean("json").pipe(Flag.withDescription("Print machine-readable JSON"), Flag.withDefault(false))
const agentFlag = Flag.String("agent").pipe(Flag.withDescription("Agent id (default: the configured default agent)"), Flag.optional)
const sessionFlag = Flag.String("session").pipe(Flag.withDescription("Session key, e.g. main or agent:main:main"), Flag.optional)

const resolveKey = (session: Option.Option<string>, agent: Option.Option<string>) =>
  Effect.gen(function*() {
    const agents = yield* AgentDirectory
    const agentId = Option.isSome(agent) ? agent.value.toLowerCase() : yield* agents.defaultAgentId
    yield* agents.settings(agentId)
    const policy = yield* agents.sessionPolicy
    const parsed = SessionKey.toStoreKey(Option.getOrUndefined(session), { agentId, mainKey: policy.mainKey })
    if (parsed._tag === "Failure") return yield* parsed.failure
    // A key can name another agent (`agent:other:main`): that agent must exist too, as through the gateway.
    if (parsed.success.agentId !== agentId) yield* agents.settings(parsed.success.agentId)
    return parsed.success.key
  })

/**
 * Runs a core-layer program holding the state directory's lease, so no
 * gateway or other command writes the same sessions meanwhile.
 */
const withSessions = (command: string) => <A, E, R>(program: Effect.Effect<A, E, R>) =>
  Effect.scoped(Effect.gen(function*() {
    const paths = yield* Paths
    yield* StateLease.acquire(paths.home, { name: command })
    return yield* program.pipe(Effect.provide(App.core({ quiet: true })))
  })).pipe(Effect.provide(Paths.layer), Effect.provide(App.logToStderr))

const renderTurn = (events: Stream.Stream<TurnEvent, { readonly message: string }>, asJson: boolean) =>
  Effect.gen(function*() {
    const stopSpinner = yield* Spinner.start("thinking…")
    let completed: Extract<TurnEvent, { _tag: "TurnCompleted" }> | undefined
    let started: Extract<TurnEvent, { _tag: "TurnStarted" }> | undefined
    let printed = false
    yield* events.pipe(Stream.runForEach((event) =>
      Effect.gen(function*() {
        switch (event._tag) {
          case "TurnStarted":
            started = event
            return
          case "TextDelta":
            yield* stopSpinner
            if (!asJson) yield* Effect.sync(() => process.stdout.write(event.text))
            printed = true
            return
          case "ToolStarted":
            yield* stopSpinner
            if (!asJson) yield* Effect.sync(() => process.stderr.write(`\n[tool ${event.name}]\n`))
            return
          case "Failover":
            if (!asJson) yield* Effect.sync(() => process.stderr.write(`\n[${event.from} failed (${event.reason}); trying ${event.to}]\n`))
            return
          case "TurnCompleted":
            completed = event
            return
          default:
            return
        }
      })
    ), Effect.ensuring(stopSpinner))
    if (asJson) {
      yield* Console.log(JSON.stringify({
        runId: completed?.runId,
        sessionKey: started?.sessionKey,
        sessionId: started?.sessionId,
        text: completed?.text ?? "",
        model: completed?.model,
        stopReason: completed?.stopReason,
        usage: completed?.usage
      }, null, 2))
    } else if (printed) {
      yield* Effect.sync(() => process.stdout.write("\n"))
    }
    return completed
  })

/**
 * What `agent`, `chat` and `sessions show|reset` need from the sessions. With
 * no gateway running they use the session layer in-process (holding the
 * state directory's lease); with one running they go through its typed RPC
 * and token, so the gateway stays the one writer of the sessions.
 */
interface SessionAccess {
  readonly send: (text: string) => Stream.Stream<TurnEvent, { readonly message: string }>
  readonly reset: Effect.Effect<{ readonly key: string; readonly sessionId: string }, { readonly message: string }>
  readonly history: Effect.Effect<{ readonly key: string; readonly entries: ReadonlyArray<Transcript.Entry> }, { readonly message: string }>
}

interface Target {
  readonly session: Option.Option<string>
  readonly agent: Option.Option<string>
}

/** The credential the running gateway's auth mode asks for: none, its password, or its token (configured, else generated). */
const gatewayToken = (lease: StateLease.Lease) =>
  Effect.gen(function*() {
    const paths = yield* Paths
    const config = yield* loadConfig({ file: paths.configFile, setBy: paths.configFileSetBy })
    const auth = config.gateway.auth
    if (auth.mode === "none") return undefined
    if (auth.mode === "password") {
      if (auth.password !== undefined) return Redacted.value(auth.password)
      return yield* new GatewayUnreachable({ message: `a gateway is running (pid ${lease.pid}) in password mode, but gateway.auth.password is not set in ${paths.configFile}` })
    }
    if (auth.token !== undefined) return Redacted.value(auth.token)
    return yield* Effect.tryPromise({
      try: () => fs.readFile(tokenFile(paths.home), "utf8").then((text) => text.trim()),
      catch: () =>
        new GatewayUnreachable({
          message: `a gateway is running (pid ${lease.pid}) but its token is not configured and ${tokenFile(paths.home)} cannot be read; if it was started with --token, set BEAMCLAW_GATEWAY_TOKEN to that token here too`
        })
    })
  })


/** Runs `use` with the typed RPC client of the gateway that holds the lease, authenticated with its token. */
const withGatewayRpc = <A, E, R>(lease: StateLease.Lease, use: (rpc: BeamclawRpcClient) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const token = yield* gatewayToken(lease)
    const client = yield* Effect.tryPromise({
      try: () => import("../client/index.ts"),
      catch: (error) => new GatewayUnreachable({ message: `cannot load the RPC client: ${String(error)}` })
    })
    const url = `ws://${lease.host === "0.0.0.0" || lease.host === undefined ? "127.0.0.1" : lease.host}:${lease.port ?? 18789}/rpc`
    // A transport failure says where the gateway was expected and what to do, not only the socket's error.
    const unreachable = (error: { readonly message: string }) =>
      new GatewayUnreachable({
        message: `the gateway that holds this state directory (pid ${lease.pid}) did not answer at ${url}: ${error.message}. If it is starting, try again; if it hangs, stop it (kill ${lease.pid}) and run the command again`
      })
    return yield* Effect.flatMap(client.BeamclawClient, use).pipe(
      Effect.provide(client.BeamclawClient.layer({ url, token })),
      Effect.mapError((error) => Predicate.isTagged(error, "RpcClientError") && "message" in error && typeof error.message === "string" ? unreachable({ message: error.message }) : error)
    )
  })

const viaGateway = <A, E, R>(lease: StateLease.Lease, target: Target, use: (access: SessionAccess) => Effect.Effect<A, E, R>) => {
  const which = {
    ...(Option.isSome(target.session) ? { sessionKey: target.session.value } : {}),
    ...(Option.isSome(target.agent) ? { agentId: target.agent.value } : {})
  }
  return withGatewayRpc(lease, (rpc) =>
    use({
      send: (text) => rpc.Send({ ...which, text }),
      reset: rpc.Reset(which).pipe(Effect.map((result) => ({ key: result.sessionKey, sessionId: result.entry.sessionId }))),
      history: rpc.History(which).pipe(Effect.map((result) => ({ key: result.sessionKey, entries: result.entries })))
    })
  )
}

const inProcess = <A, E, R>(command: string, target: Target, use: (access: SessionAccess) => Effect.Effect<A, E, R>) =>
  withSessions(command)(Effect.gen(function*() {
    const sessions = yield* Sessions
    const key = yield* resolveKey(target.session, target.agent)
    return yield* use({
      send: (text) => sessions.send(key, { runId: crypto.randomUUID(), text }),
      reset: sessions.reset(key).pipe(Effect.map((entry) => ({ key, sessionId: entry.sessionId }))),
      history: sessions.history(key).pipe(Effect.map((entries) => ({ key, entries })))
    })
  }))

const withSessionAccess = (command: string, target: Target) => <A, E, R>(use: (access: SessionAccess) => Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const paths = yield* Paths
    const lease = yield* StateLease.current(paths.home)
    return lease?.holder === "gateway" ? yield* viaGateway(lease, target, use) : yield* inProcess(command, target, use)
  }).pipe(Effect.provide(Paths.layer), Effect.provide(App.logToStderr))

const agent = Command.make("agent", {
  message: Flag.String("message").pipe(Flag.withAlias("m"), Flag.withDescription("The message to send")),
  session: sessionFlag,
  agent: agentFlag,
  json
}, (input) =>
  withSessionAccess("agent", input)((access) => renderTurn(access.send(input.message), input.json)).pipe(userFacing)
).pipe(Command.withDescription("Run one agent turn and print the streamed answer (through the gateway when one is running)"))

const chat = Command.make("chat", { session: sessionFlag, agent: agentFlag }, (input) =>
  withSessionAccess("chat", input)((access) =>
    Effect.gen(function*() {
      const terminal = yield* Terminal.Terminal
      const { key } = yield* access.history
      yield* Console.error(`Chatting on ${key}. /new starts over, /exit leaves.`)
      while (true) {
        yield* Effect.sync(() => process.stdout.write("> "))
        const line = yield* terminal.readLine.pipe(Effect.option)
        if (Option.isNone(line)) return
        const text = line.value.trim()
        if (text === "") continue
        if (text === "/exit" || text === "/quit") return
        if (text === "/new" || text === "/reset") {
          const entry = yield* access.reset
          yield* Console.error(`New session ${entry.sessionId}.`)
          continue
        }
        yield* renderTurn(access.send(text), false).pipe(
          Effect.catch((error) => Console.error(`error: ${error.message}`))
        )
      }
    })
  ).pipe(userFacing)
).pipe(Command.withDescription("Chat with an agent interactively (through the gateway when one is running)"))

const renderEntry = (entry: Transcript.Entry): string => {
  if (entry.type === "compaction") return `[compaction] ${entry.summary}`
  if (entry.type === "custom") return `[${entry.customType}]`
  if (entry.type !== "message") return `[${entry.type}]`
  const message = entry.message
  if (message.role === "toolResult") return `tool ${message.toolName}${message.isError ? " (error)" : ""}: ${textOf(message)}`
  if (message.role === "assistant") {
    const calls = message.content.flatMap((part) => part.type === "toolCall" ? [`[tool call ${part.name}]`] : [])
    return `assistant: ${[textOf(message), ...calls].filter((s) => s !== "").join(" ")}`
  }
  return `user: ${textOf(message)}`
}

const sessionsList = Command.make("list", { agent: agentFlag, json }, (input) =>
  Effect.gen(function*() {
    const agents = yield* AgentDirectory
    const agentId = Option.getOrUndefined(input.agent)?.toLowerCase()
    if (agentId !== undefined) yield* agents.settings(agentId)
    const sessions = yield* Sessions
    const rows = yield* sessions.list(agentId)
    if (input.json) return yield* Console.log(JSON.stringify(rows.map((row) => ({ key: row.key, ...row.entry })), null, 2))
    if (rows.length === 0) return yield* Console.log("No sessions yet.")
    for (const row of rows) {
      yield* Console.log(`${row.key}  ${row.entry.sessionId}  turns=${row.entry.turnCount}  tokens=${row.entry.totalTokens}  updated=${new Date(row.entry.updatedAt).toISOString()}`)
    }
  }).pipe(Effect.provide(App.core({ quiet: true, readOnly: true })), Effect.provide(App.logToStderr), userFacing)
).pipe(Command.withDescription("List sessions"))

const keyArgument = Argument.String("key").pipe(Argument.withDescription("Session key (main, agent:main:main, …)"))

const sessionsShow = Command.make("show", { key: keyArgument, agent: agentFlag, json }, (input) =>
  withSessionAccess("sessions show", { session: Option.some(input.key), agent: input.agent })((access) =>
    Effect.gen(function*() {
      const { key, entries } = yield* access.history
      if (input.json) return yield* Console.log(JSON.stringify(entries, null, 2))
      if (entries.length === 0) return yield* Console.log(`${key} has no messages.`)
      for (const entry of entries) yield* Console.log(renderEntry(entry))
    })
  ).pipe(userFacing)
).pipe(Command.withDescription("Show a session's transcript"))

const sessionsReset = Command.make("reset", { key: keyArgument, agent: agentFlag, json }, (input) =>
  withSessionAccess("sessions reset", { session: Option.some(input.key), agent: input.agent })((access) =>
    Effect.gen(function*() {
      const { key, sessionId } = yield* access.reset
      if (input.json) return yield* Console.log(JSON.stringify({ key, sessionId }, null, 2))
      yield* Console.log(`${key} now uses a new session ${sessionId}; the old transcript was archived.`)
    })
  ).pipe(userFacing)
).pipe(Command.withDescription("Start a session anew, archiving its transcript"))

class ConfigNotStartable extends Schema.TaggedError<ConfigNotStartable>()("ConfigNotStartable", {
  message: Schema.String
}) {}

class CleanupRefused extends Schema.TaggedError<CleanupRefused>()("CleanupRefused", {
  message: Schema.String
}) {}

const describeSummary = (summary: CleanupSummary): ReadonlyArray<string> => {
  const removed = summary.beforeCount - summary.afterCount
  const verb = summary.dryRun ? "would remove" : "removed"
  const parts = [
    summary.pruned > 0 ? `${summary.pruned} idle past pruneAfter` : "",
    summary.capped > 0 ? `${summary.capped} over maxEntries` : "",
    summary.missing > 0 ? `${summary.missing} without a transcript` : "",
    (summary.diskBudget?.removedEntries ?? 0) > 0 ? `${summary.diskBudget?.removedEntries} for the disk budget` : ""
  ].filter((part) => part !== "")
  const disk = summary.diskBudget === null
    ? ""
    : `; sessions use ${formatBytes(summary.diskBudget.totalBytesAfter)} of ${formatBytes(summary.diskBudget.maxBytes)}${summary.diskBudget.overBudget ? " (over budget: the rest is kept)" : ""}`
  const archives = summary.archivesRemoved + (summary.diskBudget?.removedFiles ?? 0)
  return [
    `agent ${summary.agentId} (${summary.mode}${summary.dryRun ? ", not applied" : ""}): ${summary.beforeCount} session(s); ${verb} ${removed}${parts.length > 0 ? ` (${parts.join(", ")})` : ""}` +
    `${archives > 0 ? `, ${archives} archive(s) or backup(s)` : ""}${disk}`,
    ...summary.actions.map((action) => `  ${action.key}  ${action.reason}  ${action.transcript === "archive" ? "transcript archived" : "transcript erased"}`)
  ]
}

const sessionsCleanup = Command.make("cleanup", {
  agent: agentFlag,
  allAgents: Flag.Boolean("all-agents").pipe(Flag.withDescription("Every agent that has sessions"), Flag.withDefault(false)),
  dryRun: Flag.Boolean("dry-run").pipe(Flag.withDescription("Say what would be removed; remove nothing"), Flag.withDefault(false)),
  enforce: Flag.Boolean("enforce").pipe(Flag.withDescription("Apply even when session.maintenance.mode is warn"), Flag.withDefault(false)),
  activeKey: Flag.String("active-key").pipe(Flag.withDescription("A session key to keep whatever the rules say"), Flag.optional),
  fixMissing: Flag.Boolean("fix-missing").pipe(Flag.withDescription("Also drop entries whose transcript is gone"), Flag.withDefault(false)),
  json
}, (input) =>
  Effect.gen(function*() {
    if (input.allAgents && Option.isSome(input.agent)) return yield* new CleanupRefused({ message: "give --agent or --all-agents, not both" })
    const paths = yield* Paths
    const lease = yield* StateLease.current(paths.home)
    const options = { dryRun: input.dryRun, enforce: input.enforce, fixMissing: input.fixMissing }
    const summaries: ReadonlyArray<CleanupSummary> = lease?.holder === "gateway"
      ? yield* withGatewayRpc(lease, (rpc) =>
        rpc.CleanupSessions({
          ...options,
          ...(input.allAgents ? { allAgents: true } : {}),
          ...(Option.isSome(input.agent) ? { agentId: input.agent.value } : {}),
          ...(Option.isSome(input.activeKey) ? { activeKey: input.activeKey.value } : {})
        }))
      : yield* withSessions("sessions cleanup")(Effect.gen(function*() {
        const agents = yield* AgentDirectory
        const agentId = input.allAgents ? undefined : Option.isSome(input.agent) ? input.agent.value.toLowerCase() : yield* agents.defaultAgentId
        if (agentId !== undefined) yield* agents.settings(agentId)
        const activeKey = Option.isSome(input.activeKey) ? yield* resolveKey(input.activeKey, Option.fromUndefinedOr(agentId)) : undefined
        return yield* (yield* SessionMaintenance).run({ ...options, agentId, activeKey })
      }).pipe(Effect.provide(SessionMaintenance.layer({ automatic: false }))))
    if (input.json) return yield* Console.log(JSON.stringify(summaries, null, 2))
    if (summaries.length === 0) return yield* Console.log("No sessions yet.")
    for (const summary of summaries) for (const line of describeSummary(summary)) yield* Console.log(line)
  }).pipe(Effect.provide(Paths.layer), Effect.provide(App.logToStderr), userFacing)
).pipe(Command.withDescription("Run session maintenance now (session.maintenance: age, count and disk rules)"))

const sessionsCommand = Command.make("sessions").pipe(
  Command.withDescription("List, show, reset and clean up sessions"),
  Command.withSubcommands([sessionsList, sessionsShow, sessionsReset, sessionsCleanup])
)

const configGet = Command.make("get", {
  path: Argument.String("path").pipe(Argument.withDescription("Dotted path, e.g. gateway.port"), Argument.optional),
  json,
  showSecrets: Flag.Boolean("show-secrets").pipe(Flag.withDescription("Print secrets instead of <redacted>"), Flag.withDefault(false))
}, (input) =>
  Effect.gen(function*() {
    const config = yield* (yield* AppConfig).get
    const options = { revealSecrets: input.showSecrets }
    if (Option.isNone(input.path)) {
      return yield* Console.log(input.json ? JSON.stringify(encodeConfig(config, options), null, 2) : renderYaml(config, options))
    }
    const value = yield* getPath(config, input.path.value, options)
    yield* Console.log(input.json ? JSON.stringify(value ?? null) : renderValue(value))
  }).pipe(Effect.provide(App.base()), Effect.provide(App.logToStderr), userFacing)
).pipe(Command.withDescription("Print the effective config, or one value of it"))

const configValidate = Command.make("validate", { json }, (input) =>
  Effect.gen(function*() {
    const paths = yield* Paths
    const result = yield* Effect.result(loadConfig({ file: paths.configFile, setBy: paths.configFileSetBy }))
    if (result._tag === "Success") {
      // What the gateway would refuse to start on is not valid either.
      const exposure = exposureProblem(result.success)
      if (exposure !== undefined) {
        if (input.json) yield* Console.log(JSON.stringify({ ok: false, file: paths.configFile, issues: [{ path: "gateway", message: exposure }] }, null, 2))
        return yield* new ConfigNotStartable({ message: `${paths.configFile}: the gateway would not start: ${exposure}` })
      }
      return yield* Console.log(input.json ? JSON.stringify({ ok: true, file: paths.configFile, issues: [] }) : `${paths.configFile}: valid`)
    }
    if (input.json) yield* Console.log(JSON.stringify({ ok: false, file: paths.configFile, issues: result.failure.issues }, null, 2))
    return yield* result.failure
  }).pipe(Effect.provide(Paths.layer), userFacing)
).pipe(Command.withDescription("Check the config file and list every problem"))

const configCommand = Command.make("config").pipe(
  Command.withDescription("Read and check the config"),
  Command.withSubcommands([configGet, configValidate])
)

// ---------------------------------------------------------------------------
// channels and pairing

const channelArgument = Argument.String("channel").pipe(Argument.withDescription("Channel id, e.g. discord"))
const codeArgument = Argument.String("code").pipe(Argument.withDescription("The 8-character pairing code"))
const accountFlag = Flag.String("account").pipe(Flag.withDescription("Channel account (default: the default account)"), Flag.optional)

/** The running gateway's lease, or undefined when none runs on this state directory. */
const runningGateway = Effect.gen(function*() {
  const lease = yield* StateLease.current((yield* Paths).home)
  return lease?.holder === "gateway" ? lease : undefined
})

const describeAge = (at: number | undefined, now: number): string => at === undefined ? "never" : `${Math.max(0, Math.round((now - at) / 1000))}s ago`

const channelsStatus = Command.make("status", { json }, (input) =>
  Effect.gen(function*() {
    const lease = yield* runningGateway
    if (lease === undefined) {
      const config = yield* (yield* AppConfig).get
      const enabled = config.channels.discord.enabled ? ["discord"] : []
      if (input.json) return yield* Console.log(JSON.stringify({ gateway: false, enabled, accounts: [] }, null, 2))
      return yield* Console.log(
        enabled.length === 0
          ? "No gateway is running, and no channel is enabled in the config."
          : `No gateway is running; channels run inside it (enabled in the config: ${enabled.join(", ")}). Start it with \`beamclaw gateway\`.`
      )
    }
    const accounts = yield* withGatewayRpc(lease, (rpc) => rpc.ChannelsStatus())
    if (input.json) return yield* Console.log(JSON.stringify({ gateway: true, accounts }, null, 2))
    if (accounts.length === 0) return yield* Console.log("The gateway runs no channel accounts (enable one under `channels` in the config).")
    const now = Date.now()
    for (const a of accounts) {
      yield* Console.log(
        `${a.channel}:${a.accountId}  ${a.state}${a.reconnectAttempts > 0 ? ` (restart ${a.reconnectAttempts})` : ""}` +
          `  in ${describeAge(a.lastInboundAt, now)}  out ${describeAge(a.lastOutboundAt, now)}` +
          (a.lastError === undefined ? "" : `\n  last error: ${a.lastError}`)
      )
    }
  }).pipe(Effect.provide(App.base()), Effect.provide(App.logToStderr), userFacing)
).pipe(Command.withDescription("Show each channel account: connected, last error, restarts, last message in and out"))

const channelsCommand = Command.make("channels").pipe(
  Command.withDescription("Chat channels (Discord)"),
  Command.withSubcommands([channelsStatus])
)

/**
 * Pairing goes through the running gateway when there is one, so it stays
 * the one writer of the pairing files; otherwise the files are changed here,
 * holding the state directory's lease.
 */
const withPairing = <A, E>(
  command: string,
  viaRpc: (rpc: BeamclawRpcClient) => Effect.Effect<A, E>,
  local: (store: PairingStore["Service"]) => Effect.Effect<A, E>
) =>
  Effect.gen(function*() {
    const lease = yield* runningGateway
    if (lease !== undefined) return yield* withGatewayRpc(lease, viaRpc)
    return yield* Effect.scoped(Effect.gen(function*() {
      yield* StateLease.acquire((yield* Paths).home, { name: command })
      return yield* local(yield* PairingStore)
    })).pipe(Effect.provide(PairingStore.layer))
  }).pipe(Effect.provide(Paths.layer), Effect.provide(App.logToStderr))

const pairingList = Command.make("list", { channel: Argument.String("channel").pipe(Argument.withDefault("discord")), account: accountFlag, json }, (input) =>
  Effect.gen(function*() {
    const accountId = Option.getOrUndefined(input.account)
    const requests = yield* withPairing(
      "pairing list",
      (rpc) => rpc.PairingList({ channel: input.channel, ...(accountId === undefined ? {} : { accountId }) }),
      (store) => store.list(input.channel, accountId)
    )
    if (input.json) return yield* Console.log(JSON.stringify(requests, null, 2))
    if (requests.length === 0) return yield* Console.log(`No pending ${input.channel} pairing requests.`)
    for (const request of requests) {
      yield* Console.log(`${request.code}  ${request.meta.name ?? ""} (${request.id})  account ${request.meta.accountId ?? "default"}  asked ${request.createdAt}`)
    }
  }).pipe(userFacing)
).pipe(Command.withDescription("List pending DM pairing requests"))

const pairingApprove = Command.make("approve", { channel: channelArgument, code: codeArgument, account: accountFlag, json }, (input) =>
  Effect.gen(function*() {
    const accountId = Option.getOrUndefined(input.account)
    const target = { channel: input.channel, code: input.code, ...(accountId === undefined ? {} : { accountId }) }
    const request = yield* withPairing("pairing approve", (rpc) => rpc.PairingApprove(target), (store) => store.approve(input.channel, input.code, accountId))
    if (input.json) return yield* Console.log(JSON.stringify(request, null, 2))
    yield* Console.log(`Approved ${request.meta.name ?? request.id} (${request.id}) on ${input.channel}; their next message will be answered.`)
  }).pipe(userFacing)
).pipe(Command.withDescription("Approve a pairing code: its sender may talk to the assistant"))

const pairingReject = Command.make("reject", { channel: channelArgument, code: codeArgument, account: accountFlag, json }, (input) =>
  Effect.gen(function*() {
    const accountId = Option.getOrUndefined(input.account)
    const target = { channel: input.channel, code: input.code, ...(accountId === undefined ? {} : { accountId }) }
    const request = yield* withPairing("pairing reject", (rpc) => rpc.PairingReject(target), (store) => store.reject(input.channel, input.code, accountId))
    if (input.json) return yield* Console.log(JSON.stringify(request, null, 2))
    yield* Console.log(`Rejected the request of ${request.meta.name ?? request.id} (${request.id}) on ${input.channel}.`)
  }).pipe(userFacing)
).pipe(Command.withDescription("Reject a pairing code"))

const pairingCommand = Command.make("pairing").pipe(
  Command.withDescription("DM pairing: list, approve and reject requests"),
  Command.withSubcommands([pairingList, pairingApprove, pairingReject])
)

const port = Flag.Int("port").pipe(Flag.withDescription("Port to listen on (default 18789)"), Flag.optional)
const token = Flag.String("token").pipe(Flag.withDescription("Gateway token"), Flag.optional)

const runGateway = (input: { readonly port: Option.Option<number>; readonly token: Option.Option<string> }) =>
  launchGateway({
    ...(Option.isSome(input.port) ? { port: input.port.value } : {}),
    ...(Option.isSome(input.token) ? { token: input.token.value } : {})
  }).pipe(userFacing)

const gatewayCommand = Command.make("gateway", { port, token }, runGateway).pipe(
  Command.withDescription("Run the gateway (the default when no command is given)")
)

export const root = Command.make("beamclaw", { port, token }, runGateway).pipe(
  Command.withDescription("BeamClaw: your self-hosted personal AI assistant gateway"),
  Command.withSubcommands([gatewayCommand, agent, chat, sessionsCommand, configCommand, channelsCommand, pairingCommand])
)

export const run = Command.run(root, { version: VERSION })

import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted, Result, Schema } from "effect"
import { issuesFromSchema } from "../../src/config/ConfigLoader.ts"
import {
  agentModel,
  BeamclawConfig,
  defaultAgentId,
  defaultConfig,
  parseOptions
} from "../../src/config/ConfigSchema.ts"

const decode = (input: unknown) => Schema.decodeUnknownResult(BeamclawConfig, parseOptions)(input)

const decodeOk = (input: unknown): BeamclawConfig => {
  const result = decode(input)
  if (Result.isFailure(result)) throw new Error(`expected a valid config: ${result.failure.message}`)
  return result.success
}

const issues = (input: unknown) => {
  const result = decode(input)
  if (Result.isSuccess(result)) throw new Error("expected an invalid config")
  return issuesFromSchema(result.failure.issue)
}

describe("ConfigSchema", () => {
  it("decodes an empty object to the full default config", () => {
    const config = decodeOk({})
    assert.deepStrictEqual(config, defaultConfig)
    assert.strictEqual(config.gateway.port, 18789)
    assert.strictEqual(config.gateway.bind, "loopback")
    assert.strictEqual(config.gateway.auth.mode, "token")
    assert.isUndefined(config.gateway.auth.token)
    assert.deepStrictEqual(config.gateway.auth.rateLimit, { maxAttempts: 10, windowMs: 60000, lockoutMs: 300000, exemptLoopback: true })
    assert.deepStrictEqual(config.gateway.http.endpoints.chatCompletions, { enabled: true, maxBodyBytes: 20 * 1024 * 1024 })
    assert.deepStrictEqual(config.agents.defaults.model, { primary: "anthropic/claude-sonnet-5-5", fallbacks: [] })
    assert.strictEqual(config.agents.defaults.timeoutSeconds, 600)
    assert.strictEqual(config.agents.defaults.contextTokens, 200000)
    assert.strictEqual(config.agents.defaults.maxTokens, 8192)
    assert.strictEqual(config.agents.defaults.thinkingDefault, "off")
    assert.deepStrictEqual(config.agents.defaults.compaction, { reserveTokens: 16384, keepRecentTokens: 20000 })
    assert.deepStrictEqual(config.agents.defaults.heartbeat, { every: "30m", target: "last", ackMaxChars: 30 })
    // Unset: the session host uses OpenClaw's max(8, parallelism x 4) (RunLane.defaultMaxConcurrent).
    assert.isUndefined(config.agents.defaults.maxConcurrent)
    assert.deepStrictEqual(config.agents.list, [])
    assert.deepStrictEqual(config.session.resetTriggers, ["/new", "/reset"])
    assert.deepStrictEqual(config.session.reset, { mode: "daily", atHour: 4 })
    assert.deepStrictEqual(config.session.idle, { passivateAfterSeconds: 300 })
    assert.deepStrictEqual(config.session.supervisor, { maxRestarts: 5, withinSeconds: 60, backoffMs: 200 })
    assert.strictEqual(config.channels.discord.enabled, false)
    assert.strictEqual(config.channels.discord.dmPolicy, "pairing")
    assert.strictEqual(config.channels.discord.groupPolicy, "allowlist")
    assert.strictEqual(config.channels.discord.textChunkLimit, 2000)
    assert.deepStrictEqual(config.cron, { enabled: true, maxConcurrentRuns: 1 })
    assert.deepStrictEqual(config.hooks, { enabled: false, path: "/hooks" })
    assert.deepStrictEqual(config.logging, { level: "info" })
  })

  it("fills defaults inside a partially written section", () => {
    const config = decodeOk({ gateway: { auth: { rateLimit: { maxAttempts: 3 } } } })
    assert.deepStrictEqual(config.gateway.auth.rateLimit, { maxAttempts: 3, windowMs: 60000, lockoutMs: 300000, exemptLoopback: true })
    assert.strictEqual(config.gateway.port, 18789)
  })

  it("normalises a model string and a model object to {primary, fallbacks}", () => {
    const config = decodeOk({
      agents: {
        defaults: { model: "openai/gpt-4.1" },
        list: [
          { id: "a", model: { primary: "anthropic/claude-opus-4-1", fallbacks: ["openai/gpt-4.1"] } },
          { id: "b", model: { primary: "anthropic/claude-haiku-4-5" } },
          { id: "c" }
        ]
      }
    })
    assert.deepStrictEqual(config.agents.defaults.model, { primary: "openai/gpt-4.1", fallbacks: [] })
    assert.deepStrictEqual(agentModel(config, "a"), {
      primary: "anthropic/claude-opus-4-1",
      fallbacks: ["openai/gpt-4.1"]
    })
    assert.deepStrictEqual(agentModel(config, "b"), { primary: "anthropic/claude-haiku-4-5", fallbacks: [] })
    assert.deepStrictEqual(agentModel(config, "c"), { primary: "openai/gpt-4.1", fallbacks: [] })
  })

  it("gateway.http.endpoints.responses: off by default; a bad limit in files or images is named by its path", () => {
    assert.isFalse(decodeOk({}).gateway.http.endpoints.responses.enabled)
    const ok = decodeOk({ gateway: { http: { endpoints: { responses: { enabled: true, files: { maxBytes: 1024, maxChars: 10, pdf: { maxPages: 2 } }, images: { allowUrl: false, allowedMimes: ["image/png"] } } } } } })
    assert.deepStrictEqual(ok.gateway.http.endpoints.responses.images, { allowUrl: false, allowedMimes: ["image/png"] })
    const paths = (input: unknown) => issues({ gateway: { http: { endpoints: { responses: input } } } }).map((issue) => issue.path)
    assert.deepStrictEqual(paths({ images: { maxBytes: 0 } }), ["gateway.http.endpoints.responses.images.maxBytes"])
    assert.deepStrictEqual(paths({ files: { timeoutMs: -5 } }), ["gateway.http.endpoints.responses.files.timeoutMs"])
    assert.deepStrictEqual(paths({ images: { allowedMimes: [""] } }), ["gateway.http.endpoints.responses.images.allowedMimes[0]"])
    assert.deepStrictEqual(paths({ images: { maxChars: 5 } }), ["gateway.http.endpoints.responses.images.maxChars"], "maxChars is for files only")
  })

  it("rejects a model reference without a provider", () => {
    assert.deepStrictEqual(issues({ agents: { defaults: { model: "claude" } } }), [
      {
        path: "agents.defaults.model",
        message: "expected a model reference \"provider/model\", got \"claude\""
      }
    ])
  })

  it("lower-cases agent ids and picks the default agent like OpenClaw", () => {
    const config = decodeOk({ agents: { list: [{ id: "Work" }, { id: "Home", default: true }] } })
    assert.deepStrictEqual(config.agents.list.map((agent) => agent.id), ["work", "home"])
    assert.strictEqual(defaultAgentId(config), "home")
    assert.strictEqual(defaultAgentId(decodeOk({ agents: { list: [{ id: "Work" }, { id: "x" }] } })), "work")
    assert.strictEqual(defaultAgentId(defaultConfig), "main")
  })

  it("reports duplicate agent ids, case-insensitively, at the later entries", () => {
    assert.deepStrictEqual(issues({ agents: { list: [{ id: "Main" }, { id: "work" }, { id: "main" }, { id: "MAIN" }] } }), [
      { path: "agents.list[2].id", message: "duplicate agent id \"main\" (also used by agents.list[0])" },
      { path: "agents.list[3].id", message: "duplicate agent id \"main\" (also used by agents.list[0])" }
    ])
  })

  it("rejects agent ids outside the OpenClaw pattern", () => {
    const found = issues({ agents: { list: [{ id: "-bad" }, { id: "a".repeat(65) }, { id: "ok_1-x" }] } })
    assert.deepStrictEqual(found.map((issue) => issue.path), ["agents.list[0].id", "agents.list[1].id"])
  })

  it("decodes secrets to Redacted values that never print", () => {
    const config = decodeOk({
      gateway: { auth: { token: "gw-secret" } },
      models: { providers: { anthropic: { baseUrl: "https://api.anthropic.com", apiKey: "sk-secret", headers: { authorization: "Bearer hdr-secret" } } } }
    })
    const token = config.gateway.auth.token
    assert.isTrue(token !== undefined && Redacted.isRedacted(token))
    assert.strictEqual(token === undefined ? undefined : Redacted.value(token), "gw-secret")
    const printed = `${String(token)} ${JSON.stringify(config)} ${Effect.runSync(Effect.succeed(config).pipe(Effect.map(String)))}`
    assert.notInclude(printed, "gw-secret")
    assert.notInclude(printed, "sk-secret")
    assert.notInclude(printed, "hdr-secret", "provider headers are secrets too (an Authorization often goes there)")
    assert.isTrue(Result.isSuccess(decode({ models: { providers: { x: { baseUrl: "http://h", headers: { "x-empty": "" } } } } })), "an empty header value is still accepted, as OpenClaw")
    assert.include(String(config.models.providers["anthropic"]?.apiKey), "<redacted>")
  })

  it("requires baseUrl on a provider and applies the provider defaults", () => {
    const config = decodeOk({ models: { providers: { local: { baseUrl: "http://127.0.0.1:11434/v1" } } } })
    assert.deepStrictEqual(config.models.providers["local"], {
      baseUrl: "http://127.0.0.1:11434/v1",
      api: "anthropic-messages",
      headers: {},
      models: []
    })
    assert.deepStrictEqual(issues({ models: { providers: { local: { api: "openai-completions" } } } }), [
      { path: "models.providers.local.baseUrl", message: "missing required key" }
    ])
  })

  it("numeric and boolean fields accept a string that is exactly their literal", () => {
    const config = decodeOk({
      gateway: { port: "1234", auth: { rateLimit: { lockoutMs: "0", windowMs: "6e4" } } },
      channels: { discord: { enabled: "true", guilds: { g: { requireMention: "FALSE" } } } },
      cron: { enabled: "false" },
      agents: { list: [{ id: "a", default: "True" }] },
      models: { providers: { p: { baseUrl: "http://x", models: [{ id: "m", contextWindow: "1000", reasoning: "false" }] } } }
    })
    assert.strictEqual(config.gateway.port, 1234)
    assert.strictEqual(config.gateway.auth.rateLimit.lockoutMs, 0)
    assert.strictEqual(config.gateway.auth.rateLimit.windowMs, 60000)
    assert.strictEqual(config.channels.discord.enabled, true)
    assert.strictEqual(config.channels.discord.guilds["g"]?.requireMention, false)
    assert.strictEqual(config.cron.enabled, false)
    assert.strictEqual(config.agents.list[0]?.default, true)
    assert.deepStrictEqual(config.models.providers["p"]?.models[0], { id: "m", contextWindow: 1000, reasoning: false })
    // Plain numbers and booleans still decode as before.
    assert.strictEqual(decodeOk({ gateway: { port: 4321 }, cron: { enabled: false } }).gateway.port, 4321)
  })

  it("a non-literal string in a numeric or boolean field reads the same as a wrong type", () => {
    assert.deepStrictEqual(
      issues({
        gateway: { port: "abc", auth: { rateLimit: { maxAttempts: " 3" } } },
        session: { reset: { atHour: "24" } },
        agents: { defaults: { maxTokens: "1.5", contextTokens: "0x10" } },
        cron: { enabled: "yes", maxConcurrentRuns: "" },
        hooks: { enabled: "1" }
      }),
      [
        { path: "gateway.port", message: "expected an integer 1..65535, got \"abc\"" },
        { path: "gateway.auth.rateLimit.maxAttempts", message: "expected a positive integer, got \" 3\"" },
        { path: "agents.defaults.contextTokens", message: "expected a positive integer, got \"0x10\"" },
        { path: "agents.defaults.maxTokens", message: "expected a positive integer, got \"1.5\"" },
        { path: "session.reset.atHour", message: "expected an integer 0..23, got \"24\"" },
        { path: "cron.enabled", message: "expected true or false, got \"yes\"" },
        { path: "cron.maxConcurrentRuns", message: "expected a positive integer, got \"\"" },
        { path: "hooks.enabled", message: "expected true or false, got \"1\"" }
      ]
    )
    // Wrong types keep their messages too.
    assert.deepStrictEqual(issues({ gateway: { port: true }, cron: { enabled: 1 } }), [
      { path: "gateway.port", message: "expected an integer 1..65535, got true" },
      { path: "cron.enabled", message: "expected true or false, got 1" }
    ])
  })

  it("string fields stay strings even when they look like numbers or booleans", () => {
    const config = decodeOk({
      gateway: { auth: { token: "1234" } },
      agents: { list: [{ id: "a", name: "true" }] },
      session: { mainKey: "42" }
    })
    const token = config.gateway.auth.token
    assert.strictEqual(token === undefined ? undefined : Redacted.value(token), "1234")
    assert.strictEqual(config.agents.list[0]?.name, "true")
    assert.strictEqual(config.session.mainKey, "42")
  })
  it("native commands: commands.native \"auto\" by default, true/false (also as literal strings), a Discord override, ephemeral slash answers by default", () => {
    const defaults = decodeOk({})
    assert.strictEqual(defaults.commands.native, "auto")
    assert.isUndefined(defaults.channels.discord.commands)
    assert.deepStrictEqual(defaults.channels.discord.slashCommand, { ephemeral: true })
    const set = decodeOk({ commands: { native: "false" }, channels: { discord: { commands: { native: true }, slashCommand: { ephemeral: false } } } })
    assert.strictEqual(set.commands.native, false)
    assert.strictEqual(set.channels.discord.commands?.native, true)
    assert.strictEqual(set.channels.discord.slashCommand.ephemeral, false)
    assert.strictEqual(decodeOk({ channels: { discord: { commands: { native: "auto" } } } }).channels.discord.commands?.native, "auto")
    assert.deepStrictEqual(issues({ commands: { native: "sometimes" } }).map((issue) => issue.path), ["commands.native"])
    assert.deepStrictEqual(issues({ channels: { discord: { slashCommand: { ephemeral: "yes" } } } }).map((issue) => issue.path), ["channels.discord.slashCommand.ephemeral"])
  })

  it("session.maintenance: OpenClaw's defaults; durations, sizes and false; a bad value or an unknown key is named by its path", () => {
    assert.deepStrictEqual(decodeOk({}).session.maintenance, { mode: "enforce", pruneAfter: "30d", maxEntries: 5000, maxDiskBytes: "10gb" })
    const ok = decodeOk({ session: { maintenance: { mode: "warn", pruneAfter: false, maxEntries: "200", preserveRecent: "7d", resetArchiveRetention: "14d", maxDiskBytes: 0, highWaterBytes: "400mb" } } })
    assert.deepStrictEqual(ok.session.maintenance, { mode: "warn", pruneAfter: false, maxEntries: 200, preserveRecent: "7d", resetArchiveRetention: "14d", maxDiskBytes: 0, highWaterBytes: "400mb" })
    assert.strictEqual(decodeOk({ session: { maintenance: { maxDiskBytes: "false", pruneAfter: "false" } } }).session.maintenance.pruneAfter, "false", "the string from ${VAR}")
    assert.deepStrictEqual(issues({ session: { maintenance: { pruneAfter: "thirty days", maxDiskBytes: "lots", maxEntries: 0, mode: "strict", resetArchiveRetention: "0d" } } }), [
      { path: "session.maintenance.mode", message: "expected one of \"enforce\", \"warn\", got \"strict\"" },
      { path: "session.maintenance.pruneAfter", message: "expected a duration like \"30d\", \"12h\" (above zero), or false, got \"thirty days\"" },
      { path: "session.maintenance.maxEntries", message: "expected a positive integer, got 0" },
      { path: "session.maintenance.resetArchiveRetention", message: "expected a duration like \"30d\", \"12h\" (above zero), or false, got \"0d\"" },
      { path: "session.maintenance.maxDiskBytes", message: "expected a size like \"500mb\", \"10gb\" or a number of bytes, or false, got \"lots\"" }
    ])
    assert.deepStrictEqual(issues({ session: { maintenance: { archiveDashboardAfter: "7d" } } }).map((issue) => issue.path), ["session.maintenance.archiveDashboardAfter"], "OpenClaw keys BeamClaw does not have are refused by name")
  })
})

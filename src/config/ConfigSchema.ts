/**
 * The schema of `beamclaw.yaml`, with OpenClaw's key names and concepts.
 *
 * Every key is optional and its default is applied on decode, so an empty or
 * missing file decodes to the complete default config. Unknown keys are errors
 * (the loader decodes with `onExcessProperty: "error"`). Secrets decode to
 * `Redacted` so they never show up in logs; see `encodeConfig` for output.
 */
import { Effect, Redacted, Result, Schema, SchemaGetter, SchemaTransformation } from "effect"
import { parseModelRef } from "../provider/ModelRef.ts"
import { Bindings } from "../channels/Bindings.ts"
import { byteSize, DURATION_PATTERN, durationMs } from "./Units.ts"

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

/** Absent key → `value` (given in the encoded form, so nested defaults still apply). */
const withDefault = <S extends Schema.Top>(value: S["Encoded"]) => (schema: S) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

// Exactly a number as YAML/JSON would write it; no hex, no spaces, no `Infinity`.
const NUMBER_LITERAL = /^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$/
const BOOLEAN_LITERALS: ReadonlyMap<string, boolean> = new Map([
  ["true", true],
  ["True", true],
  ["TRUE", true],
  ["false", false],
  ["False", false],
  ["FALSE", false]
])

/**
 * `typeSchema` (number or boolean, with its checks), or a string that is
 * exactly such a literal (`"1234"`, `"true"`): `${VAR}` substitution always
 * yields a string, and it must work in any field. The string is validated in
 * full (literal and the same range) before it is converted, and with the same
 * `expected` text, so `"abc"`, `"70000"`, `70000` and `true` all read
 * `expected an integer 1..65535, got …`.
 *
 * Why no check after the conversion: effect 4.1.0 drops a filter failure that
 * follows an effectful decode step inside a struct that has a decoding
 * default (our nested sections), when decoding with `errors: "all"`.
 */
const withLiteralString = <T extends number | boolean>(
  typeSchema: Schema.Codec<T>,
  options: {
    readonly isLiteral: (text: string) => boolean
    readonly convert: (text: string) => T
    readonly isValid: (value: T) => boolean
    readonly expected: string
  }
) => {
  const { convert, expected, isLiteral, isValid } = options
  const fromString = Schema.String.check(
    Schema.makeFilter((text: string) => isLiteral(text) && isValid(convert(text)), { expected })
  ).pipe(
    Schema.decodeTo(Schema.toType(typeSchema), {
      decode: SchemaGetter.transform(convert),
      encode: SchemaGetter.transform((value: T) => String(value))
    })
  )
  return Schema.Union([typeSchema.check(Schema.makeFilter(isValid, { expected })), fromString]).annotate({ expected })
}

/** `true`/`false`, or the string `"true"`/`"false"` (also `True`, `FALSE`, as YAML spells them). */
const Bool = withLiteralString(Schema.Boolean, {
  isLiteral: (text) => BOOLEAN_LITERALS.has(text),
  convert: (text) => BOOLEAN_LITERALS.get(text) === true,
  isValid: () => true,
  expected: "true or false"
})

/**
 * One `expected` text for a wrong type (`"abc"`, `true`) and a wrong value
 * (`70000`, `"70000"`): `expected an integer 1..65535`. A numeric string
 * (`"1234"`, from `${VAR}`) decodes to its number. One schema per range,
 * shared by every field with that range: this module is evaluated at every
 * start, and building (and on first decode compiling) two dozen copies of
 * the same union showed up there.
 */
const int = (min: number, max?: number) => {
  const key = `${min}..${max ?? ""}`
  const known = intSchemas.get(key)
  if (known !== undefined) return known
  const schema = makeInt(min, max)
  intSchemas.set(key, schema)
  return schema
}

const makeInt = (min: number, max: number | undefined) => {
  const expected = max !== undefined
    ? `an integer ${min}..${max}`
    : min === 0
    ? "a non-negative integer"
    : min === 1
    ? "a positive integer"
    : `an integer >= ${min}`
  return withLiteralString(Schema.Number, {
    isLiteral: (text) => NUMBER_LITERAL.test(text),
    convert: Number,
    isValid: (n) => Number.isInteger(n) && n >= min && (max === undefined || n <= max),
    expected
  })
}

const intSchemas = new Map<string, ReturnType<typeof makeInt>>()

const NonEmpty = Schema.String.check(Schema.isNonEmpty({ expected: "a non-empty string" })).annotate({
  expected: "a non-empty string"
})

/** A secret string: decodes to `Redacted` so it prints as `<redacted>`. */
export const Secret = Schema.RedactedFromValue(NonEmpty)

const DurationString = Schema.String.check(
  Schema.makeFilter((s: string) => DURATION_PATTERN.test(s.trim()), { expected: "a duration like \"30m\", \"90s\", \"2h\"" })
).annotate({ expected: "a duration like \"30m\", \"90s\", \"2h\"" })

const isOff = (s: string) => s === "false"

/** A duration above zero, or `false` (also the string, from `${VAR}`) to turn the rule off. */
const DurationOrOff = (() => {
  const expected = "a duration like \"30d\", \"12h\" (above zero), or false"
  return Schema.Union([
    Schema.String.check(Schema.makeFilter((s: string) => isOff(s) || (durationMs(s) ?? 0) > 0, { expected })),
    Schema.Literal(false)
  ]).annotate({ expected })
})()

/** A size like "500mb", "10gb" or a number of bytes; `false` or 0 turns the budget off (as OpenClaw). */
const ByteSizeOrOff = (() => {
  const expected = "a size like \"500mb\", \"10gb\" or a number of bytes, or false"
  return Schema.Union([
    Schema.Number.check(Schema.makeFilter((n: number) => byteSize(n) !== undefined, { expected })),
    Schema.String.check(Schema.makeFilter((s: string) => isOff(s) || byteSize(s) !== undefined, { expected })),
    Schema.Literal(false)
  ]).annotate({ expected })
})()

const ModelRefString = Schema.String.check(
  Schema.makeFilter((s: string) => Result.isSuccess(parseModelRef(s)), {
    expected: "a model reference \"provider/model\""
  })
).annotate({ expected: "a model reference \"provider/model\"" })

export const ThinkingLevel = Schema.Literals(["off", "minimal", "low", "medium", "high", "xhigh"])
export type ThinkingLevel = typeof ThinkingLevel.Type

export const LogLevel = Schema.Literals(["trace", "debug", "info", "warn", "error"])
export type LogLevel = typeof LogLevel.Type

// ---------------------------------------------------------------------------
// Models
// ---------------------------------------------------------------------------

/** The normalised model selection: a primary `provider/model` and ordered fallbacks. */
export const ModelSelection = Schema.Struct({
  primary: ModelRefString,
  fallbacks: Schema.Array(ModelRefString)
})
export type ModelSelection = typeof ModelSelection.Type

// Eager, unlike the sections below: a union picks its candidates by the input's type, which it cannot see through a suspended member.
const ModelSelectionInput = Schema.Struct({
  primary: ModelRefString,
  fallbacks: Schema.Array(ModelRefString).pipe(withDefault([]))
})

/** `"provider/model"` or `{primary, fallbacks}`; always decodes to `{primary, fallbacks}`. */
export const ModelConfig = Schema.suspend(() =>
  Schema.Union([ModelRefString, ModelSelectionInput]).annotate({
    expected: "a model reference \"provider/model\" or {primary, fallbacks}"
  }).pipe(
    Schema.decodeTo(
      Schema.toType(ModelSelection),
      {
        decode: SchemaGetter.transform((input) => typeof input === "string" ? { primary: input, fallbacks: [] } : input),
        encode: SchemaGetter.passthroughSupertype()
      }
    )
  )
)

export const DEFAULT_MODEL = "anthropic/claude-sonnet-5-5"

export const ProviderApi = Schema.Literals(["anthropic-messages", "openai-completions"])
export type ProviderApi = typeof ProviderApi.Type

export const ProviderModel = Schema.suspend(() =>
  Schema.Struct({
    id: NonEmpty,
    name: Schema.optionalKey(Schema.String),
    contextWindow: Schema.optionalKey(int(1)),
    maxTokens: Schema.optionalKey(int(1)),
    reasoning: Schema.optionalKey(Bool)
  })
)

export const ProviderConfig = Schema.suspend(() =>
  Schema.Struct({
    baseUrl: NonEmpty,
    apiKey: Schema.optionalKey(Secret),
    api: ProviderApi.pipe(withDefault("anthropic-messages")),
    /** Extra request headers; secret like the key (an `Authorization` or `x-api-key` often goes here), so redacted wherever printed. */
    headers: Schema.Record(Schema.String, Schema.RedactedFromValue(Schema.String)).pipe(withDefault({})),
    models: Schema.Array(ProviderModel).pipe(withDefault([]))
  })
)
export type ProviderConfig = typeof ProviderConfig.Type

export const ModelsConfig = Schema.suspend(() =>
  Schema.Struct({
    providers: Schema.Record(Schema.String, ProviderConfig).pipe(withDefault({}))
  })
)

// ---------------------------------------------------------------------------
// gateway
// ---------------------------------------------------------------------------

export const RateLimitConfig = Schema.suspend(() =>
  Schema.Struct({
    maxAttempts: int(1).pipe(withDefault(10)),
    windowMs: int(1).pipe(withDefault(60_000)),
    lockoutMs: int(0).pipe(withDefault(300_000)),
    /** Loopback clients are never locked out, as in OpenClaw. */
    exemptLoopback: Bool.pipe(withDefault(true))
  })
)

export const GatewayAuthConfig = Schema.suspend(() =>
  Schema.Struct({
    mode: Schema.Literals(["token", "password", "none"]).pipe(withDefault("token")),
    token: Schema.optionalKey(Secret),
    password: Schema.optionalKey(Secret),
    rateLimit: RateLimitConfig.pipe(withDefault({}))
  })
)

/** OpenClaw's limits for an image or a file a client gives by URL (`images.*`, `files.*` of the compatibility endpoints). */
const urlSourceFields = () => ({
  allowUrl: Schema.optionalKey(Bool),
  urlAllowlist: Schema.optionalKey(Schema.Array(NonEmpty)),
  allowedMimes: Schema.optionalKey(Schema.Array(NonEmpty)),
  maxBytes: Schema.optionalKey(int(1)),
  maxRedirects: Schema.optionalKey(int(0)),
  timeoutMs: Schema.optionalKey(int(1))
})

/** OpenClaw's shared SSRF policy shape (its webhooks and browser take it), for URL fetches that must reach a private network. */
const SsrfPolicyConfig = Schema.suspend(() =>
  Schema.Struct({
    /** Private, loopback, link-local and other special-use addresses may be fetched from. */
    dangerouslyAllowPrivateNetwork: Schema.optionalKey(Bool),
    /** Hosts whose addresses are not checked (the URL allowlists still apply). */
    allowedHostnames: Schema.optionalKey(Schema.Array(NonEmpty))
  })
)

/**
 * POST /v1/responses (OpenResponses), off by default as in OpenClaw. The
 * `files`, `images` and `maxUrlParts` keys are OpenClaw's and mean what they
 * mean there (images by URL and files by URL are fetched through the SSRF
 * guard, src/platform/GuardedFetch.ts; PDFs are read for their text), except
 * `files.pdf.maxPixels`, accepted so OpenClaw's config loads (BeamClaw
 * renders no PDF pages as images; `minTextChars` says when a PDF is taken
 * for a scan and the model told so), and image types
 * without a converter (HEIC, HEIF), which stay refused. `ssrfPolicy` is
 * OpenClaw's shared SSRF policy shape, for URL fetches that must reach a
 * private network.
 */
export const ResponsesEndpointConfig = Schema.suspend(() => {
  // Built with the rest of the schema on the first decode, not when the module loads (start-up).
  const fetchLimits = urlSourceFields()
  return Schema.Struct({
    enabled: Bool.pipe(withDefault(false)),
    maxBodyBytes: int(1).pipe(withDefault(20 * 1024 * 1024)),
    maxUrlParts: Schema.optionalKey(int(0)),
    files: Schema.optionalKey(Schema.Struct({
      ...fetchLimits,
      maxChars: Schema.optionalKey(int(1)),
      pdf: Schema.optionalKey(Schema.Struct({
        maxPages: Schema.optionalKey(int(1)),
        maxPixels: Schema.optionalKey(int(1)),
        minTextChars: Schema.optionalKey(int(0))
      }))
    })),
    images: Schema.optionalKey(Schema.Struct(fetchLimits)),
    ssrfPolicy: Schema.optionalKey(SsrfPolicyConfig)
  })
})

export const GatewayConfig = Schema.suspend(() =>
  Schema.Struct({
    port: int(1, 65535).pipe(withDefault(18789)),
    bind: Schema.Literals(["loopback", "lan", "custom"]).pipe(withDefault("loopback")),
    customBindHost: Schema.optionalKey(NonEmpty),
    auth: GatewayAuthConfig.pipe(withDefault({})),
    http: Schema.Struct({
      endpoints: Schema.Struct({
        chatCompletions: Schema.Struct({
          enabled: Bool.pipe(withDefault(true)),
          maxBodyBytes: int(1).pipe(withDefault(20 * 1024 * 1024)),
          // OpenClaw's: `images.allowUrl` is off by default here; maxBytes and allowedMimes apply to inline images too.
          images: Schema.optionalKey(Schema.Struct(urlSourceFields())),
          ssrfPolicy: Schema.optionalKey(SsrfPolicyConfig)
        }).pipe(withDefault({})),
        responses: ResponsesEndpointConfig.pipe(withDefault({}))
      }).pipe(withDefault({}))
    }).pipe(withDefault({}))
  })
)

// ---------------------------------------------------------------------------
// agents
// ---------------------------------------------------------------------------

const AGENT_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/i
const AGENT_ID_EXPECTED = "an agent id (letters, digits, `_` or `-`, at most 64, starting with a letter or digit)"

/** Agent ids are case-insensitive; they decode lower-cased. */
export const AgentId = Schema.String.check(
  Schema.makeFilter((s: string) => AGENT_ID.test(s), { expected: AGENT_ID_EXPECTED })
).annotate({ expected: AGENT_ID_EXPECTED }).pipe(
  Schema.decodeTo(Schema.String, SchemaTransformation.toLowerCase())
)

export const HeartbeatConfig = Schema.suspend(() =>
  Schema.Struct({
    every: DurationString.pipe(withDefault("30m")),
    /** `last` (where the user last wrote), `none`, or a channel id. */
    target: NonEmpty.pipe(withDefault("last")),
    prompt: Schema.optionalKey(Schema.String),
    ackMaxChars: int(0).pipe(withDefault(30))
  })
)

export const AgentDefaultsConfig = Schema.suspend(() =>
  Schema.Struct({
    workspace: Schema.optionalKey(NonEmpty),
    model: ModelConfig.pipe(withDefault(DEFAULT_MODEL)),
    models: Schema.Record(
      ModelRefString,
      Schema.Struct({
        alias: Schema.optionalKey(NonEmpty),
        params: Schema.optionalKey(Schema.Record(Schema.String, Schema.Unknown))
      })
    ).pipe(withDefault({})),
    timeoutSeconds: int(1).pipe(withDefault(600)),
    contextTokens: int(1).pipe(withDefault(200_000)),
    maxTokens: int(1).pipe(withDefault(8192)),
    thinkingDefault: ThinkingLevel.pipe(withDefault("off")),
    bootstrapMaxChars: int(0).pipe(withDefault(20_000)),
    bootstrapTotalMaxChars: int(0).pipe(withDefault(150_000)),
    skipBootstrap: Bool.pipe(withDefault(false)),
    userTimezone: Schema.optionalKey(NonEmpty),
    compaction: Schema.Struct({
      reserveTokens: int(0).pipe(withDefault(16_384)),
      keepRecentTokens: int(0).pipe(withDefault(20_000))
    }).pipe(withDefault({})),
    heartbeat: HeartbeatConfig.pipe(withDefault({})),
    /** Unset: OpenClaw's max(8, available parallelism × 4) (session/RunLane.ts). */
    maxConcurrent: Schema.optionalKey(int(1))
  })
)

export const AgentEntry = Schema.suspend(() =>
  Schema.Struct({
    id: AgentId,
    default: Schema.optionalKey(Bool),
    name: Schema.optionalKey(Schema.String),
    workspace: Schema.optionalKey(NonEmpty),
    model: Schema.optionalKey(ModelConfig)
  })
)
export type AgentEntry = typeof AgentEntry.Type

const uniqueAgentIds = Schema.makeFilter((agents: ReadonlyArray<{ readonly id: string }>) => {
  const firstIndex = new Map<string, number>()
  const issues: Array<{ path: ReadonlyArray<PropertyKey>; issue: string }> = []
  agents.forEach((agent, index) => {
    const first = firstIndex.get(agent.id)
    if (first === undefined) {
      firstIndex.set(agent.id, index)
    } else {
      issues.push({ path: [index, "id"], issue: `duplicate agent id "${agent.id}" (also used by agents.list[${first}])` })
    }
  })
  return issues
})

export const AgentsConfig = Schema.suspend(() =>
  Schema.Struct({
    defaults: AgentDefaultsConfig.pipe(withDefault({})),
    list: Schema.Array(AgentEntry).check(uniqueAgentIds).pipe(withDefault([]))
  })
)

// ---------------------------------------------------------------------------
// session
// ---------------------------------------------------------------------------

export const DmScope = Schema.Literals(["main", "per-peer", "per-channel-peer", "per-account-channel-peer"])
export type DmScope = typeof DmScope.Type

export const SessionConfig = Schema.suspend(() =>
  Schema.Struct({
    dmScope: DmScope.pipe(withDefault("main")),
    mainKey: NonEmpty.pipe(withDefault("main")),
    resetTriggers: Schema.Array(NonEmpty).pipe(withDefault(["/new", "/reset"])),
    reset: Schema.Struct({
      mode: Schema.Literals(["daily", "idle"]).pipe(withDefault("daily")),
      atHour: int(0, 23).pipe(withDefault(4)),
      idleMinutes: Schema.optionalKey(int(1))
    }).pipe(withDefault({})),
    /** In-memory session actors are passivated (stopped, state stays on disk) after this much idle time. */
    idle: Schema.Struct({
      passivateAfterSeconds: int(1).pipe(withDefault(300))
    }).pipe(withDefault({})),
    supervisor: Schema.Struct({
      maxRestarts: int(0).pipe(withDefault(5)),
      withinSeconds: int(1).pipe(withDefault(60)),
      backoffMs: int(0).pipe(withDefault(200))
    }).pipe(withDefault({})),
    /** OpenClaw's session.maintenance: what bounds the sessions kept on disk (session/SessionMaintenance.ts). */
    maintenance: Schema.Struct({
      mode: Schema.Literals(["enforce", "warn"]).pipe(withDefault("enforce")),
      pruneAfter: DurationOrOff.pipe(withDefault("30d")),
      maxEntries: int(1).pipe(withDefault(5000)),
      preserveRecent: Schema.optionalKey(DurationOrOff),
      resetArchiveRetention: Schema.optionalKey(DurationOrOff),
      maxDiskBytes: ByteSizeOrOff.pipe(withDefault("10gb")),
      highWaterBytes: Schema.optionalKey(ByteSizeOrOff)
    }).pipe(withDefault({}))
  })
)

// ---------------------------------------------------------------------------
// channels
// ---------------------------------------------------------------------------

export const DiscordGuildChannelConfig = Schema.suspend(() =>
  Schema.Struct({
    allow: Schema.optionalKey(Bool),
    requireMention: Schema.optionalKey(Bool),
    /** Who may talk to the bot in this channel (user ids; "*" for anyone); overrides the guild's list. */
    users: Schema.optionalKey(Schema.Array(Schema.String)),
    roles: Schema.optionalKey(Schema.Array(Schema.String))
  })
)

/** When bots may talk to the bot: a budget per pair of bots in a channel, then a cooldown. */
export const BotLoopProtectionConfig = Schema.suspend(() =>
  Schema.Struct({
    enabled: Schema.optionalKey(Bool),
    maxEventsPerWindow: Schema.optionalKey(int(1)),
    windowSeconds: Schema.optionalKey(int(1)),
    cooldownSeconds: Schema.optionalKey(int(0))
  })
)

export const DiscordGuildConfig = Schema.suspend(() =>
  Schema.Struct({
    requireMention: Schema.optionalKey(Bool),
    users: Schema.optionalKey(Schema.Array(Schema.String)),
    roles: Schema.optionalKey(Schema.Array(Schema.String)),
    channels: Schema.optionalKey(Schema.Record(Schema.String, DiscordGuildChannelConfig))
  })
)

/**
 * One named bot account under `channels.discord.accounts.<id>`: any key set
 * here overrides the one above it for this account (OpenClaw's multi-account
 * Discord); keys left out are inherited from `channels.discord`.
 */
export const DiscordAccountConfig = Schema.suspend(() =>
  Schema.Struct({
    enabled: Schema.optionalKey(Bool),
    token: Schema.optionalKey(Secret),
    dmPolicy: Schema.optionalKey(Schema.Literals(["pairing", "allowlist", "open", "disabled"])),
    allowFrom: Schema.optionalKey(Schema.Array(Schema.String)),
    groupPolicy: Schema.optionalKey(Schema.Literals(["open", "disabled", "allowlist"])),
    guilds: Schema.optionalKey(Schema.Record(Schema.String, DiscordGuildConfig)),
    apiBaseUrl: Schema.optionalKey(NonEmpty),
    textChunkLimit: Schema.optionalKey(int(1, 2000)),
    maxLinesPerMessage: Schema.optionalKey(int(1)),
    replyToMode: Schema.optionalKey(Schema.Literals(["off", "first", "all"])),
    allowBots: Schema.optionalKey(Schema.Union([Bool, Schema.Literal("mentions")])),
    botLoopProtection: Schema.optionalKey(BotLoopProtectionConfig),
    intents: Schema.optionalKey(Schema.Struct({ messageContent: Schema.optionalKey(Bool) }))
  })
)

/** Native (platform) commands: "auto" is on where the platform has them (Discord), or forced on or off. */
export const NativeCommandsSetting = Schema.Union([Schema.Literal("auto"), Bool])

export const DiscordConfig = Schema.suspend(() =>
  Schema.Struct({
    enabled: Bool.pipe(withDefault(false)),
    token: Schema.optionalKey(Secret),
    dmPolicy: Schema.Literals(["pairing", "allowlist", "open", "disabled"]).pipe(withDefault("pairing")),
    allowFrom: Schema.Array(Schema.String).pipe(withDefault([])),
    groupPolicy: Schema.Literals(["open", "disabled", "allowlist"]).pipe(withDefault("allowlist")),
    guilds: Schema.Record(Schema.String, DiscordGuildConfig).pipe(withDefault({})),
    apiBaseUrl: Schema.optionalKey(NonEmpty),
    textChunkLimit: int(1, 2000).pipe(withDefault(2000)),
    /** A soft cap on lines per message (Discord clips tall messages). */
    maxLinesPerMessage: int(1).pipe(withDefault(17)),
    replyToMode: Schema.Literals(["off", "first", "all"]).pipe(withDefault("off")),
    /** Messages from other bots: ignored (false), all (true), or only DMs, mentions and replies ("mentions"). */
    allowBots: Schema.Union([Bool, Schema.Literal("mentions")]).pipe(withDefault(false)),
    botLoopProtection: Schema.optionalKey(BotLoopProtectionConfig),
    intents: Schema.Struct({
      /** The privileged Message Content intent; without it guild messages arrive empty unless they mention the bot. */
      messageContent: Bool.pipe(withDefault(true))
    }).pipe(withDefault({})),
    /** Overrides `commands.native` for Discord: register the chat commands as slash commands. */
    commands: Schema.optionalKey(Schema.Struct({ native: Schema.optionalKey(NativeCommandsSetting) })),
    /** Slash-command answers are visible only to the person who ran the command (Discord ephemeral replies). */
    slashCommand: Schema.Struct({ ephemeral: Bool.pipe(withDefault(true)) }).pipe(withDefault({})),
    /** More than one bot: each runs as its own account (ids like `work`); none means one `default` account from the keys above. */
    accounts: Schema.Record(Schema.String, DiscordAccountConfig).pipe(withDefault({}))
  })
)

export const ChannelsConfig = Schema.suspend(() =>
  Schema.Struct({
    discord: DiscordConfig.pipe(withDefault({}))
  })
)

// ---------------------------------------------------------------------------
// The whole file
// ---------------------------------------------------------------------------

export const BeamclawConfig = Schema.suspend(() =>
  Schema.Struct({
    gateway: GatewayConfig.pipe(withDefault({})),
    agents: AgentsConfig.pipe(withDefault({})),
    models: ModelsConfig.pipe(withDefault({})),
    session: SessionConfig.pipe(withDefault({})),
    channels: ChannelsConfig.pipe(withDefault({})),
    /** Chat commands; `native` registers them as platform commands (Discord slash commands) where a channel has them. */
    commands: Schema.Struct({
      native: NativeCommandsSetting.pipe(withDefault("auto"))
    }).pipe(withDefault({})),
    /** Which agent answers where: OpenClaw's bindings (peer, parent peer, guild and roles, account, channel). */
    bindings: Bindings.pipe(withDefault([])),
    cron: Schema.Struct({
      enabled: Bool.pipe(withDefault(true)),
      maxConcurrentRuns: int(1).pipe(withDefault(1))
    }).pipe(withDefault({})),
    hooks: Schema.Struct({
      enabled: Bool.pipe(withDefault(false)),
      path: Schema.String.check(
        Schema.makeFilter((s: string) => s.startsWith("/"), { expected: "a path starting with \"/\"" })
      ).annotate({ expected: "a path starting with \"/\"" }).pipe(withDefault("/hooks")),
      token: Schema.optionalKey(Secret)
    }).pipe(withDefault({})),
    logging: Schema.Struct({
      level: LogLevel.pipe(withDefault("info"))
    }).pipe(withDefault({}))
  })
)

/** The decoded, fully-defaulted config. */
export type BeamclawConfig = typeof BeamclawConfig.Type
/** The config as written in the file (every key optional, secrets as plain strings). */
export type BeamclawConfigEncoded = typeof BeamclawConfig.Encoded

/** Decode options used everywhere a config is read: all problems, unknown keys rejected, inputs kept for messages. */
export const parseOptions = { errors: "all", onExcessProperty: "error", reportInput: true } as const

/**
 * The default config, i.e. what an empty file decodes to (test/config checks
 * that it is exactly that). Written out rather than decoded here: a gateway
 * started without a config file then never builds the schema above, which
 * was the most expensive module to load at start. Change it with the schema.
 */
export const defaultConfig: BeamclawConfig = {
  gateway: {
    port: 18789,
    bind: "loopback",
    auth: { mode: "token", rateLimit: { maxAttempts: 10, windowMs: 60_000, lockoutMs: 300_000, exemptLoopback: true } },
    http: { endpoints: { chatCompletions: { enabled: true, maxBodyBytes: 20 * 1024 * 1024 }, responses: { enabled: false, maxBodyBytes: 20 * 1024 * 1024 } } }
  },
  agents: {
    defaults: {
      model: { primary: DEFAULT_MODEL, fallbacks: [] },
      models: {},
      timeoutSeconds: 600,
      contextTokens: 200_000,
      maxTokens: 8192,
      thinkingDefault: "off",
      bootstrapMaxChars: 20_000,
      bootstrapTotalMaxChars: 150_000,
      skipBootstrap: false,
      compaction: { reserveTokens: 16_384, keepRecentTokens: 20_000 },
      heartbeat: { every: "30m", target: "last", ackMaxChars: 30 }
    },
    list: []
  },
  models: { providers: {} },
  session: {
    dmScope: "main",
    mainKey: "main",
    resetTriggers: ["/new", "/reset"],
    reset: { mode: "daily", atHour: 4 },
    idle: { passivateAfterSeconds: 300 },
    supervisor: { maxRestarts: 5, withinSeconds: 60, backoffMs: 200 },
    maintenance: { mode: "enforce", pruneAfter: "30d", maxEntries: 5000, maxDiskBytes: "10gb" }
  },
  channels: {
    discord: {
      enabled: false,
      dmPolicy: "pairing",
      allowFrom: [],
      groupPolicy: "allowlist",
      guilds: {},
      textChunkLimit: 2000,
      maxLinesPerMessage: 17,
      replyToMode: "off",
      allowBots: false,
      intents: { messageContent: true },
      slashCommand: { ephemeral: true },
      accounts: {}
    }
  },
  commands: { native: "auto" },
  bindings: [],
  cron: { enabled: true, maxConcurrentRuns: 1 },
  hooks: { enabled: false, path: "/hooks" },
  logging: { level: "info" }
}

// ---------------------------------------------------------------------------
// Helpers over the decoded value
// ---------------------------------------------------------------------------

/** OpenClaw's rule: the first agent with `default: true`, else the first listed, else `main`. */
export const defaultAgentId = (config: BeamclawConfig): string =>
  (config.agents.list.find((agent) => agent.default === true) ?? config.agents.list[0])?.id ?? "main"

/** The list entry of an agent, if it is listed. */
export const findAgent = (config: BeamclawConfig, agentId: string): AgentEntry | undefined =>
  config.agents.list.find((agent) => agent.id === agentId.toLowerCase())

/** The model selection of an agent: its own `model`, else `agents.defaults.model`. */
export const agentModel = (config: BeamclawConfig, agentId: string): ModelSelection =>
  findAgent(config, agentId)?.model ?? config.agents.defaults.model

/** Reveals a secret, e.g. to send it to a provider; never log the result. */
export const revealSecret = (secret: Redacted.Redacted<string> | undefined): string | undefined =>
  secret === undefined ? undefined : Redacted.value(secret)

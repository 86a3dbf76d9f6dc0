import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Exit, Logger, Redacted } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { afterAll } from "vitest"
import * as Yaml from "yaml"
import {
  applyOverrides,
  ConfigError,
  type ConfigOverrides,
  decodeConfigText,
  diffConfig,
  encodeConfig,
  getPath,
  loadConfig,
  loadConfigFile,
  parsePath,
  substituteEnvVars
} from "../../src/config/ConfigLoader.ts"
import { renderYaml } from "../../src/config/ConfigRender.ts"
import { defaultConfig } from "../../src/config/ConfigSchema.ts"

const env = (vars: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))

const created: Array<string> = []
const tempDir = () => {
  const dir = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-config-"))
  created.push(dir)
  return dir
}
afterAll(() => created.forEach((dir) => NodeFs.rmSync(dir, { recursive: true, force: true })))

const writeTemp = (name: string, text: string): string => {
  const file = NodePath.join(tempDir(), name)
  NodeFs.writeFileSync(file, text)
  return file
}

/** The ConfigError a failing effect produced (fails the test otherwise). */
const configError = <A, R>(effect: Effect.Effect<A, ConfigError, R>) =>
  Effect.flip(effect).pipe(Effect.tap((error) => Effect.sync(() => assert.instanceOf(error, ConfigError))))

const EXAMPLE = NodePath.resolve(import.meta.dirname, "../../config/beamclaw.example.yaml")

describe("ConfigLoader", () => {
  it.effect("a missing file gives the default config", () =>
    Effect.gen(function*() {
      const config = yield* loadConfigFile(NodePath.join(tempDir(), "beamclaw.yaml"))
      assert.deepStrictEqual(config, defaultConfig)
    }).pipe(Effect.provide(env({}))))

  it.effect("an explicitly named file (setBy) that is missing is an error naming the file", () =>
    Effect.gen(function*() {
      const file = NodePath.join(tempDir(), "nonexist.yaml")
      const error = yield* configError(loadConfig({ file, setBy: "BEAMCLAW_CONFIG" }))
      assert.strictEqual(error.file, file)
      assert.deepStrictEqual(error.issues, [
        { path: "", message: `config file ${file} does not exist (set by BEAMCLAW_CONFIG)` }
      ])
      const mustExist = yield* configError(loadConfigFile(file, { mustExist: true }))
      assert.deepStrictEqual(mustExist.issues, [{ path: "", message: `config file ${file} does not exist` }])
      // Without either, missing still means the defaults; an existing explicit file loads normally.
      assert.deepStrictEqual(yield* loadConfig({ file }), defaultConfig)
      const present = writeTemp("c.yaml", "gateway: { port: 4567 }\n")
      assert.strictEqual((yield* loadConfig({ file: present, setBy: "BEAMCLAW_CONFIG" })).gateway.port, 4567)
    }).pipe(Effect.provide(env({}))))

  it.effect("an empty or comment-only file gives the default config", () =>
    Effect.gen(function*() {
      assert.deepStrictEqual(yield* loadConfigFile(writeTemp("beamclaw.yaml", "")), defaultConfig)
      assert.deepStrictEqual(yield* loadConfigFile(writeTemp("beamclaw.yaml", "# nothing yet\n")), defaultConfig)
    }).pipe(Effect.provide(env({}))))

  it.effect("reads a YAML file", () =>
    Effect.gen(function*() {
      const file = writeTemp(
        "beamclaw.yaml",
        [
          "gateway:",
          "  port: 19000",
          "  bind: lan",
          "agents:",
          "  defaults:",
          "    model: openai/gpt-4.1",
          "  list:",
          "    - id: Main",
          "      default: true",
          "channels:",
          "  discord:",
          "    enabled: true",
          "    allowFrom: [\"123\"]"
        ].join("\n")
      )
      const config = yield* loadConfigFile(file)
      assert.strictEqual(config.gateway.port, 19000)
      assert.strictEqual(config.gateway.bind, "lan")
      assert.deepStrictEqual(config.agents.defaults.model, { primary: "openai/gpt-4.1", fallbacks: [] })
      assert.strictEqual(config.agents.list[0]?.id, "main")
      assert.deepStrictEqual(config.channels.discord.allowFrom, ["123"])
      assert.strictEqual(config.channels.discord.dmPolicy, "pairing")
    }).pipe(Effect.provide(env({}))))

  it.effect("reads a JSON file, and JSON inside a .yaml file", () =>
    Effect.gen(function*() {
      const json = JSON.stringify({ gateway: { port: 19001 }, logging: { level: "debug" } })
      const fromJson = yield* loadConfigFile(writeTemp("beamclaw.json", json))
      assert.strictEqual(fromJson.gateway.port, 19001)
      assert.strictEqual(fromJson.logging.level, "debug")
      const fromYaml = yield* loadConfigFile(writeTemp("beamclaw.yaml", json))
      assert.deepStrictEqual(fromYaml, fromJson)
    }).pipe(Effect.provide(env({}))))

  it.effect("YAML integers too big for a JS number (Discord ids) keep their digits", () =>
    Effect.gen(function*() {
      const config = yield* decodeConfigText(
        "channels:\n  discord:\n    allowFrom: [123456789012345678]\n    guilds:\n      987654321098765432: { requireMention: true }\n",
        "c.yaml"
      )
      assert.deepStrictEqual(config.channels.discord.allowFrom, ["123456789012345678"])
      assert.deepStrictEqual(Object.keys(config.channels.discord.guilds), ["987654321098765432"])
    }).pipe(Effect.provide(env({}))))

  it.effect("broken YAML reports line and column", () =>
    Effect.gen(function*() {
      const file = writeTemp("beamclaw.yaml", "gateway:\n  port: 1\nagents: [unclosed\n")
      const error = yield* configError(loadConfigFile(file))
      assert.strictEqual(error.file, file)
      assert.isAbove(error.issues.length, 0)
      assert.match(error.issues[0]?.message ?? "", /^YAML syntax error at line \d+, column \d+: /)
      assert.include(error.message, `Invalid config ${file}`)
      const duplicate = yield* configError(loadConfigFile(writeTemp("beamclaw.yaml", "gateway: {}\ngateway: {}\n")))
      assert.deepStrictEqual(duplicate.issues, [
        { path: "", message: "YAML syntax error at line 2, column 1: Map keys must be unique" }
      ])
    }).pipe(Effect.provide(env({}))))

  it.effect("broken JSON reports line and column", () =>
    Effect.gen(function*() {
      const error = yield* configError(loadConfigFile(writeTemp("beamclaw.json", "{\n  \"gateway\": {\"port\": 1,}\n}")))
      assert.strictEqual(error.issues.length, 1)
      assert.match(error.issues[0]?.message ?? "", /^JSON syntax error at line 2, column 25: /)
    }).pipe(Effect.provide(env({}))))

  it.effect("config problems never show a secret: an unquoted token in JSON, a value from ${VAR}, a provider header; a JSON BOM is fine", () =>
    Effect.gen(function*() {
      const json = yield* configError(loadConfigFile(writeTemp("beamclaw.json", "{\n  \"gateway\": {\n    \"auth\": {\"token\": sk-live-TOKEN123}\n  }\n}")))
      assert.notInclude(JSON.stringify(json.issues), "sk-live")
      assert.match(json.issues[0]?.message ?? "", /^JSON syntax error: Unexpected token \(check the quotes and commas/)
      const env = yield* configError(loadConfigFile(writeTemp("beamclaw.yaml", "gateway:\n  port: ${OTHER_KEY}\nmodels:\n  providers:\n    x:\n      baseUrl: http://h\n      headers: Bearer sk-HEADER-SECRET\n")))
      const text = JSON.stringify(env.issues)
      assert.notInclude(text, "sk-ENV-SECRET")
      assert.notInclude(text, "sk-HEADER-SECRET")
      assert.include(text, "got the value of ${OTHER_KEY} (not shown)")
      const bom = yield* loadConfigFile(writeTemp("beamclaw.json", "\ufeff{\"gateway\": {\"port\": 19002}}"))
      assert.strictEqual(bom.gateway.port, 19002)
    }).pipe(Effect.provide(env({ OTHER_KEY: "sk-ENV-SECRET" }))))

  it.effect("a file that is not a mapping is rejected", () =>
    Effect.gen(function*() {
      const error = yield* configError(loadConfigFile(writeTemp("beamclaw.yaml", "- a\n- b\n")))
      assert.deepStrictEqual(error.issues, [
        { path: "", message: "expected a mapping of settings at the top level, got [\"a\",\"b\"]" }
      ])
    }).pipe(Effect.provide(env({}))))

  it.effect("invalid values: every problem, one per line, with dotted paths", () =>
    Effect.gen(function*() {
      const text = [
        "gateway:",
        "  port: abc",
        "  bind: wan",
        "  auth:",
        "    rateLimit: { maxAttempts: 0 }",
        "agents:",
        "  defaults:",
        "    thinkingDefault: max",
        "    heartbeat: { every: soon }",
        "  list:",
        "    - id: ok",
        "    - id: \"not ok\"",
        "session:",
        "  reset: { atHour: 24 }",
        "channels:",
        "  discord:",
        "    enabled: \"yes\"",
        "    allowFrom: [1]"
      ].join("\n")
      const error = yield* configError(decodeConfigText(text, "beamclaw.yaml"))
      const lines = [
        "gateway.port: expected an integer 1..65535, got \"abc\"",
        "gateway.bind: expected one of \"loopback\", \"lan\", \"custom\", got \"wan\"",
        "gateway.auth.rateLimit.maxAttempts: expected a positive integer, got 0",
        "agents.defaults.thinkingDefault: expected one of \"off\", \"minimal\", \"low\", \"medium\", \"high\", \"xhigh\", got \"max\"",
        "agents.defaults.heartbeat.every: expected a duration like \"30m\", \"90s\", \"2h\", got \"soon\"",
        "agents.list[1].id: expected an agent id (letters, digits, `_` or `-`, at most 64, starting with a letter or digit), got \"not ok\"",
        "session.reset.atHour: expected an integer 0..23, got 24",
        "channels.discord.enabled: expected true or false, got \"yes\"",
        "channels.discord.allowFrom[0]: expected a string, got 1"
      ]
      assert.strictEqual(error.issues.length, lines.length)
      assert.strictEqual(error.message, [`Invalid config beamclaw.yaml (${lines.length} problems):`, ...lines.map((l) => `  ${l}`)].join("\n"))
    }).pipe(Effect.provide(env({}))))

  it.effect("a value out of range reads the same as a wrong type", () =>
    Effect.gen(function*() {
      const error = yield* configError(decodeConfigText("gateway: { port: 70000 }", "c.yaml"))
      assert.include(error.message, "\n  gateway.port: expected an integer 1..65535, got 70000")
    }).pipe(Effect.provide(env({}))))

  it.effect("unknown keys are reported by path, with a suggestion", () =>
    Effect.gen(function*() {
      const error = yield* configError(
        decodeConfigText("gateway:\n  prot: 1\n  foo: 2\nagents:\n  list:\n    - id: a\n      modle: x/y\nextra: true\n", "c.yaml")
      )
      assert.deepStrictEqual(error.issues, [
        { path: "extra", message: "unknown key; allowed keys: agents, bindings, channels, commands, cron, gateway, hooks, logging, models, session" },
        {
          path: "gateway.prot",
          message: "unknown key (did you mean `port`?); allowed keys: auth, bind, customBindHost, http, port"
        },
        { path: "gateway.foo", message: "unknown key; allowed keys: auth, bind, customBindHost, http, port" },
        {
          path: "agents.list[0].modle",
          message: "unknown key (did you mean `model`?); allowed keys: default, id, model, name, workspace"
        }
      ])
    }).pipe(Effect.provide(env({}))))

  it.effect("duplicate agent ids are reported", () =>
    Effect.gen(function*() {
      const error = yield* configError(decodeConfigText("agents:\n  list:\n    - id: work\n    - id: Work\n", "c.yaml"))
      assert.strictEqual(error.message, "Invalid config c.yaml (1 problem):\n  agents.list[1].id: duplicate agent id \"work\" (also used by agents.list[0])")
    }).pipe(Effect.provide(env({}))))

  describe("env substitution", () => {
    it("replaces ${VAR}, keeps $${VAR} literal, leaves other $ text alone", () => {
      const result = substituteEnvVars(
        { a: "x-${FOO}-y", b: ["$${FOO}", "${FOO}${BAR}"], c: "${lower} $5 $FOO", d: 3, "${FOO}": "key" },
        (name) => ({ FOO: "foo", BAR: "bar" })[name]
      )
      assert.deepStrictEqual(result._tag === "Success" ? result.success : undefined, {
        a: "x-foo-y",
        b: ["${FOO}", "foobar"],
        c: "${lower} $5 $FOO",
        d: 3,
        "${FOO}": "key"
      })
    })

    it.effect("substitutes from the environment before validating", () =>
      Effect.gen(function*() {
        const config = yield* decodeConfigText(
          "gateway:\n  port: 1\n  auth: { token: \"${GW_TOKEN}\" }\nhooks: { path: \"/$${HOOKS}\" }\nmodels:\n  providers:\n    anthropic: { baseUrl: \"${BASE}/v1\", apiKey: \"${KEY}\" }\n",
          "c.yaml"
        )
        assert.strictEqual(Redacted.value(config.gateway.auth.token ?? Redacted.make("")), "gw")
        assert.strictEqual(config.hooks.path, "/${HOOKS}")
        assert.strictEqual(config.models.providers["anthropic"]?.baseUrl, "http://127.0.0.1:9/v1")
      }).pipe(Effect.provide(env({ GW_TOKEN: "gw", BASE: "http://127.0.0.1:9", KEY: "k" }))))

    it.effect("${VAR} works in numeric and boolean fields; secrets stay strings", () =>
      Effect.gen(function*() {
        const config = yield* decodeConfigText(
          [
            "gateway:",
            "  port: ${P}",
            "  auth:",
            "    token: ${GW_TOKEN}",
            "  http:",
            "    endpoints:",
            "      chatCompletions:",
            "        enabled: ${CC}",
            // In flow style `${` would open a mapping, so it is quoted there.
            "cron: { enabled: \"${CRON}\", maxConcurrentRuns: \"${RUNS}\" }"
          ].join("\n"),
          "c.yaml"
        )
        assert.strictEqual(config.gateway.port, 1234)
        assert.strictEqual(config.gateway.http.endpoints.chatCompletions.enabled, false)
        assert.strictEqual(config.cron.enabled, true)
        assert.strictEqual(config.cron.maxConcurrentRuns, 3)
        assert.strictEqual(Redacted.value(config.gateway.auth.token ?? Redacted.make("")), "5678")
      }).pipe(Effect.provide(env({ P: "1234", CC: "false", CRON: "true", RUNS: "3", GW_TOKEN: "5678" }))))

    it.effect("a substituted value that is not a literal keeps the usual message, naming the variable instead of its value", () =>
      Effect.gen(function*() {
        const error = yield* configError(
          decodeConfigText("gateway:\n  port: ${P}\n  bind: lan\ncron:\n  enabled: ${CRON}\n", "c.yaml")
        )
        assert.strictEqual(
          error.message,
          [
            "Invalid config c.yaml (2 problems):",
            "  gateway.port: expected an integer 1..65535, got the value of ${P} (not shown)",
            "  cron.enabled: expected true or false, got the value of ${CRON} (not shown)"
          ].join("\n")
        )
      }).pipe(Effect.provide(env({ P: "abc", CRON: "on" }))))

    it.effect("a missing or empty variable names the variable and the config path", () =>
      Effect.gen(function*() {
        const error = yield* configError(
          decodeConfigText(
            "gateway:\n  auth: { token: \"${GW_TOKEN}\" }\nmodels:\n  providers:\n    anthropic: { baseUrl: \"https://x\", apiKey: \"${ANTHROPIC_API_KEY}\" }\nagents:\n  list:\n    - id: a\n      name: \"${EMPTY}\"\n",
            "c.yaml"
          )
        )
        assert.deepStrictEqual(error.issues.map((issue) => issue.path), [
          "models.providers.anthropic.apiKey",
          "agents.list[0].name"
        ])
        assert.include(
          error.message,
          "models.providers.anthropic.apiKey: missing env var \"ANTHROPIC_API_KEY\""
        )
        assert.include(error.message, "agents.list[0].name: missing env var \"EMPTY\"")
      }).pipe(Effect.provide(env({ GW_TOKEN: "set", EMPTY: "" }))))
  })

  describe("secrets", () => {
    const text = "gateway:\n  auth: { token: tok-SECRET-1 }\nmodels:\n  providers:\n    p: { baseUrl: \"https://x\", apiKey: key-SECRET-2 }\nchannels:\n  discord: { token: disc-SECRET-3 }\nhooks: { token: hook-SECRET-4 }\n"

    it.effect("encode, getPath and renderYaml show <redacted> unless asked", () =>
      Effect.gen(function*() {
        const config = yield* decodeConfigText(text, "c.yaml")
        const encoded = encodeConfig(config)
        const yaml = renderYaml(config)
        for (const output of [JSON.stringify(encoded), yaml]) {
          assert.notMatch(output, /SECRET/)
        }
        assert.strictEqual(yield* getPath(config, "gateway.auth.token"), "<redacted>")
        assert.strictEqual(yield* getPath(config, "models.providers.p.apiKey"), "<redacted>")
        assert.deepStrictEqual(Yaml.parse(yaml).channels.discord.token, "<redacted>")
        assert.strictEqual(yield* getPath(config, "gateway.auth.token", { revealSecrets: true }), "tok-SECRET-1")
        assert.include(renderYaml(config, { revealSecrets: true }), "hook-SECRET-4")
      }).pipe(Effect.provide(env({}))))

    it.effect("logging the config does not leak secrets", () =>
      Effect.gen(function*() {
        const config = yield* decodeConfigText(text, "c.yaml")
        const lines: Array<string> = []
        const capture = Logger.make((options) => {
          lines.push(Logger.formatSimple.log(options))
        })
        yield* Effect.log("config", config).pipe(Effect.provide(Logger.layer([capture])))
        assert.strictEqual(lines.length, 1)
        assert.include(lines[0], "<redacted>")
        assert.notMatch(lines[0] ?? "", /SECRET/)
      }).pipe(Effect.provide(env({}))))

    it.effect("a wrong-typed secret is described by type, not value", () =>
      Effect.gen(function*() {
        const error = yield* configError(decodeConfigText("gateway:\n  auth: { token: 123456789 }\n", "c.yaml"))
        assert.strictEqual(error.issues[0]?.message, "expected a non-empty string, got a number")
        assert.notInclude(error.message, "123456789")
      }).pipe(Effect.provide(env({}))))
  })

  describe("precedence: flags > env > file", () => {
    const load = (flags: ConfigOverrides, vars: Record<string, string>) =>
      Effect.gen(function*() {
        const file = writeTemp("beamclaw.yaml", "gateway:\n  port: 1111\n  auth: { token: from-file }\n")
        const config = yield* loadConfig({ file, flags })
        return {
          port: config.gateway.port,
          token: config.gateway.auth.token === undefined ? undefined : Redacted.value(config.gateway.auth.token)
        }
      }).pipe(Effect.provide(env(vars)))

    it.effect("each layer wins over the ones below it", () =>
      Effect.gen(function*() {
        assert.deepStrictEqual(yield* load({}, {}), { port: 1111, token: "from-file" })
        const vars = { BEAMCLAW_PORT: "2222", BEAMCLAW_GATEWAY_TOKEN: "from-env" }
        assert.deepStrictEqual(yield* load({}, vars), { port: 2222, token: "from-env" })
        assert.deepStrictEqual(yield* load({ port: 3333, token: "from-flag" }, vars), { port: 3333, token: "from-flag" })
        assert.deepStrictEqual(yield* load({ port: 3333 }, vars), { port: 3333, token: "from-env" })
      }))

    it.effect("a bad BEAMCLAW_PORT is an error naming the variable", () =>
      Effect.gen(function*() {
        for (const bad of ["abc", "0", "70000", "12.5"]) {
          const error = yield* configError(load({}, { BEAMCLAW_PORT: bad }))
          assert.strictEqual(error.file, "environment")
          assert.include(error.message, `BEAMCLAW_PORT: expected an integer 1..65535, got ${JSON.stringify(bad)}`)
        }
      }))

    it.effect("a bad --port flag is an error", () =>
      Effect.gen(function*() {
        const error = yield* configError(applyOverrides(defaultConfig, { port: 0 }))
        assert.include(error.message, "--port: expected an integer 1..65535, got 0")
        const exit = yield* Effect.exit(applyOverrides(defaultConfig, { port: Number.NaN }))
        assert.isTrue(Exit.isFailure(exit))
      }))
  })

  describe("getPath", () => {
    it.effect("returns encoded values by dotted path", () =>
      Effect.gen(function*() {
        const config = yield* decodeConfigText(
          "agents:\n  defaults: { model: a/b }\n  list: [{ id: Main }]\nmodels:\n  providers:\n    \"my.host\": { baseUrl: \"http://h\" }\n",
          "c.yaml"
        )
        assert.strictEqual(yield* getPath(config, "gateway.port"), 18789)
        assert.deepStrictEqual(yield* getPath(config, "agents.defaults.model"), { primary: "a/b", fallbacks: [] })
        assert.strictEqual(yield* getPath(config, "agents.list[0].id"), "main")
        assert.strictEqual(yield* getPath(config, "models.providers[\"my.host\"].baseUrl"), "http://h")
        assert.isUndefined(yield* getPath(config, "gateway.customBindHost"))
        assert.isUndefined(yield* getPath(config, "agents.list[3].id"))
        assert.deepStrictEqual(yield* getPath(config, "cron"), { enabled: true, maxConcurrentRuns: 1 })
      }).pipe(Effect.provide(env({}))))

    it.effect("an unknown path is a clear error", () =>
      Effect.gen(function*() {
        const unknown = yield* Effect.flip(getPath(defaultConfig, "gateway.prot"))
        assert.strictEqual(unknown._tag, "ConfigPathError")
        assert.strictEqual(unknown.message, "unknown config path `gateway.prot`; keys there: auth, bind, customBindHost, http, port")
        const garbage = yield* Effect.flip(getPath(defaultConfig, "gateway..port"))
        assert.strictEqual(garbage.message, "not a config path: `gateway..port`")
      }))

    it("parsePath round-trips the issue path format", () => {
      assert.deepStrictEqual(parsePath("agents.list[0].id"), ["agents", "list", 0, "id"])
      assert.deepStrictEqual(parsePath("models.providers[\"a.b\"].apiKey"), ["models", "providers", "a.b", "apiKey"])
      assert.isUndefined(parsePath("a[x]"))
    })
  })

  it.effect("diffConfig lists changed leaf paths (secrets compared by value)", () =>
    Effect.gen(function*() {
      const before = yield* decodeConfigText("gateway: { auth: { token: a } }\nagents: { list: [{ id: x }] }", "c.yaml")
      const after = yield* decodeConfigText("gateway: { port: 2, auth: { token: b } }\nagents: { list: [{ id: x }, { id: y }] }", "c.yaml")
      assert.deepStrictEqual(diffConfig(before, after), ["agents.list", "gateway.auth.token", "gateway.port"])
      assert.deepStrictEqual(diffConfig(before, before), [])
    }).pipe(Effect.provide(env({}))))

  it.effect("the example file loads with its variables set, and covers every top-level section", () =>
    Effect.gen(function*() {
      const vars = {
        BEAMCLAW_GATEWAY_TOKEN: "t",
        ANTHROPIC_API_KEY: "a",
        OPENAI_API_KEY: "o",
        DISCORD_BOT_TOKEN: "d",
        BEAMCLAW_HOOKS_TOKEN: "h"
      }
      const config = yield* loadConfigFile(EXAMPLE).pipe(Effect.provide(env(vars)))
      assert.strictEqual(config.gateway.port, 18789)
      assert.deepStrictEqual(config.agents.list.map((agent) => agent.id), ["main", "work"])
      assert.strictEqual(Redacted.value(config.models.providers["anthropic"]?.apiKey ?? Redacted.make("")), "a")
      const raw: unknown = Yaml.parse(NodeFs.readFileSync(EXAMPLE, "utf8"))
      assert.deepStrictEqual(Object.keys(raw ?? {}).sort(), Object.keys(defaultConfig).sort())
      // Without the variables it fails and names them.
      const error = yield* configError(loadConfigFile(EXAMPLE).pipe(Effect.provide(env({}))))
      assert.include(error.message, "models.providers.anthropic.apiKey: missing env var \"ANTHROPIC_API_KEY\"")
    }))
})

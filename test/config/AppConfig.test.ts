import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Fiber, Layer, Logger, Stream } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { AppConfig, type AppConfigOptions } from "../../src/config/AppConfig.ts"
import { ConfigError } from "../../src/config/ConfigLoader.ts"
import { defaultConfig } from "../../src/config/ConfigSchema.ts"
import { Paths } from "../../src/config/Paths.ts"

const tempHome = () => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-appconfig-"))

/**
 * AppConfig over real files in `home` (`BEAMCLAW_HOME`, so the config file is
 * `home/beamclaw.yaml` unless `env` sets `BEAMCLAW_CONFIG`), with its log lines captured.
 */
const setup = (home: string, options: AppConfigOptions = {}, env: Record<string, string> = {}) => {
  const logs: Array<string> = []
  const capture = Logger.make((entry) => {
    logs.push(Logger.formatSimple.log(entry))
  })
  const layer = AppConfig.layerWith({ debounce: 50, ...options }).pipe(
    Layer.provide(Paths.layer),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: { BEAMCLAW_HOME: home, ...env } }))),
    Layer.provide(Logger.layer([capture]))
  )
  return { logs, layer }
}

/** Polls `check` until it returns true; fails the test after `timeoutMs`. */
const eventually = (label: string, check: Effect.Effect<boolean>, timeoutMs = 5000) =>
  Effect.gen(function*() {
    const deadline = Date.now() + timeoutMs
    while (!(yield* check)) {
      if (Date.now() > deadline) return yield* Effect.die(new Error(`timed out waiting for: ${label}`))
      yield* Effect.sleep("20 millis")
    }
  })

describe("AppConfig", () => {
  it.live("loads at startup and applies a valid edit; rejects an invalid edit keeping the old config", () => {
    const home = tempHome()
    const file = NodePath.join(home, "beamclaw.yaml")
    NodeFs.writeFileSync(file, "gateway:\n  port: 1000\n")
    const { layer, logs } = setup(home)
    return Effect.gen(function*() {
      const app = yield* AppConfig
      assert.strictEqual((yield* app.get).gateway.port, 1000)

      NodeFs.writeFileSync(file, "gateway:\n  port: 2000\nlogging:\n  level: debug\n")
      yield* eventually("port 2000", Effect.map(app.get, (c) => c.gateway.port === 2000))
      assert.strictEqual((yield* app.get).logging.level, "debug")
      yield* eventually("reload log", Effect.sync(() => logs.some((l) => l.includes("config reloaded: changed gateway.port, logging.level"))))

      NodeFs.writeFileSync(file, "gateway:\n  port: abc\n  bogus: 1\n")
      yield* eventually("warning", Effect.sync(() => logs.some((l) => l.includes("config reload skipped"))))
      const warning = logs.find((l) => l.includes("config reload skipped")) ?? ""
      assert.include(warning, "level=WARN")
      assert.include(warning, "gateway.port: expected an integer 1..65535, got \\\"abc\\\"")
      assert.include(warning, "gateway.bogus: unknown key")
      assert.strictEqual((yield* app.get).gateway.port, 2000)

      // Fixing the file applies again.
      NodeFs.writeFileSync(file, "gateway:\n  port: 3000\n")
      yield* eventually("port 3000", Effect.map(app.get, (c) => c.gateway.port === 3000))
      assert.strictEqual((yield* app.get).logging.level, "info")
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
  })

  it.live("a file emptied while running (an editor mid-save) keeps the config; its content applies when it comes", () => {
    const home = tempHome()
    const file = NodePath.join(home, "beamclaw.yaml")
    NodeFs.writeFileSync(file, "gateway:\n  port: 1000\n")
    const { layer, logs } = setup(home)
    return Effect.gen(function*() {
      const app = yield* AppConfig
      NodeFs.writeFileSync(file, "")
      yield* eventually("the empty-file warning", Effect.sync(() => logs.some((l) => l.includes("is empty; the current config stays"))))
      assert.strictEqual((yield* app.get).gateway.port, 1000, "not the default 18789")
      NodeFs.writeFileSync(file, "gateway:\n  port: 2000\n")
      yield* eventually("port 2000", Effect.map(app.get, (c) => c.gateway.port === 2000))
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
  })

  it.live("a config that is a symlink follows edits where it points (a dotfiles repository)", () => {
    const home = tempHome()
    const dotfiles = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-dotfiles-"))
    const target = NodePath.join(dotfiles, "beamclaw.yaml")
    NodeFs.writeFileSync(target, "gateway:\n  port: 1000\n")
    NodeFs.symlinkSync(target, NodePath.join(home, "beamclaw.yaml"))
    const { layer } = setup(home)
    return Effect.gen(function*() {
      const app = yield* AppConfig
      assert.strictEqual((yield* app.get).gateway.port, 1000)
      NodeFs.writeFileSync(target, "gateway:\n  port: 2000\n")
      yield* eventually("port 2000", Effect.map(app.get, (c) => c.gateway.port === 2000))
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => {
      NodeFs.rmSync(home, { recursive: true, force: true })
      NodeFs.rmSync(dotfiles, { recursive: true, force: true })
    })))
  })

  it.live("follows editors that replace the file by rename, and a file created later", () => {
    const home = tempHome()
    const file = NodePath.join(home, "beamclaw.yaml")
    const { layer, logs } = setup(home)
    return Effect.gen(function*() {
      const app = yield* AppConfig
      assert.deepStrictEqual(yield* app.get, defaultConfig)

      NodeFs.writeFileSync(file, "gateway: { port: 4100 }\n")
      yield* eventually("created file", Effect.map(app.get, (c) => c.gateway.port === 4100))

      const temp = NodePath.join(home, ".beamclaw.yaml.swp")
      NodeFs.writeFileSync(temp, "gateway: { port: 4200 }\n")
      NodeFs.renameSync(temp, file)
      yield* eventually("renamed over", Effect.map(app.get, (c) => c.gateway.port === 4200))

      NodeFs.writeFileSync(file, "gateway: { port: 4300 }\n")
      yield* eventually("edit after rename", Effect.map(app.get, (c) => c.gateway.port === 4300))
      // The default file being absent at startup is normal, not a removal.
      assert.isFalse(logs.some((l) => l.includes("was removed")))
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
  })

  it.live("an explicit BEAMCLAW_CONFIG that does not exist fails the layer, naming the file", () =>
    Effect.gen(function*() {
      const home = tempHome()
      const file = NodePath.join(home, "nonexist.yaml")
      const { layer } = setup(home, {}, { BEAMCLAW_CONFIG: file })
      const error = yield* Effect.flip(Effect.provide(Effect.gen(function*() {
        return yield* AppConfig
      }), layer))
      NodeFs.rmSync(home, { recursive: true, force: true })
      assert.instanceOf(error, ConfigError)
      assert.strictEqual(error.file, file)
      assert.deepStrictEqual(error.issues, [
        { path: "", message: `config file ${file} does not exist (set by BEAMCLAW_CONFIG)` }
      ])
    }))

  for (const variant of ["the default path", "an explicit BEAMCLAW_CONFIG"] as const) {
    it.live(`${variant}: a file removed while running keeps the config with a warning, and is loaded when created again`, () => {
      const home = tempHome()
      const explicit = variant === "an explicit BEAMCLAW_CONFIG"
      const file = explicit ? NodePath.join(home, "elsewhere", "custom.yaml") : NodePath.join(home, "beamclaw.yaml")
      NodeFs.mkdirSync(NodePath.dirname(file), { recursive: true })
      NodeFs.writeFileSync(file, "gateway: { port: 4100 }\n")
      const { layer, logs } = setup(home, {}, explicit ? { BEAMCLAW_CONFIG: file } : {})
      return Effect.gen(function*() {
        const app = yield* AppConfig
        assert.strictEqual(app.file, file)
        assert.strictEqual((yield* app.get).gateway.port, 4100)

        NodeFs.rmSync(file)
        yield* eventually("removal warning", Effect.sync(() => logs.some((l) => l.includes("was removed"))))
        const warning = logs.find((l) => l.includes("was removed")) ?? ""
        assert.include(warning, "level=WARN")
        assert.include(warning, `config file ${file} was removed; keeping the current config`)
        // Well past the debounce: nothing fell back to the defaults.
        yield* Effect.sleep("200 millis")
        assert.strictEqual((yield* app.get).gateway.port, 4100)
        const reloadError = yield* Effect.flip(app.reload)
        assert.deepStrictEqual(reloadError.issues, [{ path: "", message: `config file ${file} does not exist` }])
        assert.strictEqual((yield* app.get).gateway.port, 4100)

        NodeFs.writeFileSync(file, "gateway: { port: 4200 }\n")
        yield* eventually("re-created file", Effect.map(app.get, (c) => c.gateway.port === 4200))
        assert.strictEqual(logs.filter((l) => l.includes("was removed")).length, 1)
      }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
    })
  }

  it.live("waits for a state directory that does not exist yet", () => {
    const parent = tempHome()
    const home = NodePath.join(parent, "later")
    const { layer } = setup(home)
    return Effect.gen(function*() {
      const app = yield* AppConfig
      assert.strictEqual((yield* app.get).gateway.port, 18789)
      // Let the watcher find the directory missing first.
      yield* Effect.sleep("300 millis")
      NodeFs.mkdirSync(home)
      NodeFs.writeFileSync(NodePath.join(home, "beamclaw.yaml"), "gateway: { port: 4400 }\n")
      yield* eventually("dir created later", Effect.map(app.get, (c) => c.gateway.port === 4400), 8000)
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(parent, { recursive: true, force: true }))))
  })

  it.live("an invalid file at startup fails the layer with every problem", () =>
    Effect.gen(function*() {
      const home = tempHome()
      NodeFs.writeFileSync(NodePath.join(home, "beamclaw.yaml"), "gateway:\n  port: abc\nsession:\n  reset: { atHour: 99 }\n")
      const { layer } = setup(home)
      const error = yield* Effect.flip(Effect.provide(Effect.gen(function*() {
        return yield* AppConfig
      }), layer))
      NodeFs.rmSync(home, { recursive: true, force: true })
      assert.instanceOf(error, ConfigError)
      assert.deepStrictEqual(error.issues.map((issue) => issue.path), ["gateway.port", "session.reset.atHour"])
    }))

  it.live("watch(select) emits the current part, then only distinct changes; changes emits new configs", () => {
    const home = tempHome()
    const file = NodePath.join(home, "beamclaw.yaml")
    NodeFs.writeFileSync(file, "gateway: { port: 5000 }\n")
    const { layer } = setup(home, { watchFile: false })
    return Effect.gen(function*() {
      const app = yield* AppConfig
      const ports = yield* app.watch((c) => c.gateway.port).pipe(Stream.take(3), Stream.runCollect, Effect.forkChild({ startImmediately: true }))
      const all = yield* app.changes.pipe(Stream.take(3), Stream.runCollect, Effect.forkChild({ startImmediately: true }))
      yield* Effect.sleep("50 millis")

      NodeFs.writeFileSync(file, "gateway: { port: 5000 }\nlogging: { level: warn }\n")
      assert.deepStrictEqual((yield* app.reload).changed, ["logging.level"])
      NodeFs.writeFileSync(file, "gateway: { port: 5001 }\nlogging: { level: warn }\n")
      assert.deepStrictEqual((yield* app.reload).changed, ["gateway.port"])
      assert.deepStrictEqual((yield* app.reload).changed, [])
      NodeFs.writeFileSync(file, "gateway: { port: 5002 }\nlogging: { level: warn }\n")
      yield* app.reload

      assert.deepStrictEqual(Array.from(yield* Fiber.join(ports)), [5000, 5001, 5002])
      assert.deepStrictEqual(Array.from(yield* Fiber.join(all)).map((c) => c.gateway.port), [5000, 5001, 5002])
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
  })

  it.live("explicit reload of an invalid file fails and keeps the config; flags keep winning", () => {
    const home = tempHome()
    const file = NodePath.join(home, "beamclaw.yaml")
    NodeFs.writeFileSync(file, "gateway: { port: 6000 }\nlogging: { level: info }\n")
    const { layer } = setup(home, { watchFile: false, flags: { port: 6500 } }, { BEAMCLAW_GATEWAY_TOKEN: "env-token" })
    return Effect.gen(function*() {
      const app = yield* AppConfig
      assert.strictEqual((yield* app.get).gateway.port, 6500)
      NodeFs.writeFileSync(file, "gateway: { port: 6001 }\nlogging: { level: error }\n")
      assert.deepStrictEqual((yield* app.reload).changed, ["logging.level"])
      assert.strictEqual((yield* app.get).gateway.port, 6500)
      assert.isDefined((yield* app.get).gateway.auth.token)

      NodeFs.writeFileSync(file, "logging: { level: loud }\n")
      const error = yield* Effect.flip(app.reload)
      assert.include(error.message, "logging.level: expected one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", got \"loud\"")
      assert.strictEqual((yield* app.get).logging.level, "error")
    }).pipe(Effect.provide(layer), Effect.ensuring(Effect.sync(() => NodeFs.rmSync(home, { recursive: true, force: true }))))
  })

  it.effect("layerFromValue serves a fixed config; set publishes", () =>
    Effect.gen(function*() {
      const app = yield* AppConfig
      assert.deepStrictEqual(yield* app.get, defaultConfig)
      assert.deepStrictEqual((yield* app.reload).changed, [])
      const next = { ...defaultConfig, logging: { level: "debug" as const } }
      assert.deepStrictEqual((yield* app.set(next)).changed, ["logging.level"])
      assert.strictEqual((yield* app.get).logging.level, "debug")
    }).pipe(Effect.provide(AppConfig.layerFromValue(defaultConfig))))
})

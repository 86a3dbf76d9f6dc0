import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer } from "effect"
import { createHash } from "node:crypto"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { afterAll } from "vitest"
import * as Yaml from "yaml"
import { AppConfig } from "../../src/config/AppConfig.ts"
import { ConfigWriter } from "../../src/config/ConfigWriter.ts"
import { Paths } from "../../src/config/Paths.ts"

const created: Array<string> = []
afterAll(() => {
  for (const dir of created) NodeFs.rmSync(dir, { recursive: true, force: true })
})

const COMMENT = "# hand-written: this comment must survive a patch"
const INITIAL = `${COMMENT}
models:
  providers:
    anthropic:
      baseUrl: http://127.0.0.1:9
      apiKey: sk-secret # the key
agents:
  list:
    - id: main
      default: true
    - id: other
      name: Other
`

const sha256 = (text: string | Buffer) => createHash("sha256").update(text).digest("hex")

/** The writer over a real file in a fresh home, with an empty environment (no BEAMCLAW_* overrides). */
const setup = (options: { readonly text?: string | undefined; readonly name?: string } = {}) => {
  const home = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-writer-"))
  created.push(home)
  const file = NodePath.join(home, options.name ?? "beamclaw.yaml")
  if (options.text !== undefined) NodeFs.writeFileSync(file, options.text)
  const layer = ConfigWriter.layer.pipe(
    Layer.provideMerge(AppConfig.layerWith({ watchFile: false })),
    // The default path under home (not an explicit file), so a missing file means the defaults.
    Layer.provideMerge(Paths.layerFrom({ home })),
    Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env: {} })))
  )
  return { file, layer, read: () => NodeFs.readFileSync(file, "utf8") }
}

describe("ConfigWriter", () => {
  it.live("snapshot: path, raw text, hash of the bytes, config with secrets redacted", () => {
    const { file, layer } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const snapshot = yield* (yield* ConfigWriter).snapshot
      assert.strictEqual(snapshot.path, file)
      assert.isTrue(snapshot.exists)
      assert.strictEqual(snapshot.raw, INITIAL)
      assert.strictEqual(snapshot.hash, sha256(INITIAL))
      const text = JSON.stringify(snapshot.config)
      assert.notInclude(text, "sk-secret")
      assert.include(text, "<redacted>")
    }).pipe(Effect.provide(layer))
  })

  it.live("a missing or stale base hash is a conflict with the current hash, and nothing is written", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const missing = yield* writer.patch({ patch: { logging: { level: "debug" } } }).pipe(Effect.flip)
      assert.strictEqual(missing._tag, "ConfigConflict")
      assert.include(missing.message, "base hash required")
      assert.strictEqual(missing._tag === "ConfigConflict" ? missing.currentHash : undefined, sha256(INITIAL))
      const stale = yield* writer.patch({ patch: { logging: { level: "debug" } }, baseHash: "0".repeat(64) }).pipe(Effect.flip)
      assert.strictEqual(stale._tag, "ConfigConflict")
      assert.include(stale.message, "changed since last load")
      const staleApply = yield* writer.apply({ raw: "{}", baseHash: "0".repeat(64) }).pipe(Effect.flip)
      assert.strictEqual(staleApply._tag, "ConfigConflict")
      assert.strictEqual(read(), INITIAL)
      assert.strictEqual((yield* (yield* AppConfig).get).logging.level, "info")
    }).pipe(Effect.provide(layer))
  })

  it.live("an invalid result, a reserved key or raw text that is not a mapping is refused before writing", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const baseHash = sha256(INITIAL)
      const invalid = yield* writer.patch({ patch: { gateway: { port: "not a port" } }, baseHash }).pipe(Effect.flip)
      assert.strictEqual(invalid._tag, "ConfigInvalid")
      assert.isTrue(invalid._tag === "ConfigInvalid" && invalid.issues.some((issue) => issue.path === "gateway.port"))
      assert.match(invalid.message, /^invalid config: gateway\.port/)
      const reserved = yield* writer.patch({ patch: JSON.parse("{\"agents\":{\"__proto__\":{\"x\":1}}}"), baseHash }).pipe(Effect.flip)
      assert.strictEqual(reserved._tag, "ConfigInvalid")
      assert.isTrue(reserved._tag === "ConfigInvalid" && reserved.issues.some((issue) => issue.path === "agents.__proto__"))
      const notObject = yield* writer.apply({ raw: "[1, 2]", baseHash }).pipe(Effect.flip)
      assert.strictEqual(notObject.message, "raw must be an object")
      const notJson = yield* writer.apply({ raw: "{\"a\": ", baseHash }).pipe(Effect.flip)
      assert.match(notJson.message, /^raw is not valid JSON: /)
      const invalidApply = yield* writer.apply({ raw: JSON.stringify({ logging: { level: "loud" } }), baseHash }).pipe(Effect.flip)
      assert.strictEqual(invalidApply._tag, "ConfigInvalid")
      assert.strictEqual(read(), INITIAL)
    }).pipe(Effect.provide(layer))
  })

  it.live("a patch keeps comments and `<redacted>` secrets, merges lists by id, writes and reloads", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const result = yield* writer.patch({
        patch: {
          logging: { level: "debug" },
          models: { providers: { anthropic: { apiKey: "<redacted>" } } },
          agents: { list: [{ id: "other", name: "Renamed" }, { id: "third" }] }
        },
        baseHash: sha256(INITIAL)
      })
      const text = read()
      assert.isTrue(text.startsWith(COMMENT), "the top comment survives")
      assert.include(text, "apiKey: sk-secret # the key")
      assert.strictEqual(result.hash, sha256(text))
      assert.includeMembers([...result.changed], ["logging.level", "agents.list"])
      const parsed = Yaml.parse(text)
      assert.deepStrictEqual(parsed.agents.list, [{ id: "main", default: true }, { id: "other", name: "Renamed" }, { id: "third" }])
      assert.strictEqual((yield* (yield* AppConfig).get).logging.level, "debug")
      assert.strictEqual((yield* writer.snapshot).hash, result.hash)

      // replacePaths takes the list whole; null deletes.
      const replaced = yield* writer.patch({ patch: { agents: { list: [{ id: "main", default: true }] }, logging: null }, baseHash: result.hash, replacePaths: ["agents.list"] })
      const after = Yaml.parse(read())
      assert.deepStrictEqual(after.agents.list, [{ id: "main", default: true }])
      assert.notProperty(after, "logging")
      assert.include([...replaced.changed], "logging.level")
    }).pipe(Effect.provide(layer))
  })

  it.live("apply replaces the whole file; `<redacted>` keeps the secret it stands for", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const snapshot = yield* writer.snapshot
      const result = yield* writer.apply({
        raw: JSON.stringify({ models: snapshot.config["models"], logging: { level: "warn" } }),
        baseHash: snapshot.hash ?? undefined
      })
      const parsed = Yaml.parse(read())
      assert.strictEqual(parsed.models.providers.anthropic.apiKey, "sk-secret")
      assert.notProperty(parsed, "agents")
      assert.strictEqual(parsed.logging.level, "warn")
      assert.strictEqual(result.hash, sha256(read()))
      assert.strictEqual((yield* (yield* AppConfig).get).logging.level, "warn")
    }).pipe(Effect.provide(layer))
  })

  it.live("without a file, a patch needs no base hash and creates it; then a hash is required", () => {
    const { file, layer, read } = setup()
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const before = yield* writer.snapshot
      assert.strictEqual(before.path, file)
      assert.isFalse(before.exists)
      assert.isNull(before.hash)
      assert.isNull(before.raw)
      const result = yield* writer.patch({ patch: { logging: { level: "error" } } })
      assert.deepStrictEqual(Yaml.parse(read()), { logging: { level: "error" } })
      assert.strictEqual(result.hash, sha256(read()))
      assert.strictEqual((yield* (yield* AppConfig).get).logging.level, "error")
      const again = yield* writer.patch({ patch: { logging: { level: "warn" } } }).pipe(Effect.flip)
      assert.strictEqual(again._tag, "ConfigConflict")
    }).pipe(Effect.provide(layer))
  })

  it.live("a JSON config stays JSON", () => {
    const text = `${JSON.stringify({ logging: { level: "warn" } }, null, 2)}\n`
    const { file, layer, read } = setup({ name: "beamclaw.json", text })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      assert.strictEqual((yield* writer.snapshot).path, file)
      yield* writer.patch({ patch: { logging: { level: "debug" } }, baseHash: sha256(text) })
      assert.deepStrictEqual(JSON.parse(read()), { logging: { level: "debug" } })
    }).pipe(Effect.provide(layer))
  })

  it.live("concurrent writers with the same base hash: exactly one wins, the other gets a conflict", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const baseHash = sha256(INITIAL)
      const outcomes = yield* Effect.all([
        writer.patch({ patch: { logging: { level: "debug" } }, baseHash }),
        writer.patch({ patch: { logging: { level: "warn" } }, baseHash }),
        writer.apply({ raw: JSON.stringify({ logging: { level: "error" } }), baseHash })
      ], { concurrency: "unbounded", mode: "result" })
      const wins = outcomes.filter((outcome) => outcome._tag === "Success")
      const conflicts = outcomes.flatMap((outcome) => outcome._tag === "Failure" && outcome.failure._tag === "ConfigConflict" ? [outcome.failure] : [])
      assert.strictEqual(wins.length, 1)
      assert.strictEqual(conflicts.length, 2)
      const winner = wins[0]
      assert.isTrue(winner !== undefined && winner._tag === "Success" && conflicts.every((conflict) => conflict.currentHash === winner.success.hash))
      assert.strictEqual(sha256(read()), winner !== undefined && winner._tag === "Success" ? winner.success.hash : "")
    }).pipe(Effect.provide(layer))
  })

  it.live("refuses what the gateway would not start on (a lock-out); a <redacted> placeholder keeps the file's secret or leaves the key out", () => {
    const { layer, read } = setup({ text: INITIAL })
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      const baseHash = sha256(INITIAL)
      const password = yield* writer.patch({ patch: { gateway: { auth: { mode: "password" } } }, baseHash }).pipe(Effect.flip)
      assert.strictEqual(password._tag, "ConfigInvalid")
      assert.include(password.message, "gateway auth mode is password, but no password is configured")
      const open = yield* writer.patch({ patch: { gateway: { bind: "lan", auth: { mode: "none" } } }, baseHash }).pipe(Effect.flip)
      assert.include(open.message, "gateway.auth.mode is none, which is only allowed when the gateway binds to loopback")
      assert.strictEqual(read(), INITIAL)
      // A placeholder that stands for a secret the file has is kept; one with nothing behind it (the gateway token
      // comes from a flag or the environment) leaves the key out, never writes the placeholder as the token.
      const kept = yield* writer.apply({ raw: JSON.stringify({ gateway: { auth: { token: "<redacted>" } }, models: { providers: { anthropic: { baseUrl: "http://127.0.0.1:9", apiKey: "<redacted>" } } } }), baseHash })
      assert.include(read(), "sk-secret")
      assert.notInclude(read(), "<redacted>")
      assert.notInclude(read(), "token:")
      assert.isString(kept.hash)
    }).pipe(Effect.provide(layer))
  })

  it.live("a config that is a symlink is written where it points, and stays a symlink", () => {
    const dotfiles = NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-dotfiles-"))
    created.push(dotfiles)
    const target = NodePath.join(dotfiles, "beamclaw.yaml")
    NodeFs.writeFileSync(target, INITIAL)
    const { file, layer } = setup()
    NodeFs.symlinkSync(target, file)
    return Effect.gen(function*() {
      const writer = yield* ConfigWriter
      yield* writer.patch({ patch: { logging: { level: "debug" } }, baseHash: sha256(INITIAL) })
      assert.isTrue(NodeFs.lstatSync(file).isSymbolicLink(), "the link is kept")
      assert.include(NodeFs.readFileSync(target, "utf8"), "level: debug")
      assert.include(NodeFs.readFileSync(target, "utf8"), COMMENT)
    }).pipe(Effect.provide(layer))
  })
})

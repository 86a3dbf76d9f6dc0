import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Schema } from "effect"
import * as NodeFs from "node:fs"
import * as Os from "node:os"
import * as NodePath from "node:path"
import { BeamclawConfig } from "../../src/config/ConfigSchema.ts"
import { expandHome, Paths, resolveAgentWorkspace } from "../../src/config/Paths.ts"

const withEnv = (env: Record<string, string>) =>
  Paths.layer.pipe(Layer.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ env }))))

const tempDir = () => NodeFs.mkdtempSync(NodePath.join(Os.tmpdir(), "beamclaw-paths-"))

describe("Paths", () => {
  it.effect("defaults to ~/.beamclaw and beamclaw.yaml there", () =>
    Effect.gen(function*() {
      const paths = yield* Paths
      assert.strictEqual(paths.home, NodePath.join(Os.homedir(), ".beamclaw"))
      assert.strictEqual(paths.configFile, NodePath.join(Os.homedir(), ".beamclaw", "beamclaw.yaml"))
    }).pipe(Effect.provide(withEnv({}))))

  it.effect("uses BEAMCLAW_HOME with ~ expanded", () =>
    Effect.gen(function*() {
      const paths = yield* Paths
      assert.strictEqual(paths.home, NodePath.join(Os.homedir(), "claw-state"))
      assert.strictEqual(paths.agentSessionsDir("Main"), NodePath.join(Os.homedir(), "claw-state", "agents", "main", "sessions"))
      assert.strictEqual(paths.defaultWorkspace("main"), NodePath.join(Os.homedir(), "claw-state", "workspace"))
      assert.strictEqual(paths.defaultWorkspace("work"), NodePath.join(Os.homedir(), "claw-state", "workspace-work"))
      assert.strictEqual(paths.defaultWorkspace("work", "work"), NodePath.join(Os.homedir(), "claw-state", "workspace"))
    }).pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: "~/claw-state" }))))

  it.effect("BEAMCLAW_CONFIG names the config file", () =>
    Effect.gen(function*() {
      const paths = yield* Paths
      assert.strictEqual(paths.home, "/srv/claw")
      assert.strictEqual(paths.configFile, "/etc/claw/custom.json")
      assert.isTrue(paths.configFileExplicit)
      assert.strictEqual(paths.configFileSetBy, "BEAMCLAW_CONFIG")
    }).pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: "/srv/claw", BEAMCLAW_CONFIG: "/etc/claw/custom.json" }))))

  it.effect("the default config path is not explicit; an empty BEAMCLAW_CONFIG counts as unset", () =>
    Effect.gen(function*() {
      const plain = yield* Paths.pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: "/srv/claw" })))
      assert.isFalse(plain.configFileExplicit)
      assert.isUndefined(plain.configFileSetBy)
      const empty = yield* Paths.pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: "/srv/claw", BEAMCLAW_CONFIG: "" })))
      assert.strictEqual(empty.configFile, "/srv/claw/beamclaw.yaml")
      assert.isFalse(empty.configFileExplicit)
    }))

  it.effect("falls back to beamclaw.json only when beamclaw.yaml is absent", () =>
    Effect.gen(function*() {
      const home = tempDir()
      NodeFs.writeFileSync(NodePath.join(home, "beamclaw.json"), "{}")
      const onlyJson = yield* Paths.pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: home })))
      assert.strictEqual(onlyJson.configFile, NodePath.join(home, "beamclaw.json"))
      NodeFs.writeFileSync(NodePath.join(home, "beamclaw.yaml"), "")
      const both = yield* Paths.pipe(Effect.provide(withEnv({ BEAMCLAW_HOME: home })))
      assert.strictEqual(both.configFile, NodePath.join(home, "beamclaw.yaml"))
      NodeFs.rmSync(home, { recursive: true, force: true })
    }))

  it.effect("layerFrom fixes the paths for tests", () =>
    Effect.gen(function*() {
      const paths = yield* Paths
      assert.strictEqual(paths.home, "/tmp/h")
      assert.strictEqual(paths.configFile, "/tmp/h/c.yaml")
      assert.isTrue(paths.configFileExplicit)
      const withoutFile = yield* Paths.pipe(Effect.provide(Paths.layerFrom({ home: "/tmp/h" })))
      assert.strictEqual(withoutFile.configFile, "/tmp/h/beamclaw.yaml")
      assert.isFalse(withoutFile.configFileExplicit)
    }).pipe(Effect.provide(Paths.layerFrom({ home: "/tmp/h", configFile: "/tmp/h/c.yaml" }))))

  it("expandHome expands only a leading ~", () => {
    assert.strictEqual(expandHome("~", "/home/u"), "/home/u")
    assert.strictEqual(expandHome("~/a/b", "/home/u"), "/home/u/a/b")
    assert.strictEqual(expandHome("/abs/~x", "/home/u"), "/abs/~x")
  })

  it.effect("resolveAgentWorkspace: own workspace, then defaults.workspace for the default agent, then the convention", () =>
    Effect.gen(function*() {
      const paths = yield* Paths
      const config = Schema.decodeUnknownSync(BeamclawConfig)({
        agents: {
          defaults: { workspace: "~/ws-default" },
          list: [{ id: "home", default: true }, { id: "work" }, { id: "lab", workspace: "/data/lab" }]
        }
      })
      assert.strictEqual(resolveAgentWorkspace(paths, config, "home"), NodePath.join(Os.homedir(), "ws-default"))
      assert.strictEqual(resolveAgentWorkspace(paths, config, "work"), "/state/workspace-work")
      assert.strictEqual(resolveAgentWorkspace(paths, config, "LAB"), "/data/lab")
      const bare = Schema.decodeUnknownSync(BeamclawConfig)({})
      assert.strictEqual(resolveAgentWorkspace(paths, bare, "main"), "/state/workspace")
    }).pipe(Effect.provide(Paths.layerFrom({ home: "/state" }))))
})

import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, type Scope } from "effect"
import * as NodePath from "node:path"
import {
  BOOTSTRAP_FILE_ORDER,
  ensureWorkspace,
  loadBootstrapFiles,
  SEED_FILE_NAMES,
  SEED_TEMPLATES,
  trimBootstrapContent
} from "../../src/agent/Workspace.ts"

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

const tempDir = Effect.gen(function*() {
  const fs = yield* FileSystem.FileSystem
  return yield* fs.makeTempDirectoryScoped({ prefix: "beamclaw-ws-" })
})

const write = (dir: string, name: string, content: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    yield* fs.writeFileString(NodePath.join(dir, name), content)
  })

const read = (dir: string, name: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* fs.readFileString(NodePath.join(dir, name))
  })

const exists = (dir: string, name: string) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    return yield* fs.exists(NodePath.join(dir, name))
  })

const testEffect = <A, E>(name: string, self: () => Effect.Effect<A, E, FileSystem.FileSystem | Scope.Scope>) =>
  it.effect(name, () => self().pipe(Effect.provide(NodeFileSystem.layer)))

describe("ensureWorkspace", () => {
  testEffect("seeds a brand-new workspace, including BOOTSTRAP.md", () =>
    Effect.gen(function*() {
      const dir = NodePath.join(yield* tempDir, "nested", "workspace")
      const result = yield* ensureWorkspace(dir)
      assert.strictEqual(result.dir, dir)
      assert.isTrue(result.brandNew)
      assert.deepStrictEqual(result.created, [...SEED_FILE_NAMES, "BOOTSTRAP.md"])
      for (const name of [...SEED_FILE_NAMES, "BOOTSTRAP.md"] as const) {
        assert.strictEqual(yield* read(dir, name), SEED_TEMPLATES[name])
      }
    }))

  testEffect("never overwrites existing files and skips BOOTSTRAP.md for an existing workspace", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "SOUL.md", "my own soul")
      const result = yield* ensureWorkspace(dir)
      assert.isFalse(result.brandNew)
      assert.deepStrictEqual(result.created, ["AGENTS.md", "TOOLS.md", "IDENTITY.md", "USER.md", "HEARTBEAT.md"])
      assert.strictEqual(yield* read(dir, "SOUL.md"), "my own soul")
      assert.isFalse(yield* exists(dir, "BOOTSTRAP.md"))
    }))

  testEffect("is idempotent and does not bring BOOTSTRAP.md back once deleted", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "AGENTS.md", "edited by the user")
      yield* fs.remove(NodePath.join(dir, "BOOTSTRAP.md"))
      const again = yield* ensureWorkspace(dir)
      assert.deepStrictEqual(again.created, [])
      assert.isFalse(again.brandNew)
      assert.strictEqual(yield* read(dir, "AGENTS.md"), "edited by the user")
      assert.isFalse(yield* exists(dir, "BOOTSTRAP.md"))
    }))

  testEffect("recreates a deleted seed file without touching the others", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* fs.remove(NodePath.join(dir, "TOOLS.md"))
      const again = yield* ensureWorkspace(dir)
      assert.deepStrictEqual(again.created, ["TOOLS.md"])
    }))

  testEffect("skipBootstrap creates only the directory", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = NodePath.join(yield* tempDir, "ws")
      const result = yield* ensureWorkspace(dir, { skipBootstrap: true })
      assert.deepStrictEqual(result.created, [])
      assert.deepStrictEqual(yield* fs.readDirectory(dir), [])
    }))

  testEffect("rejects an empty path", () =>
    Effect.gen(function*() {
      const error = yield* ensureWorkspace("   ").pipe(Effect.flip)
      assert.strictEqual(error._tag, "WorkspaceError")
      assert.strictEqual(error.operation, "resolve")
    }))

  testEffect("fails with WorkspaceError when the path is a regular file", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "not-a-dir", "x")
      const error = yield* ensureWorkspace(NodePath.join(dir, "not-a-dir")).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WorkspaceError")
      assert.strictEqual(error.operation, "mkdir")
    }))
})

describe("seed templates", () => {
  it("name BeamClaw, never OpenClaw", () => {
    for (const text of Object.values(SEED_TEMPLATES)) {
      assert.notInclude(text, "OpenClaw")
      assert.notInclude(text, "openclaw")
    }
    assert.include(SEED_TEMPLATES["TOOLS.md"], "BeamClaw")
  })

  it("HEARTBEAT.md starts effectively empty (only headings and blank lines) so heartbeats are skipped", () => {
    const lines = SEED_TEMPLATES["HEARTBEAT.md"].split("\n").filter((line) => line.trim().length > 0)
    assert.isAbove(lines.length, 0)
    for (const line of lines) assert.match(line, /^#/)
  })
})

describe("loadBootstrapFiles", () => {
  testEffect("loads files in OpenClaw order with memory last", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "MEMORY.md", "remember the milk\n")
      const files = yield* loadBootstrapFiles(dir)
      assert.deepStrictEqual(files.map((f) => f.name), [...BOOTSTRAP_FILE_ORDER.slice(0, 7), "MEMORY.md"])
      const soul = files[1]
      assert.isDefined(soul)
      assert.strictEqual(soul?.path, NodePath.join(dir, "SOUL.md"))
      assert.strictEqual(soul?.content, SEED_TEMPLATES["SOUL.md"].trimEnd())
      assert.strictEqual(soul?.rawChars, SEED_TEMPLATES["SOUL.md"].length)
      assert.isFalse(soul?.truncated)
      assert.isFalse(soul?.missing)
      assert.strictEqual(files[7]?.content, "remember the milk")
    }))

  testEffect("marks missing seed files and omits absent optional files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const files = yield* loadBootstrapFiles(dir)
      assert.deepStrictEqual(files.map((f) => f.name), [...SEED_FILE_NAMES])
      for (const file of files) {
        const abs = NodePath.join(dir, file.name)
        assert.strictEqual(file.content, `[MISSING] Expected at: ${abs}`)
        assert.isTrue(file.missing)
        assert.strictEqual(file.rawChars, 0)
      }
    }))

  testEffect("resolves a relative workspace path to an absolute marker path", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const relative = NodePath.relative(process.cwd(), dir)
      const files = yield* loadBootstrapFiles(relative)
      assert.strictEqual(files[0]?.content, `[MISSING] Expected at: ${NodePath.join(dir, "AGENTS.md")}`)
    }))

  testEffect("sub-agent sessions get only AGENTS.md and TOOLS.md", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "MEMORY.md", "private")
      const files = yield* loadBootstrapFiles(dir, { sessionKind: "subagent" })
      assert.deepStrictEqual(files.map((f) => f.name), ["AGENTS.md", "TOOLS.md"])
    }))

  testEffect("cron sessions get the persona files but no heartbeat, ritual or memory", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "MEMORY.md", "private")
      const files = yield* loadBootstrapFiles(dir, { sessionKind: "cron" })
      assert.deepStrictEqual(files.map((f) => f.name), ["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md", "USER.md"])
    }))

  testEffect("group sessions get everything, including MEMORY.md", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "MEMORY.md", "facts")
      const files = yield* loadBootstrapFiles(dir, { sessionKind: "group" })
      assert.strictEqual(files.length, 8)
    }))

  testEffect("injects MEMORY.md once when memory.md links to it", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      yield* write(dir, "MEMORY.md", "the one memory")
      yield* fs.symlink(NodePath.join(dir, "MEMORY.md"), NodePath.join(dir, "memory.md"))
      const files = yield* loadBootstrapFiles(dir)
      const memory = files.filter((f) => f.name.toLowerCase() === "memory.md")
      assert.deepStrictEqual(memory.map((f) => f.name), ["MEMORY.md"])
    }))

  testEffect("injects both memory files when they are distinct", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "memory.md", "lower")
      yield* write(dir, "MEMORY.md", "upper")
      const files = yield* loadBootstrapFiles(dir)
      assert.deepStrictEqual(files.slice(-2).map((f) => [f.name, f.content]), [["MEMORY.md", "upper"], ["memory.md", "lower"]])
    }))

  testEffect("truncates an oversized file to 70% head + 20% tail with OpenClaw's marker lines", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const long = `HEAD-${"a".repeat(600)}${"b".repeat(390)}-TAIL`
      yield* write(dir, "AGENTS.md", long)
      const files = yield* loadBootstrapFiles(dir, { maxChars: 200 })
      const agents = files[0]
      assert.isDefined(agents)
      if (agents === undefined) return
      assert.isTrue(agents.truncated)
      assert.strictEqual(agents.rawChars, 1000)
      assert.strictEqual(
        agents.content,
        [
          long.slice(0, 140),
          "",
          "[...truncated, read AGENTS.md for full content...]",
          "…(truncated AGENTS.md: kept 140+40 chars of 1000)…",
          "",
          long.slice(-40)
        ].join("\n")
      )
      // the next file is untouched by AGENTS.md's cap
      assert.strictEqual(files[1]?.name, "SOUL.md")
      assert.isFalse(files[1]?.truncated)
    }))

  testEffect("keeps a file exactly at the cap and trims trailing whitespace", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "AGENTS.md", `${"x".repeat(200)}\n\n  \n`)
      const files = yield* loadBootstrapFiles(dir, { maxChars: 200 })
      assert.strictEqual(files[0]?.content, "x".repeat(200))
      assert.strictEqual(files[0]?.rawChars, 205)
      assert.isFalse(files[0]?.truncated)
    }))

  testEffect("drops whitespace-only files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      yield* write(dir, "USER.md", "  \n\n\t")
      const files = yield* loadBootstrapFiles(dir)
      assert.notInclude(files.map((f) => f.name), "USER.md")
    }))

  testEffect("enforces the total budget across files", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* ensureWorkspace(dir)
      for (const name of SEED_FILE_NAMES) yield* write(dir, name, name[0]!.repeat(10_000))
      const files = yield* loadBootstrapFiles(dir, { totalMaxChars: 24_000 })
      const total = files.reduce((sum, f) => sum + f.content.length, 0)
      // the file that runs out of budget is hard-clamped, so the budget is used exactly
      assert.strictEqual(total, 24_000)
      assert.deepStrictEqual(files.map((f) => f.name), ["AGENTS.md", "SOUL.md", "TOOLS.md", "IDENTITY.md"])
      assert.isFalse(files[0]?.truncated)
      assert.isFalse(files[1]?.truncated)
      assert.isTrue(files[2]?.truncated)
      assert.include(files[2]?.content, "[...truncated, read TOOLS.md for full content...]")
      assert.include(files[2]?.content, "…(truncated TOOLS.md: kept 2800+800 chars of 10000)…")
      assert.isTrue(files[3]?.truncated)
      assert.isTrue(files[3]?.content.endsWith("…"))
    }))

  testEffect("defaults to 20000 chars per file and 150000 in total", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      for (const name of SEED_FILE_NAMES) yield* write(dir, name, "z".repeat(40_000))
      yield* write(dir, "BOOTSTRAP.md", "z".repeat(40_000))
      yield* write(dir, "MEMORY.md", "z".repeat(40_000))
      const perFile = yield* loadBootstrapFiles(dir)
      assert.strictEqual(perFile.length, 8)
      assert.include(perFile[0]?.content, "…(truncated AGENTS.md: kept 14000+4000 chars of 40000)…")
      // raise the per-file cap so that the default total cap is what binds
      const files = yield* loadBootstrapFiles(dir, { maxChars: 30_000 })
      const total = files.reduce((sum, f) => sum + f.content.length, 0)
      // loading stops once less than the 64-char floor is left
      assert.isAtMost(total, 150_000)
      assert.isAbove(total, 150_000 - 64)
      assert.isBelow(files.length, 8)
    }))

  testEffect("stops loading real files when the remaining budget is under 64 chars", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "AGENTS.md", "a".repeat(1_000))
      const files = yield* loadBootstrapFiles(dir, { maxChars: 200, totalMaxChars: 40 })
      assert.deepStrictEqual(files, [])
    }))

  testEffect("clamps a missing marker to a tiny total budget", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const files = yield* loadBootstrapFiles(dir, { totalMaxChars: 20 })
      assert.strictEqual(files.length, 1)
      assert.strictEqual(files[0]?.content.length, 20)
      assert.isTrue(files[0]?.content.startsWith("[MISSING]"))
      assert.isTrue(files[0]?.content.endsWith("…"))
      assert.isTrue(files[0]?.truncated)
    }))

  testEffect("falls back to defaults for invalid caps", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      yield* write(dir, "AGENTS.md", "q".repeat(5_000))
      for (const bad of [0, -5, Number.NaN, Number.POSITIVE_INFINITY]) {
        const files = yield* loadBootstrapFiles(dir, { maxChars: bad, totalMaxChars: bad })
        assert.strictEqual(files[0]?.content.length, 5_000)
        assert.isFalse(files[0]?.truncated)
      }
    }))

  testEffect("fails with WorkspaceError when a bootstrap path cannot be read", () =>
    Effect.gen(function*() {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* tempDir
      yield* fs.makeDirectory(NodePath.join(dir, "SOUL.md"))
      const error = yield* loadBootstrapFiles(dir).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WorkspaceError")
      assert.strictEqual(error.operation, "read")
      assert.strictEqual(error.path, NodePath.join(dir, "SOUL.md"))
    }))
})

describe("trimBootstrapContent", () => {
  it("never splits a surrogate pair at the head or tail cut", () => {
    for (const max of [100, 101, 102, 103, 150, 151]) {
      const result = trimBootstrapContent("😀".repeat(500), "SOUL.md", max)
      assert.isTrue(result.truncated)
      assert.notMatch(result.content, LONE_SURROGATE)
    }
  })
})

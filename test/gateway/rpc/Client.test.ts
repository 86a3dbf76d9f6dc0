/**
 * The typed client as users run it: the example program as its own process
 * against the real gateway (dist/main.js), and the built `beamclaw/client`
 * package entry installed into a scratch project, type-checked and run.
 */
import { execFile, spawn } from "node:child_process"
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { promisify } from "node:util"
import { assert, describe, it } from "@effect/vitest"
import { gatewayForFile } from "../../support/Gateway.ts"

const ROOT = path.resolve(import.meta.dirname, "../../..")
const EXAMPLE = path.join(ROOT, "examples", "send.ts")

interface Ran {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs `node <args>` asynchronously: the fake upstream lives in this process and must keep answering. */
const runNode = (args: ReadonlyArray<string>, options: { readonly cwd: string; readonly env: Record<string, string> }): Promise<Ran> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      env: { PATH: process.env["PATH"] ?? "", HOME: process.env["HOME"] ?? "/tmp", ...options.env },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk: Buffer) => { stdout += chunk.toString("utf8") })
    child.stderr.on("data", (chunk: Buffer) => { stderr += chunk.toString("utf8") })
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000)
    child.on("close", (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

const env = gatewayForFile()

describe("examples/send.ts against a running gateway", () => {
  it("streams the answer and lists the sessions", async () => {
    const ran = await runNode([EXAMPLE, "hello from the example"], {
      cwd: ROOT,
      env: { BEAMCLAW_URL: `${env.gateway.wsUrl}/rpc`, BEAMCLAW_TOKEN: env.gateway.token }
    })
    assert.strictEqual(ran.code, 0, ran.stderr)
    assert.include(ran.stdout, "echo: hello from the example\n[done: ")
    assert.match(ran.stdout, /sessions: \d+\n/)
    assert.include(ran.stdout, "- agent:main:main (1 turns, live)")
  })

  it("exits 1 with AuthFailed for a wrong token", async () => {
    const ran = await runNode([EXAMPLE, "hi"], { cwd: ROOT, env: { BEAMCLAW_URL: `${env.gateway.wsUrl}/rpc`, BEAMCLAW_TOKEN: "wrong" } })
    assert.strictEqual(ran.code, 1)
    assert.include(ran.stderr, "error: AuthFailed: gateway token mismatch")
    assert.notInclude(ran.stdout, "echo:")
  })
})

describe("the built beamclaw/client package", () => {
  it("installs, type-checks and runs in another project", async () => {
    const project = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-consumer-"))
    try {
      // The package as npm would install it: package.json and dist/ (here only the client build).
      const pkg = path.join(project, "node_modules", "beamclaw")
      await fs.mkdir(pkg, { recursive: true })
      await fs.copyFile(path.join(ROOT, "package.json"), path.join(pkg, "package.json"))
      await promisify(execFile)(process.execPath, ["scripts/build-client.ts"], { cwd: ROOT, env: { ...process.env, BEAMCLAW_DIST_DIR: path.join(pkg, "dist") } })
      // Its dependencies (and the program's), as installed alongside it.
      for (const dep of ["effect", "@effect", "@types"]) {
        await fs.symlink(path.join(ROOT, "node_modules", dep), path.join(project, "node_modules", dep))
      }
      await fs.writeFile(path.join(project, "package.json"), JSON.stringify({ name: "consumer", type: "module", private: true }))
      await fs.writeFile(path.join(project, "tsconfig.json"), JSON.stringify({
        compilerOptions: { target: "ES2023", lib: ["ES2023"], module: "NodeNext", moduleResolution: "NodeNext", types: ["node"], strict: true, exactOptionalPropertyTypes: true, noEmit: true, skipLibCheck: true, erasableSyntaxOnly: true },
        include: ["*.ts"]
      }))
      const example = await fs.readFile(EXAMPLE, "utf8")
      const program = example.replace("\"../src/client/index.ts\"", "\"beamclaw/client\"")
      assert.notStrictEqual(program, example, "the example imports the client from source")
      await fs.writeFile(path.join(project, "send.ts"), program)

      const tsc = path.join(ROOT, "node_modules", ".bin", "tsc")
      const typecheck = await promisify(execFile)(tsc, ["-p", project]).then(() => ({ ok: true, out: "" }), (error: { stdout?: string }) => ({ ok: false, out: error.stdout ?? "" }))
      assert.isTrue(typecheck.ok, typecheck.out)

      // The declarations are real types, not `any`: misuse is a compile error.
      await fs.writeFile(path.join(project, "misuse.ts"), [
        "import { Effect } from \"effect\"",
        "import { BeamclawClient } from \"beamclaw/client\"",
        "export const program = Effect.gen(function*() {",
        "  const client = yield* BeamclawClient",
        "  const version: number = (yield* client.Status()).version",
        "  yield* client.History({ sessionKey: 42 })",
        "  return version",
        "})"
      ].join("\n"))
      const misuse = await promisify(execFile)(tsc, ["-p", project]).then(() => "", (error: { stdout?: string }) => error.stdout ?? "")
      assert.include(misuse, "misuse.ts(5,")
      assert.include(misuse, "misuse.ts(6,")
      await fs.rm(path.join(project, "misuse.ts"))

      const ran = await runNode(["send.ts", "hello from a package"], {
        cwd: project,
        env: { BEAMCLAW_URL: env.gateway.url, BEAMCLAW_TOKEN: env.gateway.token }
      })
      assert.strictEqual(ran.code, 0, ran.stderr)
      assert.include(ran.stdout, "echo: hello from a package")
    } finally {
      await fs.rm(project, { recursive: true, force: true })
    }
  })
})

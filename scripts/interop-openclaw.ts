/**
 * Interop check with the real OpenClaw CLI: installs `openclaw@2026.9.6`
 * into a cache folder outside the repo (once), starts a BeamClaw gateway
 * against the fake Anthropic upstream, and drives it with
 * `openclaw gateway call ...`. Exits non-zero on the first failure.
 *
 *   node scripts/interop-openclaw.ts            # builds dist/ first
 *   node scripts/interop-openclaw.ts --no-build # uses the existing bundle
 *
 * Env: OPENCLAW_CLI_DIR (an existing install to use), BEAMCLAW_INTEROP_DIR
 * (cache folder, default ~/.cache/beamclaw-interop), BEAMCLAW_DIST_DIR.
 */
import { execFile, execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { startFakeAnthropic } from "../test/support/FakeAnthropic.ts"
import { startGateway } from "../test/support/Gateway.ts"

const OPENCLAW_VERSION = "2026.9.6"
const repo = path.resolve(import.meta.dirname, "..")
const nodeBin = path.dirname(process.execPath)
const env = { ...process.env, PATH: `${nodeBin}${path.delimiter}${process.env["PATH"] ?? ""}` }

interface Ran {
  readonly status: number
  readonly stdout: string
  readonly stderr: string
}

// Asynchronous on purpose: the fake Anthropic server lives in this process and must keep answering.
const run = (file: string, args: ReadonlyArray<string>, runEnv: NodeJS.ProcessEnv): Promise<Ran> =>
  new Promise((resolve) => {
    execFile(file, args, { env: runEnv, encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === "number" ? error.code : 1
      resolve({ status: code, stdout, stderr })
    })
  })

const cliIn = (dir: string) => path.join(dir, "node_modules", ".bin", "openclaw")

const installCli = (): string => {
  const given = process.env["OPENCLAW_CLI_DIR"]
  if (given !== undefined && given !== "") {
    if (!fs.existsSync(cliIn(given))) throw new Error(`OPENCLAW_CLI_DIR=${given} has no node_modules/.bin/openclaw`)
    return cliIn(given)
  }
  const dir = process.env["BEAMCLAW_INTEROP_DIR"] ?? path.join(os.homedir(), ".cache", "beamclaw-interop")
  const cli = cliIn(dir)
  const installed = path.join(dir, "node_modules", "openclaw", "package.json")
  const version = fs.existsSync(installed) ? String(JSON.parse(fs.readFileSync(installed, "utf8")).version) : undefined
  if (version !== OPENCLAW_VERSION) {
    fs.mkdirSync(dir, { recursive: true })
    console.log(`installing openclaw@${OPENCLAW_VERSION} into ${dir} (once)...`)
    // npm runs under the repo's Node 24 because it is first on PATH.
    execFileSync("npm", ["install", "--prefix", dir, "--no-audit", "--no-fund", "--loglevel=error", `openclaw@${OPENCLAW_VERSION}`], { stdio: "inherit", env })
  }
  return cli
}

interface Check {
  readonly name: string
  readonly ok: boolean
  readonly detail: string
}

const main = async (): Promise<number> => {
  if (!process.argv.includes("--no-build")) execFileSync(process.execPath, [path.join(repo, "scripts", "build.ts")], { stdio: "inherit", env })
  const cli = installCli()
  const cliHome = fs.mkdtempSync(path.join(os.tmpdir(), "beamclaw-interop-home-"))
  const fake = await startFakeAnthropic()
  const gateway = await startGateway({ anthropicUrl: fake.url })
  const checks: Array<Check> = []
  const call = async (method: string, params?: unknown, extra: ReadonlyArray<string> = []): Promise<{ ok: boolean; json: unknown; output: string }> => {
    const args = ["gateway", "call", method, "--url", gateway.wsUrl, "--token", gateway.token, "--json", ...extra, ...(params === undefined ? [] : ["--params", JSON.stringify(params)])]
    // A scratch HOME keeps the CLI away from the user's own ~/.openclaw.
    const result = await run(cli, args, { ...env, HOME: cliHome, OPENCLAW_STATE_DIR: path.join(cliHome, ".openclaw") })
    const output = `${result.stdout}${result.stderr}`
    try {
      return { ok: result.status === 0, json: JSON.parse(result.stdout), output }
    } catch {
      return { ok: false, json: undefined, output }
    }
  }
  const field = (value: unknown, key: string): unknown =>
    typeof value === "object" && value !== null && key in value ? Reflect.get(value, key) : undefined
  const check = (name: string, ok: boolean, detail: string) => {
    checks.push({ name, ok, detail })
    console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : `\n     ${detail.split("\n").join("\n     ")}`}`)
  }
  try {
    const health = await call("health")
    check("health", health.ok && field(health.json, "ok") === true, health.output)
    const status = await call("status")
    check("status", status.ok && typeof field(status.json, "uptimeMs") === "number" && typeof field(field(status.json, "memory"), "rss") === "number", status.output)
    const before = await call("sessions.list")
    check("sessions.list", before.ok && Array.isArray(field(before.json, "sessions")), before.output)
    const send = await call("chat.send", { sessionKey: "main", message: "hello from openclaw", idempotencyKey: `interop-${Date.now()}` })
    check("chat.send acks with a runId", send.ok && field(send.json, "status") === "started" && typeof field(send.json, "runId") === "string", send.output)
    const wait = await call("agent.wait", { runId: field(send.json, "runId"), timeoutMs: 20_000 }, ["--timeout", "30000"])
    check("agent.wait sees the run finish", wait.ok && field(wait.json, "status") === "ok", wait.output)
    const history = await call("chat.history", { sessionKey: "main" })
    const messages = field(history.json, "messages")
    const texts = Array.isArray(messages) ? messages.map((message) => JSON.stringify(field(message, "content"))) : []
    check("chat.history shows the question and the answer", history.ok && texts.some((text) => text.includes("hello from openclaw")) && texts.some((text) => text.includes("echo: hello from openclaw")), history.output)
    const after = await call("sessions.list")
    const sessions = field(after.json, "sessions")
    check("sessions.list shows the main session", after.ok && Array.isArray(sessions) && sessions.some((row) => field(row, "key") === "agent:main:main"), after.output)
    const agent = await call("agent", { message: "agent turn", idempotencyKey: `interop-agent-${Date.now()}` }, ["--expect-final", "--timeout", "30000"])
    check("agent --expect-final returns the final result", agent.ok && field(agent.json, "status") === "ok" && JSON.stringify(agent.json).includes("echo: agent turn"), agent.output)
    const cleanup = await call("sessions.cleanup", { dryRun: true })
    check("sessions.cleanup reports a maintenance pass", cleanup.ok && field(cleanup.json, "agentId") === "main" && typeof field(cleanup.json, "beforeCount") === "number" && field(cleanup.json, "dryRun") === true, cleanup.output)
    // OpenClaw's own `sessions cleanup` hands the pass to a reachable gateway and prints its summary.
    const cleanupCli = await run(cli, ["sessions", "cleanup", "--enforce"], {
      ...env,
      HOME: cliHome,
      OPENCLAW_STATE_DIR: path.join(cliHome, ".openclaw"),
      OPENCLAW_GATEWAY_URL: gateway.wsUrl,
      OPENCLAW_GATEWAY_TOKEN: gateway.token
    })
    check("openclaw sessions cleanup --enforce runs the pass on the gateway", cleanupCli.status === 0 && cleanupCli.stdout.includes("Applied maintenance. Current entries: 1"), `${cleanupCli.stdout}${cleanupCli.stderr}`)
    // OpenClaw's own commands, pointed at the gateway by environment, as a user of a remote gateway would.
    const cliEnv = { ...env, HOME: cliHome, OPENCLAW_STATE_DIR: path.join(cliHome, ".openclaw"), OPENCLAW_GATEWAY_URL: gateway.wsUrl, OPENCLAW_GATEWAY_TOKEN: gateway.token }
    const json = (text: string): unknown => {
      try {
        return JSON.parse(text)
      } catch {
        return undefined
      }
    }
    const healthCli = await run(cli, ["health"], cliEnv)
    check("openclaw health names the default agent", healthCli.status === 0 && healthCli.stdout.includes("Agents: main (default)"), `${healthCli.stdout}${healthCli.stderr}`)
    // `status --json` reads a gateway only with a config file naming it (gateway.mode remote).
    const remoteConfig = path.join(cliHome, "remote.json")
    fs.writeFileSync(remoteConfig, JSON.stringify({ gateway: { mode: "remote", remote: { url: gateway.wsUrl, token: gateway.token } } }))
    const statusCli = await run(cli, ["status", "--json"], { ...env, HOME: cliHome, OPENCLAW_STATE_DIR: path.join(cliHome, ".openclaw"), OPENCLAW_CONFIG_PATH: remoteConfig })
    const statusJson = json(statusCli.stdout)
    const byAgent = field(field(statusJson, "sessions"), "byAgent")
    check(
      "openclaw status --json reads the gateway's status summary",
      statusCli.status === 0 && field(field(statusJson, "gateway"), "reachable") === true && Array.isArray(byAgent) && byAgent.some((row) => field(row, "agentId") === "main"),
      `${statusCli.stdout}${statusCli.stderr}`
    )
    const modelsCli = await run(cli, ["models", "list", "--json"], cliEnv)
    const modelRows = field(json(modelsCli.stdout), "models")
    check(
      "openclaw models list shows the gateway's catalogue",
      modelsCli.status === 0 && Array.isArray(modelRows) && modelRows.some((row) => field(row, "key") === "anthropic/claude-sonnet-5-5" && JSON.stringify(field(row, "tags")).includes("default")),
      `${modelsCli.stdout}${modelsCli.stderr}`
    )
    const agentCli = await run(cli, ["agent", "--message", "cli agent turn", "--session-key", "agent:main:interop-scratch", "--model", "anthropic/claude-sonnet-5-5", "--thinking", "low", "--json"], cliEnv)
    check("openclaw agent --model --thinking runs a turn", agentCli.status === 0 && agentCli.stdout.includes("echo: cli agent turn"), `${agentCli.stdout}${agentCli.stderr}`)
    // `gateway call` asks for the least scope a method needs: operator.write for a label.
    const patch = await call("sessions.patch", { key: "agent:main:interop-scratch", label: "interop" })
    check("sessions.patch of a label with operator.write", patch.ok && field(field(patch.json, "entry"), "label") === "interop", patch.output)
    const deleteCli = await run(cli, ["sessions", "delete", "agent:main:interop-scratch", "--yes", "--json"], cliEnv)
    check("openclaw sessions delete removes a session through the gateway", deleteCli.status === 0 && field(json(deleteCli.stdout), "ok") === true, `${deleteCli.stdout}${deleteCli.stderr}`)
    const cronCli = await run(cli, ["cron", "list"], cliEnv)
    check("a command for a method BeamClaw lacks says so (openclaw cron list)", cronCli.status !== 0 && `${cronCli.stdout}${cronCli.stderr}`.includes("unknown method: cron.list"), `${cronCli.stdout}${cronCli.stderr}`)
    const unknown = await call("no.such.method")
    check("an unknown method is an error", !unknown.ok && unknown.output.includes("unknown method"), unknown.output)
    const bad = await run(cli, ["gateway", "call", "health", "--url", gateway.wsUrl, "--token", "wrong", "--json"], { ...env, HOME: cliHome })
    check("a wrong token is refused", bad.status !== 0, `${bad.stdout}${bad.stderr}`)
  } finally {
    await gateway.stop()
    await fake.close()
    fs.rmSync(cliHome, { recursive: true, force: true })
  }
  const failed = checks.filter((c) => !c.ok)
  console.log(failed.length === 0 ? `interop: all ${checks.length} checks passed (openclaw ${OPENCLAW_VERSION})` : `interop: ${failed.length} of ${checks.length} checks failed`)
  return failed.length === 0 ? 0 : 1
}

main().then((code) => process.exit(code), (error: unknown) => {
  console.error(error instanceof Error ? error.stack ?? error.message : String(error))
  process.exit(1)
})

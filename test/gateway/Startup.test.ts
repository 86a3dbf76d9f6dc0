/**
 * The gateway answers its probes from the moment it listens, and builds its
 * services and route table right after (runtime/Gateway.ts, gateway/Routes.ts).
 * Requests sent the instant the first /health comes back, while those are
 * still loading, must get exactly the answers they get later; /ready says
 * "starting" until they are up.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { freePort, type RunResult, start } from "../support/Cli.ts"
import { at, connect, WsClient } from "./ws/WsClient.ts"

const TOKEN = "startup-test-token"

/** The body of a JSON error answer, as `{error: {...}}` or `{ok: false, error}`. */
const errorOf = async (response: Response): Promise<Record<string, unknown>> => {
  const json: unknown = await response.json()
  const error = typeof json === "object" && json !== null && "error" in json ? json.error : undefined
  return typeof error === "object" && error !== null ? Object.fromEntries(Object.entries(error)) : {}
}

/** Starts `dist/main.js` on a fresh state directory and returns once its first /health is answered. */
const startFresh = async () => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-startup-"))
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  // No config file: the usual first start, the one whose route table loads after the bind.
  const gateway = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: TOKEN })
  // Poll as tightly as the start-up bench, so what the test does next happens while the table loads.
  const deadline = Date.now() + 15_000
  let first: Response | undefined
  while (first === undefined) {
    if (Date.now() > deadline || gateway.child.exitCode !== null) {
      gateway.child.kill("SIGKILL")
      throw new Error(`the gateway did not answer /health: ${gateway.output().stderr}`)
    }
    first = await fetch(`${url}/health`).catch(() => undefined)
    if (first === undefined) await new Promise((resolve) => setTimeout(resolve, 1))
  }
  let stopped: Promise<RunResult> | undefined
  /** SIGTERM, the exit, then the state directory removed; once, however often it is called. */
  const stop = () =>
    stopped ??= (async () => {
      gateway.child.kill("SIGTERM")
      const exit = await gateway.result
      await fs.rm(home, { recursive: true, force: true })
      return exit
    })()
  return { gateway, port, url, first, stop }
}

describe("gateway start-up", () => {
  it("answers every surface correctly right after its first /health", async () => {
    const { port, url, first, stop } = await startFresh()
    try {
      const auth = { authorization: `Bearer ${TOKEN}` }
      const [postHealth, headHealth, ready, unknown, modelsUnauthorized, models, chatGet, rpc, root, challenge] = await Promise.all([
        fetch(`${url}/health`, { method: "POST" }),
        fetch(`${url}/health`, { method: "HEAD" }),
        fetch(`${url}/readyz`),
        fetch(`${url}/no-such-path`),
        fetch(`${url}/v1/models`),
        fetch(`${url}/v1/models`, { headers: auth }),
        fetch(`${url}/v1/chat/completions`, { headers: auth }),
        fetch(`${url}/rpc`),
        fetch(`${url}/`),
        WsClient.open(`ws://127.0.0.1:${port}`).then(async (client) => {
          const frame = await client.challenge()
          client.ws.close()
          return frame
        })
      ])

      assert.strictEqual(first.status, 200)
      assert.deepStrictEqual(await first.json(), { ok: true, status: "live" })
      // Other methods on the probes answer as always, from the full table.
      assert.strictEqual(postHealth.status, 405)
      assert.strictEqual(postHealth.headers.get("allow"), "GET, HEAD")
      assert.strictEqual(headHealth.status, 200)
      // Readiness is a probe too, so it answers at once: not ready while the sessions start, and
      // only for that reason. By now the other requests have waited for the table, so it is ready.
      const early: unknown = await ready.json()
      if (ready.status !== 200) {
        assert.strictEqual(ready.status, 503)
        assert.deepInclude(early, { ready: false, failing: [{ component: "sessions", reason: "starting" }] })
      }
      const later = await fetch(`${url}/readyz`)
      assert.strictEqual(later.status, 200)
      assert.deepInclude(await later.json(), { ready: true, failing: [] })
      assert.strictEqual(unknown.status, 404)
      assert.strictEqual(modelsUnauthorized.status, 401)
      assert.strictEqual((await errorOf(modelsUnauthorized))["code"], "missing_api_key")
      assert.strictEqual(models.status, 200)
      assert.include(JSON.stringify(await models.json()), "\"object\":\"list\"")
      assert.strictEqual(chatGet.status, 405)
      assert.strictEqual(chatGet.headers.get("allow"), "POST")
      assert.strictEqual(rpc.status, 426)
      assert.strictEqual(rpc.headers.get("upgrade"), "websocket")
      assert.strictEqual(root.status, 426)
      assert.strictEqual((await errorOf(root))["type"], "upgrade_required")
      assert.strictEqual(challenge.event, "connect.challenge")
    } finally {
      const exit = await stop()
      assert.strictEqual(exit.code, 0, exit.stderr)
    }
  })

  it("tells WebSocket clients it is stopping even when stopped right after its table loads", async () => {
    const { port, stop } = await startFresh()
    try {
      // The handshake waits for the table; the stop follows at once, while the listener's start finishes.
      const { client } = await connect(`ws://127.0.0.1:${port}`, TOKEN)
      const exit = await stop()
      const closed = await client.closed
      assert.strictEqual(exit.code, 0, exit.stderr)
      assert.isTrue(client.frames.some((frame) => frame.event === "shutdown" && at(frame, "payload", "reason") === "gateway stopping"))
      assert.deepStrictEqual(closed, { code: 1012, reason: "service restart" })
    } finally {
      await stop()
    }
  })

  it("a failure in the second step of the boot stops the process with its reason, and frees the port", async () => {
    const home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-startup-"))
    try {
      // The port is bound before the device pairings are read (step 2), so this start answers /health and then stops.
      await fs.mkdir(path.join(home, "devices"), { recursive: true })
      await fs.writeFile(path.join(home, "devices", "paired.json"), "{\"x\": {\"deviceId\": 1}}")
      const port = await freePort()
      const gateway = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: TOKEN })
      const timer = setTimeout(() => gateway.child.kill("SIGKILL"), 15_000)
      const exit = await gateway.result
      clearTimeout(timer)
      assert.strictEqual(exit.code, 1, exit.stderr)
      assert.include(exit.stderr, `${path.join(home, "devices", "paired.json")} is not a valid pairing file`)
      // Nothing holds the port or the state directory: the same start with the file fixed answers.
      await fs.rm(path.join(home, "devices"), { recursive: true })
      const again = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: TOKEN })
      try {
        let ready = false
        const deadline = Date.now() + 15_000
        while (!ready && Date.now() < deadline) {
          ready = (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.status === 200
          if (!ready) await new Promise((resolve) => setTimeout(resolve, 20))
        }
        assert.isTrue(ready, again.output().stderr)
      } finally {
        again.child.kill("SIGTERM")
        await again.result
      }
    } finally {
      await fs.rm(home, { recursive: true, force: true })
    }
  })
})

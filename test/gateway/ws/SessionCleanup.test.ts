/**
 * Session maintenance over a real gateway: `sessions.cleanup` on request
 * (dry run, warn mode, enforce, bad params, the admin scope), a config patch
 * that turns enforcement on, and the count cap applied as one-request
 * sessions from the official openai SDK pile up.
 */
import * as fs from "node:fs/promises"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import OpenAI from "openai"
import { gatewayForFile } from "../../support/Gateway.ts"
import { at, connect, list } from "./WsClient.ts"

const env = gatewayForFile({ config: { session: { maintenance: { mode: "warn", maxEntries: 2 } } } })

const sessionKeys = async (client: Awaited<ReturnType<typeof connect>>["client"]) =>
  list(at(await client.request("sessions.list", {}), "payload", "sessions")).map((row) => String(at(row, "key")))

const transcripts = async () =>
  (await fs.readdir(path.join(env.gateway.home, "agents", "main", "sessions"))).filter((name) => name.endsWith(".jsonl"))

const oneRequestSessions = async (count: number) => {
  const openai = new OpenAI({ baseURL: `${env.gateway.url}/v1`, apiKey: env.gateway.token, maxRetries: 0 })
  for (let i = 0; i < count; i++) {
    const answer = await openai.chat.completions.create({ model: "beamclaw", messages: [{ role: "user", content: `request ${i}` }] })
    assert.strictEqual(answer.choices[0]?.message.content, `echo: request ${i}`)
    // Apart in time, so "oldest" is well defined.
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const waitFor = async (check: () => Promise<boolean>, what: string, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

describe("sessions.cleanup", () => {
  it("reports in warn mode and with dryRun, applies with enforce, and refuses bad params by name", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await oneRequestSessions(4)
    const before = await sessionKeys(client)
    assert.strictEqual(before.length, 4, "warn mode removes nothing by itself")
    const oldest = before.slice(-2).sort()

    for (const params of [{ dryRun: true }, {}]) {
      const report = await client.request("sessions.cleanup", params)
      assert.isUndefined(report.error)
      assert.strictEqual(at(report, "payload", "agentId"), "main")
      assert.strictEqual(at(report, "payload", "mode"), "warn")
      assert.strictEqual(at(report, "payload", "dryRun"), true)
      assert.strictEqual(at(report, "payload", "beforeCount"), 4)
      assert.strictEqual(at(report, "payload", "afterCount"), 2)
      assert.strictEqual(at(report, "payload", "capped"), 2)
      assert.strictEqual(at(report, "payload", "wouldMutate"), true)
      assert.strictEqual(at(report, "payload", "storePath"), path.join(env.gateway.home, "agents", "main", "sessions", "sessions.json"))
      assert.deepStrictEqual(list(at(report, "payload", "actions")).map((action) => String(at(action, "key"))).sort(), oldest)
      assert.strictEqual(at(report, "payload", "diskBudget", "overBudget"), false)
      assert.strictEqual(at(report, "payload", "dmScopeRetired"), 0, "OpenClaw's summary fields, for its clients")
      assert.strictEqual(at(report, "payload", "modelRunPruned"), 0)
      assert.isUndefined(at(report, "payload", "applied"), "nothing applied")
    }
    assert.strictEqual((await sessionKeys(client)).length, 4, "a report changes nothing")

    const applied = await client.request("sessions.cleanup", { enforce: true })
    assert.strictEqual(at(applied, "payload", "dryRun"), false)
    assert.strictEqual(at(applied, "payload", "capped"), 2)
    assert.strictEqual(at(applied, "payload", "applied"), true)
    assert.strictEqual(at(applied, "payload", "appliedCount"), 2)
    const changed = await client.waitFor((frame) => frame.event === "sessions.changed" && at(frame, "payload", "reason") === "cleanup")
    assert.deepStrictEqual(at(changed, "payload"), { reason: "cleanup", agentId: "main", removed: 2 })
    const after = await sessionKeys(client)
    assert.deepStrictEqual(after.sort(), before.slice(0, 2).sort(), "the newest two are kept")
    assert.strictEqual((await transcripts()).length, 2, "one-request sessions' transcripts are erased")

    const all = await client.request("sessions.cleanup", { allAgents: true })
    assert.strictEqual(at(all, "payload", "allAgents"), true)
    assert.strictEqual(at(all, "payload", "mode"), "warn")
    assert.deepStrictEqual(list(at(all, "payload", "stores")).map((store) => at(store, "agentId")), ["main"])

    assert.strictEqual((await client.request("sessions.cleanup", { fixDmScope: true })).error?.message, "sessions.cleanup: fixDmScope is not supported (BeamClaw keeps no peer-keyed DM rows to retire when dmScope is main)")
    assert.strictEqual((await client.request("sessions.cleanup", { agent: "nobody" })).error?.message, "unknown agent id \"nobody\"")
    assert.strictEqual((await client.request("sessions.cleanup", { agent: "main", allAgents: true })).error?.message, "sessions.cleanup: give agent or allAgents, not both")
    assert.match((await client.request("sessions.cleanup", { enforce: "yes" })).error?.message ?? "", /^invalid sessions\.cleanup params: .*enforce/s)
    assert.match((await client.request("sessions.cleanup", { keepAll: true })).error?.message ?? "", /^invalid sessions\.cleanup params: .*keepAll/s)
    await client.close()

    const reader = await connect(env.gateway.wsUrl, env.gateway.token, { scopes: ["operator.read", "operator.write"] })
    assert.strictEqual((await reader.client.request("sessions.cleanup", {})).error?.message, "missing scope: operator.admin")
    await reader.client.close()
  })

  it("a config patch to enforce applies at once, and from then on the cap holds as one-request sessions pile up", async () => {
    const { client } = await connect(env.gateway.wsUrl, env.gateway.token)
    await oneRequestSessions(2)
    await waitFor(async () => (await sessionKeys(client)).length === 4, "four sessions")
    const got = await client.request("config.get")
    const patched = await client.request("config.patch", { raw: JSON.stringify({ session: { maintenance: { mode: "enforce" } } }), baseHash: at(got, "payload", "hash") })
    assert.strictEqual(at(patched, "payload", "ok"), true)
    await waitFor(async () => (await sessionKeys(client)).length === 2, "the config change's pass")
    const changed = await client.waitFor((frame) => frame.event === "sessions.changed" && at(frame, "payload", "reason") === "cleanup")
    assert.deepStrictEqual(at(changed, "payload"), { reason: "cleanup", agentId: "main", removed: 2 }, "a pass of its own tells the operators too")

    await oneRequestSessions(3)
    await waitFor(async () => (await sessionKeys(client)).length === 2, "the cap after the index was written")
    await waitFor(async () => (await transcripts()).length === 2, "the transcripts of the removed sessions to be erased")
    const status = await client.request("status")
    assert.strictEqual(at(status, "payload", "sessions", "count"), 2)
    assert.strictEqual(at(status, "payload", "sessions", "maintenance", "mode"), "enforce")
    assert.strictEqual(at(status, "payload", "sessions", "maintenance", "trigger"), "cap")
    assert.isAbove(Number(at(status, "payload", "sessions", "maintenance", "removed")), 0)
    assert.isNumber(at(status, "payload", "sessions", "maintenance", "lastPassAt"))
    await client.close()
  })
})

/**
 * Discord through the real gateway process (`node dist/main.js`) with the
 * channel enabled in its config and pointed at the fake Discord: /ready waits
 * for the account, a stranger's DM gets a pairing code, the owner approves it
 * with `beamclaw pairing approve` (which goes through the running gateway),
 * the next DM is answered, and `channels.status` / `beamclaw channels status`
 * show the account connected.
 */
import { mkdir, writeFile } from "node:fs/promises"
import { createServer } from "node:http"
import * as path from "node:path"
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import { at, connect, list } from "../../gateway/ws/WsClient.ts"
import { run } from "../../support/Cli.ts"
import { type FakeAnthropicHandle, startFakeAnthropic } from "../../support/FakeAnthropic.ts"
import { FakeDiscord, type FakeDiscordHandle } from "../../support/FakeDiscord.ts"
import { type StartedGateway, startGateway } from "../../support/Gateway.ts"

let anthropic: FakeAnthropicHandle
let discord: FakeDiscordHandle
let gateway: StartedGateway

beforeAll(async () => {
  anthropic = await startFakeAnthropic()
  discord = await FakeDiscord.start({ heartbeatIntervalMs: 1_000 })
  gateway = await startGateway({
    anthropicUrl: anthropic.url,
    config: { channels: { discord: { enabled: true, token: discord.token, apiBaseUrl: discord.apiBase } } }
  })
})

afterAll(async () => {
  await gateway?.stop()
  await discord?.close()
  await anthropic?.close()
})

describe("Discord in the gateway", () => {
  it("pairing over the CLI, then an answer; status everywhere", async () => {
    const env = { BEAMCLAW_HOME: gateway.home, BEAMCLAW_GATEWAY_TOKEN: gateway.token }
    const { user, channelId } = discord.addDmUser({ username: "grace" })
    discord.dispatchMessage({ channelId, author: user, content: "hello?" })
    await discord.waitFor(() => discord.sentMessages.some((m) => m.channelId === channelId), 10_000, "the pairing reply")
    const code = /Pairing code: ([A-Z2-9]{8})/.exec(discord.sentMessages.find((m) => m.channelId === channelId)?.content ?? "")?.[1] ?? ""
    assert.match(code, /^[A-Z2-9]{8}$/)

    const listed = await run(["pairing", "list", "discord", "--json"], env)
    assert.strictEqual(listed.code, 0, listed.stderr + listed.stdout)
    const requests: unknown = JSON.parse(listed.stdout)
    assert.deepStrictEqual(Array.isArray(requests) ? requests.map((r) => at(r, "code")) : [], [code])

    const approved = await run(["pairing", "approve", "discord", code], env)
    assert.strictEqual(approved.code, 0, approved.stderr)
    assert.include(approved.stdout, user.id)
    const again = await run(["pairing", "approve", "discord", code], env)
    assert.notStrictEqual(again.code, 0)
    assert.include(again.stderr, code)

    discord.dispatchMessage({ channelId, author: user, content: "now?" })
    await discord.waitFor(() => discord.sentMessages.some((m) => m.content === "echo: now?"), 10_000, "the answer")

    const { client } = await connect(gateway.wsUrl, gateway.token)
    // The DM recorded the main session's last route (OpenClaw's names in the rows)...
    const rows = list(at(await client.request("sessions.list", {}), "payload", "sessions"))
    const mainRow = rows.find((row) => at(row, "key") === "agent:main:main")
    assert.strictEqual(at(mainRow, "lastChannel"), "discord")
    assert.strictEqual(at(mainRow, "lastTo"), `user:${user.id}`)
    assert.strictEqual(at(mainRow, "lastAccountId"), "default")
    assert.deepStrictEqual(at(mainRow, "deliveryContext"), { channel: "discord", to: `user:${user.id}`, accountId: "default" })
    assert.strictEqual(at(await client.request("sessions.get", { key: "main" }), "payload", "session", "lastTo"), `user:${user.id}`)
    // ...so `agent` with deliver and no `to` answers in that DM.
    const toLast = await client.request("agent", { sessionKey: "main", message: "back to you", deliver: true, idempotencyKey: "agent-last-route" })
    assert.isTrue(toLast.ok, JSON.stringify(toLast))
    await discord.waitFor(() => discord.sentMessages.some((m) => m.channelId === channelId && m.content === "echo: back to you"), 10_000, "the answer on the last route")
    // The delivered answer is a model reply: its MEDIA: lines attach files from the agent's workspace.
    await mkdir(path.join(gateway.home, "workspace"), { recursive: true })
    await writeFile(path.join(gateway.home, "workspace", "hello.txt"), "hello from the workspace\n")
    const withMedia = await client.request("agent", { sessionKey: "main", message: "a file\nMEDIA:hello.txt\nMEDIA:nope.txt", deliver: true, idempotencyKey: "agent-media" })
    assert.isTrue(withMedia.ok, JSON.stringify(withMedia))
    await discord.waitFor(() => discord.sentMessages.some((m) => m.content.includes("Could not attach nope.txt")), 10_000, "the note")
    const attached = discord.sentMessages.find((m) => m.channelId === channelId && m.content === "echo: a file")
    assert.deepStrictEqual(attached?.attachments.map((a) => [a.filename, a.size]), [["hello.txt", 25]])
    assert.strictEqual(discord.sentMessages.find((m) => m.content.includes("nope.txt"))?.content, "⚠️ Could not attach nope.txt: not found.")
    // A session no channel message reached has no last route: the error says so.
    const noRoute = await client.request("agent", { sessionKey: "elsewhere", message: "x", deliver: true, idempotencyKey: "agent-no-route" })
    assert.strictEqual(at(noRoute, "error", "code"), "INVALID_REQUEST")
    assert.include(String(at(noRoute, "error", "message")), "agent:main:elsewhere has no last route")
    // Outbound `send`: a DM by user id, once per idempotency key even when retried.
    const other = discord.addUser({ username: "heinz" })
    const sent = await client.request("send", { to: `user:${other.id}`, message: "a note from the gateway", idempotencyKey: "send-1" })
    assert.isTrue(sent.ok, JSON.stringify(sent))
    assert.strictEqual(at(sent, "payload", "channel"), "discord")
    const resent = await client.request("send", { to: `user:${other.id}`, message: "a note from the gateway", idempotencyKey: "send-1" })
    assert.isTrue(resent.ok)
    assert.strictEqual(at(resent, "payload", "messageId"), at(sent, "payload", "messageId"))
    assert.strictEqual(discord.sentMessages.filter((m) => m.content === "a note from the gateway").length, 1)
    // A file by URL rides along, within Discord's upload limit; a URL that cannot be had fails the send, nothing half-sent.
    const media = createServer((request, response) => {
      if (request.url === "/pic.png") return response.writeHead(200, { "content-type": "image/png" }).end(Buffer.from("not really a png"))
      response.writeHead(404).end()
    })
    await new Promise<void>((resolve) => media.listen(0, "127.0.0.1", resolve))
    const address = media.address()
    const mediaPort = typeof address === "object" && address !== null ? address.port : 0
    const withFile = await client.request("send", { to: `channel:${channelId}`, message: "see attached", mediaUrl: `http://127.0.0.1:${mediaPort}/pic.png`, idempotencyKey: "send-file" })
    assert.isTrue(withFile.ok, JSON.stringify(withFile))
    const filed = discord.sentMessages.find((m) => m.content === "see attached")
    assert.deepStrictEqual(filed?.attachments.map((a) => [a.filename, a.size]), [["pic.png", 16]])
    const missing = await client.request("send", { to: `channel:${channelId}`, message: "x", mediaUrl: `http://127.0.0.1:${mediaPort}/gone.png`, idempotencyKey: "send-missing" })
    assert.strictEqual(at(missing, "error", "code"), "UNAVAILABLE")
    assert.include(String(at(missing, "error", "message")), "could not be downloaded: HTTP 404")
    const notHttp = await client.request("send", { to: `channel:${channelId}`, mediaUrl: "file:///etc/passwd", idempotencyKey: "send-file-url" })
    assert.strictEqual(at(notHttp, "error", "code"), "INVALID_REQUEST")
    await new Promise<void>((resolve) => media.close(() => resolve()))
    // A threadId sends into that thread (a channel of its own on Discord).
    const guild = discord.addGuild({ name: "Home", channels: [{ name: "general" }] })
    const general = guild.channels.find((c) => c.name === "general")?.id ?? ""
    const thread = discord.addChannel(guild.id, { name: "plans", kind: "public-thread", parentId: general })
    const inThread = await client.request("send", { to: `channel:${general}`, threadId: thread.id, message: "in the thread", idempotencyKey: "send-thread" })
    assert.isTrue(inThread.ok, JSON.stringify(inThread))
    assert.strictEqual(discord.sentMessages.find((m) => m.content === "in the thread")?.channelId, thread.id)
    const bad = await client.request("send", { to: "somewhere", message: "x", idempotencyKey: "send-2" })
    assert.strictEqual(at(bad, "error", "code"), "INVALID_REQUEST")
    assert.include(String(at(bad, "error", "message")), "channel:<id>")
    // `agent` with deliver: the answer goes to the named Discord user.
    const delivered = await client.request("agent", { message: "deliver me", deliver: true, to: `user:${other.id}`, idempotencyKey: "agent-deliver-1" })
    assert.isTrue(delivered.ok, JSON.stringify(delivered))
    await discord.waitFor(() => discord.sentMessages.some((m) => m.content === "echo: deliver me"), 10_000, "the delivered answer")
    const status = await client.request("channels.status", {})
    assert.deepStrictEqual(at(status, "payload", "channelOrder"), ["discord"])
    assert.strictEqual(at(status, "payload", "channelAccounts", "discord", 0, "connected"), true)
    assert.isNumber(at(status, "payload", "channelAccounts", "discord", 0, "lastInboundAt"))
    await client.close()

    const cli = await run(["channels", "status"], env)
    assert.strictEqual(cli.code, 0, cli.stderr)
    assert.include(cli.stdout, "discord:default  connected")
    const ready = await fetch(`${gateway.url}/ready`)
    assert.strictEqual(ready.status, 200)
  }, 60_000)
})

/**
 * Discord throughput and delivery (issue #4): U distinct Discord users each
 * send M messages as fast as the fake Discord can dispatch them, to
 * `node <dist>/main.js` with the Discord channel on, and the fake Anthropic
 * upstream (its own process) answering at once.
 *
 * Reports messages answered per second (first dispatch to last reply), the
 * latency from dispatch to reply, and the count of messages lost (no reply by
 * the deadline), doubled (more than one reply) and answered out of order per
 * user (goal: 0, 0). Baseline, same run: the same number of requests straight
 * to the fake Anthropic API at the same concurrency (U), read to the end.
 *
 *   node bench/discord.ts [users=200] [messagesPerUser=10] [deadlineSeconds=120]
 *
 * Each user DMs the bot (dmPolicy open), with session.dmScope
 * per-channel-peer, so each user is their own session, as OpenClaw recommends
 * when several people DM one bot. The fake's REST rate limit is raised so the
 * bench measures BeamClaw, not Discord's 5-messages-per-5-s bucket.
 */
import * as http from "node:http"
import * as os from "node:os"
import { FakeDiscord } from "../test/support/FakeDiscord.ts"
import { table } from "./common.ts"
import { cpuMs, distDir, keepAliveAgent, percentile, startFake, startGateway } from "./gateway-common.ts"

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

const postJson = (agent: http.Agent, url: string, body: string) =>
  new Promise<void>((resolve, reject) => {
    const request = http.request(url, { method: "POST", agent, headers: { "content-type": "application/json", "x-api-key": "sk-bench", "anthropic-version": "2023-06-01", "content-length": Buffer.byteLength(body) } }, (response) => {
      response.resume()
      response.on("end", () => (response.statusCode === 200 ? resolve() : reject(new Error(`status ${response.statusCode}`))))
    })
    request.on("error", reject)
    request.end(body)
  })

export const runDiscord = async (users: number, perUser: number, deadlineMs: number, log: (line: string) => void = () => {}) => {
  const fake = await startFake()
  const discord = await FakeDiscord.start({ heartbeatIntervalMs: 5_000, rateLimit: { limit: 1_000_000, windowMs: 1000 } })
  try {
    // Baseline: the same number of turns' worth of requests straight to the fake, U at a time.
    const agent = keepAliveAgent(users)
    const body = JSON.stringify({ model: "claude-sonnet-5-5", max_tokens: 1024, stream: true, messages: [{ role: "user", content: "baseline" }] })
    const total = users * perUser
    const baselineStarted = performance.now()
    let next = 0
    await Promise.all(Array.from({ length: users }, async () => {
      while (next < total) {
        next++
        await postJson(agent, `${fake.url}/v1/messages`, body)
      }
    }))
    const baselineMs = performance.now() - baselineStarted
    agent.destroy()
    log(`baseline: ${total} requests to the fake in ${baselineMs.toFixed(0)} ms`)

    const people = Array.from({ length: users }, (_, i) => discord.addDmUser({ username: `user${i}` }))
    const gateway = await startGateway({
      fakeUrl: fake.url,
      config: {
        channels: { discord: { enabled: true, token: discord.token, apiBaseUrl: discord.apiBase, dmPolicy: "open", allowFrom: ["*"] } },
        session: { dmScope: "per-channel-peer" }
      }
    })
    try {
      // Warm-up: one round trip (discord.js connected, the SDK loaded, JIT warm).
      const warm = people[0]!
      await discord.waitFor(() => discord.identifyCount >= 1, 15_000, "the gateway's discord.js to identify")
      discord.dispatchMessage({ channelId: warm.channelId, author: warm.user, content: "warm up" })
      await discord.waitFor(() => discord.sentMessages.some((m) => m.content === "echo: warm up"), 15_000, "the warm-up reply")
      const before = discord.sentMessages.length

      const sentAt = new Map<string, number>()
      const answeredAt = new Map<string, number>()
      const replies = new Map<string, number>()
      const order = new Map<string, Array<number>>()
      const gatewayCpu = await cpuMs(gateway.pid)
      const started = performance.now()
      for (let m = 0; m < perUser; m++) {
        for (let u = 0; u < users; u++) {
          const person = people[u]!
          const text = `u${u} m${m}`
          sentAt.set(text, performance.now())
          discord.dispatchMessage({ channelId: person.channelId, author: person.user, content: text })
        }
      }
      const dispatchedMs = performance.now() - started
      let seen = before
      const deadline = started + deadlineMs
      while (performance.now() < deadline) {
        const now = performance.now()
        for (; seen < discord.sentMessages.length; seen++) {
          const content = discord.sentMessages[seen]!.content
          if (!content.startsWith("echo: ")) continue
          const text = content.slice("echo: ".length)
          replies.set(text, (replies.get(text) ?? 0) + 1)
          if (!answeredAt.has(text)) answeredAt.set(text, now)
          const match = /^u(\d+) m(\d+)$/.exec(text)
          if (match !== null) order.set(match[1]!, [...(order.get(match[1]!) ?? []), Number(match[2])])
        }
        if (answeredAt.size >= total) break
        await sleep(2)
      }
      const wallMs = Math.max(...answeredAt.values(), started) - started
      // A moment more, so a late duplicate is counted too.
      await sleep(1000)
      for (; seen < discord.sentMessages.length; seen++) {
        const content = discord.sentMessages[seen]!.content
        if (content.startsWith("echo: ")) replies.set(content.slice(6), (replies.get(content.slice(6)) ?? 0) + 1)
      }
      const cpu = (await cpuMs(gateway.pid)) - gatewayCpu
      const latencies = [...answeredAt].map(([text, at]) => at - (sentAt.get(text) ?? at)).sort((a, b) => a - b)
      const lost = [...sentAt.keys()].filter((text) => !replies.has(text)).length
      const doubled = [...replies.values()].filter((n) => n > 1).length
      const outOfOrder = [...order.values()].filter((seq) => seq.some((value, i) => i > 0 && value < seq[i - 1]!)).length
      return {
        users,
        perUser,
        total,
        answered: answeredAt.size,
        wallMs,
        dispatchedMs,
        perSecond: answeredAt.size / (wallMs / 1000),
        baselinePerSecond: total / (baselineMs / 1000),
        p50: percentile(latencies, 50),
        p99: percentile(latencies, 99),
        lost,
        doubled,
        outOfOrder,
        gatewayCpuMs: cpu
      }
    } finally {
      await gateway.stop()
    }
  } finally {
    await discord.close()
    await fake.stop()
  }
}

export type DiscordResult = Awaited<ReturnType<typeof runDiscord>>

export const discordTable = (r: DiscordResult): string =>
  [
    `${r.users} Discord users × ${r.perUser} messages = ${r.total} messages, dispatched in ${r.dispatchedMs.toFixed(0)} ms`,
    table(["", "ours", "baseline (fake Anthropic alone, same concurrency)"], [
      ["messages answered per second", r.perSecond.toFixed(0), `${r.baselinePerSecond.toFixed(0)} requests/s`],
      ["answered", `${r.answered} of ${r.total} in ${(r.wallMs / 1000).toFixed(2)} s`, ""],
      ["dispatch → reply p50 / p99", `${r.p50.toFixed(0)} / ${r.p99.toFixed(0)} ms`, ""],
      ["lost (no reply)", String(r.lost), "goal 0"],
      ["doubled (more than one reply)", String(r.doubled), "goal 0"],
      ["users answered out of order", String(r.outOfOrder), ""],
      ["gateway CPU", `${(r.gatewayCpuMs / 1000).toFixed(1)} s (${(r.gatewayCpuMs / r.total).toFixed(2)} ms per message)`, ""]
    ])
  ].join("\n")

if (import.meta.main) {
  const [users = "200", perUser = "10", deadline = "120"] = process.argv.slice(2)
  const startedAt = new Date()
  const load = os.loadavg().map((l) => l.toFixed(2)).join(" ")
  const result = await runDiscord(Number(users), Number(perUser), Number(deadline) * 1000, (line) => console.error(line))
  console.log(`\nBeamClaw Discord bench — ${startedAt.toISOString()}, dist ${distDir}, node ${process.version}, ${os.cpus().length} cores, load average at start ${load}\n`)
  console.log(discordTable(result))
}

// The real discord.js (unmodified) against FakeDiscord: proves the fake speaks
// enough of Discord's gateway and REST protocol for the channel code to be
// tested on top of it, and pins the discord.js behaviours that code relies on.
import { once } from "node:events"
import { assert, describe, it } from "@effect/vitest"
import {
  ChannelType,
  Client,
  type ClientOptions,
  DiscordAPIError,
  DiscordjsError,
  Events,
  GatewayIntentBits,
  type Message,
  Partials
} from "discord.js"
import { Effect } from "effect"
import { afterEach } from "vitest"
import { WebSocket } from "ws"
import { CloseCode, FakeDiscord, type FakeDiscordHandle, type FakeDiscordOptions, GatewayOp } from "./FakeDiscord.ts"

const ALL_INTENTS = [
  GatewayIntentBits.Guilds,
  GatewayIntentBits.GuildMessages,
  GatewayIntentBits.GuildMessageReactions,
  GatewayIntentBits.DirectMessages,
  GatewayIntentBits.DirectMessageReactions,
  GatewayIntentBits.MessageContent
]

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const startFake = async (options: FakeDiscordOptions = {}): Promise<FakeDiscordHandle> => {
  const fake = await FakeDiscord.start({ heartbeatIntervalMs: 250, ...options })
  cleanups.push(() => fake.close())
  return fake
}

const newClient = (fake: FakeDiscordHandle, options: Partial<ClientOptions> = {}): Client => {
  const client = new Client({
    intents: ALL_INTENTS,
    // Discord sends no CHANNEL_CREATE for DMs: without this, DM messages are dropped.
    partials: [Partials.Channel],
    rest: { api: fake.apiBase },
    ...options
  })
  cleanups.push(() => client.destroy())
  return client
}

/** Logs in and waits for clientReady (login itself resolves at READY, before the guilds arrive). */
const connect = async (fake: FakeDiscordHandle, options: Partial<ClientOptions> = {}) => {
  const client = newClient(fake, options)
  const received: Array<Message> = []
  client.on(Events.MessageCreate, (message) => {
    received.push(message)
  })
  const ready = once(client, Events.ClientReady)
  await client.login(fake.token)
  await ready
  return { client, received }
}

/** A guild with a text channel and a member, Alice; the DM user Bob. */
const world = (fake: FakeDiscordHandle) => {
  const generalId = fake.snowflake()
  const alice = fake.addUser({ username: "alice" })
  const guild = fake.addGuild({
    name: "Test Guild",
    channels: [
      { id: generalId, name: "general" },
      { name: "help-thread", kind: "public-thread", parentId: generalId },
      { name: "announcements", readOnly: true }
    ],
    roles: [{ name: "admins" }],
    members: [{ user: alice }]
  })
  const bob = fake.addDmUser({ username: "bob" })
  return { guild, generalId, alice, bob }
}

const countOf = (received: ReadonlyArray<Message>, id: string): number => received.filter((m) => m.id === id).length

const sendable = async (client: Client, id: string) => {
  const channel = await client.channels.fetch(id)
  if (channel === null || !channel.isSendable()) throw new Error(`channel ${id} is not sendable`)
  return channel
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe("FakeDiscord with the real discord.js", () => {
  it("logs in: GET /gateway/bot, HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats", async () => {
    const fake = await startFake()
    const { guild, generalId } = world(fake)
    const { client } = await connect(fake)

    assert.strictEqual(client.user?.id, fake.botUser.id)
    assert.strictEqual(client.user?.username, fake.botUser.username)
    assert.isTrue(client.user?.bot)
    const cached = client.guilds.cache.get(guild.id)
    assert.strictEqual(cached?.name, "Test Guild")
    assert.strictEqual(cached?.channels.cache.get(generalId)?.type, ChannelType.GuildText)
    assert.strictEqual(cached?.channels.cache.find((c) => c.name === "help-thread")?.type, ChannelType.PublicThread)
    assert.isTrue(cached?.members.cache.has(fake.botUser.id))

    const gatewayBot = fake.requests.find((r) => r.path === "/gateway/bot")
    assert.strictEqual(gatewayBot?.status, 200)
    assert.isTrue(gatewayBot?.authorized)
    assert.match(gatewayBot?.userAgent ?? "", /^DiscordBot \(https:\/\/discord\.js\.org, .*discord\.js\/14\./)
    assert.deepStrictEqual(fake.connections[0]?.query, { v: "10", encoding: "json" })
    assert.strictEqual(fake.connections[0]?.path, "/gateway")
    assert.strictEqual(fake.identifyCount, 1)
    assert.strictEqual(fake.identifies[0]?.intents, client.options.intents.bitfield)
    assert.deepStrictEqual(fake.identifies[0]?.shard, [0, 1])
    assert.isFalse(fake.identifies[0]?.compress)
    await fake.waitFor(() => fake.heartbeatCount >= 2, 3000, "two heartbeats")
    assert.isAtLeast(client.ws.ping, 0)

    // The world can grow while connected: GUILD_CREATE and CHANNEL_CREATE reach the cache.
    const later = fake.addGuild({ name: "Joined Later" })
    await fake.waitFor(() => client.guilds.cache.has(later.id), 3000, "late GUILD_CREATE")
    const added = fake.addChannel(guild.id, { name: "new-channel" })
    await fake.waitFor(() => cached?.channels.cache.has(added.id) === true, 3000, "CHANNEL_CREATE")
    assert.deepStrictEqual(fake.protocolErrors, [])
  })

  it("delivers guild and DM MESSAGE_CREATE as discord.js Messages", async () => {
    const fake = await startFake()
    const { guild, generalId, alice, bob } = world(fake)
    const { client, received } = await connect(fake)

    const mention = fake.dispatchMessage({ channelId: generalId, author: alice, content: `<@${fake.botUser.id}> hello` })
    const plain = fake.dispatchMessage({ channelId: generalId, author: alice.id, content: "just chatting" })
    const dm = fake.dispatchMessage({ channelId: bob.channelId, author: bob.user, content: "hi in private" })
    await fake.waitFor(() => received.length === 3, 3000, "three messages")

    const [m1, m2, m3] = received
    assert.strictEqual(m1?.id, mention.id)
    assert.strictEqual(m1?.content, `<@${fake.botUser.id}> hello`)
    assert.strictEqual(m1?.author.id, alice.id)
    assert.strictEqual(m1?.author.username, "alice")
    assert.isFalse(m1?.author.bot)
    assert.strictEqual(m1?.guildId, guild.id)
    assert.strictEqual(m1?.channel.type, ChannelType.GuildText)
    assert.isTrue(client.user !== null && m1?.mentions.has(client.user))
    assert.strictEqual(m1?.member?.id, alice.id)

    assert.strictEqual(m2?.id, plain.id)
    assert.isFalse(client.user !== null && m2?.mentions.has(client.user))

    assert.strictEqual(m3?.id, dm.id)
    assert.strictEqual(m3?.content, "hi in private")
    assert.strictEqual(m3?.channel.type, ChannelType.DM)
    assert.strictEqual(m3?.channelId, bob.channelId)
    assert.isNull(m3?.guildId)
    assert.strictEqual(m3?.author.id, bob.user.id)

    const threadId = guild.channels.find((c) => c.kind === "public-thread")?.id ?? ""
    const inThread = fake.dispatchMessage({ channelId: threadId, author: alice, content: "in a thread" })
    await fake.waitFor(() => countOf(received, inThread.id) === 1, 3000, "thread message")
    const threadMessage = received.find((m) => m.id === inThread.id)
    assert.isTrue(threadMessage?.channel.isThread())
    assert.strictEqual(threadMessage?.channel.isThread() ? threadMessage.channel.parentId : undefined, generalId)

    // A reply to the bot, with an attachment: reference, reply ping, file served by the fake.
    const botMessage = await (await sendable(client, generalId)).send("a question?")
    const reply = fake.dispatchMessage({
      channelId: generalId,
      author: alice,
      content: "an answer",
      messageReference: { messageId: botMessage.id },
      attachments: [{ filename: "notes.txt", data: "hello file", contentType: "text/plain" }]
    })
    await fake.waitFor(() => received.some((m) => m.id === reply.id), 3000, "the reply")
    const got = received.find((m) => m.id === reply.id)
    assert.strictEqual(got?.reference?.messageId, botMessage.id)
    assert.isTrue(client.user !== null && got?.mentions.has(client.user), "a reply pings the replied-to author")
    assert.strictEqual(got?.mentions.repliedUser?.id, fake.botUser.id)
    const file = got?.attachments.first()
    assert.strictEqual(file?.name, "notes.txt")
    assert.strictEqual(file?.size, 10)
    assert.strictEqual(file?.contentType, "text/plain")
    const download = await fetch(file?.url ?? "")
    assert.strictEqual(await download.text(), "hello file")
  })

  it("records send, reply, DM send, typing and reactions; own messages come back as MESSAGE_CREATE", async () => {
    const fake = await startFake()
    const { generalId, alice, bob } = world(fake)
    const { client, received } = await connect(fake)

    const inbound = fake.dispatchMessage({ channelId: generalId, author: alice, content: `<@${fake.botUser.id}> ping` })
    await fake.waitFor(() => received.some((m) => m.id === inbound.id), 3000, "inbound")
    const message = received.find((m) => m.id === inbound.id)
    if (message === undefined) throw new Error("unreachable")

    const channel = message.channel
    if (!channel.isSendable()) throw new Error("not sendable")
    await channel.sendTyping()
    const sent = await channel.send("plain send")
    const replied = await message.reply("pong")
    await message.react("👍")
    await message.react("<:party:123456789012345678>")
    const dm = await client.users.send(bob.user.id, {
      content: "a file for you",
      files: [{ attachment: Buffer.from("0123456789abcdef"), name: "data.bin" }]
    })

    assert.deepStrictEqual(fake.typingCalls.map((t) => t.channelId), [generalId])
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.id), [sent.id, replied.id, dm.id])
    assert.strictEqual(fake.sentMessages[0]?.content, "plain send")
    assert.isUndefined(fake.sentMessages[0]?.messageReference)
    assert.strictEqual(fake.sentMessages[1]?.content, "pong")
    assert.strictEqual(fake.sentMessages[1]?.messageReference?.messageId, inbound.id)
    assert.strictEqual(replied.reference?.messageId, inbound.id)
    assert.strictEqual(fake.sentMessages[2]?.channelId, bob.channelId)
    assert.isTrue(fake.sentMessages[2]?.multipart)
    assert.deepStrictEqual(fake.sentMessages[2]?.attachments.map((a) => [a.filename, a.size]), [["data.bin", 16]])
    assert.strictEqual(dm.attachments.first()?.name, "data.bin")
    assert.deepStrictEqual(
      fake.reactions.map((r) => [r.messageId, r.emoji, r.op]),
      [[inbound.id, "👍", "add"], [inbound.id, "party:123456789012345678", "add"]]
    )

    // Discord echoes the bot's own messages; discord.js emits messageCreate for them.
    await fake.waitFor(() => countOf(received, sent.id) === 1 && countOf(received, dm.id) === 1, 3000, "own echoes")
    assert.strictEqual(received.find((m) => m.id === sent.id)?.author.id, fake.botUser.id)

    await sent.edit("edited")
    await sent.delete()
    assert.deepStrictEqual(fake.edits.map((e) => [e.messageId, e.content]), [[sent.id, "edited"]])
    assert.deepStrictEqual(fake.deletions.map((d) => d.messageId), [sent.id])
    assert.isTrue(fake.message(sent.id)?.deleted)
  })

  it("retries a 429 on POST messages after Retry-After and lands the message once", async () => {
    const fake = await startFake()
    const { generalId } = world(fake)
    const { client } = await connect(fake)
    const channel = await sendable(client, generalId)

    const path = `/channels/${generalId}/messages`
    fake.rateLimitNext({ method: "POST", path }, { retryAfterMs: 300 })
    const started = Date.now()
    const sent = await channel.send("after a rate limit")
    const elapsed = Date.now() - started

    assert.deepStrictEqual(fake.requests.filter((r) => r.path === path).map((r) => [r.status, r.injected]), [
      [429, "rate-limit"],
      [200, undefined]
    ])
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.id), [sent.id])
    // For a route 429 discord.js waits X-RateLimit-Reset-After (plus its offset), not the rounded Retry-After.
    assert.isAtLeast(elapsed, 300)

    // A global 429 blocks on Retry-After, which is whole seconds as Discord sends it.
    fake.rateLimitNext({ method: "POST", path }, { retryAfterMs: 300, global: true })
    const globalStarted = Date.now()
    const second = await channel.send("after a global rate limit")
    assert.isAtLeast(Date.now() - globalStarted, 1000)
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.id), [sent.id, second.id])
    assert.deepStrictEqual(fake.requests.filter((r) => r.status === 429).length, 2)
  })

  it("resumes after a dropped connection and replays what was missed exactly once", async () => {
    const fake = await startFake()
    const { generalId, alice } = world(fake)
    const { client, received } = await connect(fake)
    const resumed: Array<number> = []
    client.on(Events.ShardResume, (_id, replayed) => resumed.push(replayed))

    const before = fake.dispatchMessage({ channelId: generalId, author: alice, content: "before" })
    await fake.waitFor(() => countOf(received, before.id) === 1, 3000, "before")

    await fake.dropConnection() // TCP drop: the client sees 1006 and resumes
    const missed = fake.dispatchMessage({ channelId: generalId, author: alice, content: "while away" })
    await fake.waitFor(() => resumed.length === 1, 5000, "shardResume")
    const after = fake.dispatchMessage({ channelId: generalId, author: alice, content: "after" })
    await fake.waitFor(() => countOf(received, after.id) === 1, 3000, "after")

    assert.strictEqual(fake.identifyCount, 1)
    assert.deepStrictEqual(fake.resumes.map((r) => [r.outcome, r.replayed]), [["resumed", 1]])
    assert.strictEqual(fake.connections[1]?.path, "/gateway-resume", "resumes on resume_gateway_url")
    assert.deepStrictEqual([before, missed, after].map((m) => countOf(received, m.id)), [1, 1, 1])

    // A server close with a resumable code, then op 7 RECONNECT: both resume.
    await fake.dropConnection(CloseCode.UnknownError)
    await fake.waitFor(() => resumed.length === 2, 5000, "resume after 4000")
    fake.sendReconnect()
    await fake.waitFor(() => resumed.length === 3, 5000, "resume after op 7")
    const last = fake.dispatchMessage({ channelId: generalId, author: alice, content: "last" })
    await fake.waitFor(() => countOf(received, last.id) === 1, 3000, "last")
    assert.strictEqual(fake.identifyCount, 1)
    assert.strictEqual(fake.resumeCount, 3)
    assert.deepStrictEqual([before, missed, after, last].map((m) => countOf(received, m.id)), [1, 1, 1, 1])
  })

  it("resumes a zombie connection whose heartbeats go unacknowledged", async () => {
    const fake = await startFake({ heartbeatIntervalMs: 100 })
    const { generalId, alice } = world(fake)
    const { received } = await connect(fake)

    fake.setHeartbeatAcks(false)
    await fake.waitFor(() => fake.connections[0]?.closedAt !== undefined, 3000, "zombie close")
    fake.setHeartbeatAcks(true)
    await fake.waitFor(() => fake.resumes.some((r) => r.outcome === "resumed"), 3000, "resume")
    assert.strictEqual(fake.connections[0]?.closedBy, "client")
    assert.strictEqual(fake.identifyCount, 1)
    const m = fake.dispatchMessage({ channelId: generalId, author: alice, content: "still here" })
    await fake.waitFor(() => countOf(received, m.id) === 1, 3000, "message after zombie resume")
  })

  it("INVALID_SESSION: true resumes on the same socket, false re-IDENTIFYs (after the 5 s identify throttle)", async () => {
    const fake = await startFake()
    const { generalId, alice } = world(fake)
    const { client, received } = await connect(fake)

    fake.invalidateSession(true)
    const queued = fake.dispatchMessage({ channelId: generalId, author: alice, content: "during op 9 true" })
    await fake.waitFor(() => fake.resumeCount === 1, 3000, "resume on op 9 true")
    assert.strictEqual(fake.resumes[0]?.connectionId, fake.connections[0]?.id)
    await fake.waitFor(() => countOf(received, queued.id) === 1, 3000, "replayed")

    const started = Date.now()
    fake.invalidateSession(false)
    const lost = fake.dispatchMessage({ channelId: generalId, author: alice, content: "into the void" })
    await fake.waitFor(() => fake.identifyCount === 2 && fake.identifies[1]?.outcome === "ready", 9000, "re-identify")
    const reidentifiedAfter = Date.now() - started
    const fresh = fake.dispatchMessage({ channelId: generalId, author: alice, content: "new session" })
    await fake.waitFor(() => countOf(received, fresh.id) === 1, 3000, "message on the new session")

    assert.strictEqual(countOf(received, lost.id), 0, "a dispatch into a dead session is not replayed")
    assert.strictEqual(fake.resumeCount, 1)
    assert.notStrictEqual(fake.connections.at(-1)?.sessionId, fake.connections[0]?.sessionId)
    assert.isTrue(client.isReady())
    // @discordjs/ws SimpleIdentifyThrottler: 5 s between identifies (+ up to 1.5 s jitter).
    assert.isAtLeast(reidentifiedAfter, 3000)
  }, 15_000)

  it("a bad token fails login with TokenInvalid and never reaches the gateway", async () => {
    const fake = await startFake()
    world(fake)
    const client = newClient(fake)
    const error = await client.login("not-the-token").then(
      () => undefined,
      (e: unknown) => e
    )
    assert.isTrue(error instanceof DiscordjsError, String(error))
    assert.strictEqual(error instanceof DiscordjsError ? error.code : undefined, "TokenInvalid")
    assert.deepStrictEqual(fake.requests.map((r) => [r.path, r.status]), [["/gateway/bot", 401]])
    await sleep(700)
    assert.strictEqual(fake.connections.length, 0)
    assert.strictEqual(fake.identifyCount, 0)
  })

  it("a token revoked mid-session closes 4004 on RESUME and discord.js stops, no loop", async () => {
    const fake = await startFake()
    world(fake)
    const { client } = await connect(fake)
    const disconnects: Array<number> = []
    const errors: Array<string> = []
    client.on(Events.ShardDisconnect, (event) => disconnects.push(event.code))
    client.on(Events.ShardError, (error) => errors.push(error.message))

    fake.rotateToken()
    await fake.dropConnection(CloseCode.UnknownError)
    await fake.waitFor(() => disconnects.length === 1, 5000, "shardDisconnect")
    await sleep(1000)

    assert.deepStrictEqual(disconnects, [CloseCode.AuthenticationFailed])
    assert.deepStrictEqual(errors, ["Authentication failed"])
    assert.deepStrictEqual(fake.resumes.map((r) => r.outcome), [CloseCode.AuthenticationFailed])
    assert.strictEqual(fake.identifyCount, 1)
    assert.strictEqual(fake.connections.length, 2)
    assert.strictEqual(fake.openConnections, 0)
    // discord.js still calls itself ready: only shardDisconnect/shardError tell.
    assert.isTrue(client.isReady())
    // The REST side refuses the old token too.
    const rest = await client.rest.get("/users/@me").then(() => undefined, (e: unknown) => e)
    assert.instanceOf(rest, DiscordAPIError)
    assert.strictEqual(rest instanceof DiscordAPIError ? rest.status : 0, 401)
  })

  it("a disallowed privileged intent closes 4014: login rejects, no reconnect loop", async () => {
    const fake = await startFake({ privilegedIntents: { messageContent: false } })
    world(fake)
    const client = newClient(fake)
    const disconnects: Array<number> = []
    client.on(Events.ShardDisconnect, (event) => disconnects.push(event.code))
    const error = await client.login(fake.token).then(() => undefined, (e: unknown) => e)

    assert.instanceOf(error, Error)
    assert.match(error instanceof Error ? error.message : "", /disallowed intents/i)
    assert.deepStrictEqual(disconnects, [CloseCode.DisallowedIntents])
    assert.strictEqual(fake.connections[0]?.closeCode, CloseCode.DisallowedIntents)
    await sleep(1000)
    assert.strictEqual(fake.identifyCount, 1)
    assert.strictEqual(fake.connections.length, 1)
  })

  it("without MESSAGE_CONTENT, guild content is blank unless the bot is mentioned (DMs keep it)", async () => {
    const fake = await startFake({ privilegedIntents: { messageContent: false } })
    const { generalId, alice, bob } = world(fake)
    const { client, received } = await connect(fake, {
      intents: ALL_INTENTS.filter((i) => i !== GatewayIntentBits.MessageContent)
    })
    const unmentioned = fake.dispatchMessage({
      channelId: generalId,
      author: alice,
      content: "secret",
      attachments: [{ filename: "a.txt", data: "x" }]
    })
    const mentioned = fake.dispatchMessage({ channelId: generalId, author: alice, content: `<@${fake.botUser.id}> visible` })
    const dm = fake.dispatchMessage({ channelId: bob.channelId, author: bob.user, content: "dm visible" })
    await fake.waitFor(() => received.length === 3, 3000, "three messages")
    const byId = (id: string) => received.find((m) => m.id === id)
    assert.strictEqual(byId(unmentioned.id)?.content, "")
    assert.strictEqual(byId(unmentioned.id)?.attachments.size, 0)
    assert.strictEqual(byId(mentioned.id)?.content, `<@${fake.botUser.id}> visible`)
    assert.isTrue(client.user !== null && byId(mentioned.id)?.mentions.has(client.user))
    assert.strictEqual(byId(dm.id)?.content, "dm visible")
  })

  it("enforce_nonce returns the original message for a repeated nonce, even across a lost response", async () => {
    const fake = await startFake()
    const { generalId } = world(fake)
    const { client } = await connect(fake)
    const channel = await sendable(client, generalId)

    const first = await channel.send({ content: "once", nonce: "reply-1", enforceNonce: true })
    const again = await channel.send({ content: "once", nonce: "reply-1", enforceNonce: true })
    assert.strictEqual(again.id, first.id)
    assert.strictEqual(fake.nonceHits, 1)
    assert.deepStrictEqual(fake.sentMessages.map((m) => [m.id, m.nonce, m.enforceNonce]), [[first.id, "reply-1", true]])

    // The message is created but the answer is lost (502): discord.js retries the POST.
    const path = `/channels/${generalId}/messages`
    fake.failNext({ method: "POST", path }, { status: 502, after: true })
    const retried = await channel.send({ content: "exactly once", nonce: "reply-2", enforceNonce: true })
    assert.deepStrictEqual(fake.requests.filter((r) => r.path === path).slice(-2).map((r) => [r.status, r.dedupedByNonce]), [
      [502, false],
      [200, true]
    ])
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.content), ["once", "exactly once"])
    assert.strictEqual(retried.id, fake.sentMessages[1]?.id)

    // Without enforce_nonce the same lost answer duplicates the message.
    fake.failNext({ method: "POST", path }, { status: 502, after: true })
    await channel.send({ content: "twice", nonce: "reply-3" })
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.content), ["once", "exactly once", "twice", "twice"])
  })

  it("answers bad REST input with Discord's error codes and logs unknown routes", async () => {
    const fake = await startFake()
    const { generalId, guild } = world(fake)
    const { client } = await connect(fake)
    const channel = await sendable(client, generalId)
    const codeOf = (p: Promise<unknown>) =>
      p.then(() => "ok", (e: unknown) => (e instanceof DiscordAPIError ? `${e.status}/${e.code}` : String(e)))

    assert.strictEqual(await codeOf(channel.send("x".repeat(2001))), "400/50035")
    assert.strictEqual(await codeOf(channel.send("x".repeat(2000))), "ok")
    assert.strictEqual(await codeOf(client.rest.post(`/channels/${generalId}/messages`, { body: { content: "   " } })), "400/50006")
    assert.strictEqual(await codeOf(client.rest.post(`/channels/${fake.snowflake()}/messages`, { body: { content: "hi" } })), "404/10003")
    assert.strictEqual(
      await codeOf(channel.send({ content: "hi", reply: { messageReference: fake.snowflake() } })),
      "400/50035"
    )
    assert.strictEqual(
      await codeOf(channel.send({ content: "hi", reply: { messageReference: fake.snowflake(), failIfNotExists: false } })),
      "ok"
    )
    const readOnly = guild.channels.find((c) => c.name === "announcements")?.id ?? ""
    assert.strictEqual(await codeOf(client.rest.post(`/channels/${readOnly}/messages`, { body: { content: "hi" } })), "403/50013")
    assert.strictEqual(await codeOf(client.rest.post(`/channels/${generalId}/messages`, { body: { content: "n", nonce: "x".repeat(26) } })), "400/50035")
    assert.strictEqual(await codeOf(client.rest.get("/nothing/here")), "404/0")
    assert.deepStrictEqual(fake.unknownRoutes, [{ method: "GET", path: "/nothing/here" }])

    const raw = await fetch(`${fake.apiBase}/v10/channels/${generalId}/messages`, {
      method: "POST",
      headers: { authorization: `Bot ${fake.token}`, "content-type": "application/json" },
      body: "{not json"
    })
    assert.strictEqual(raw.status, 400)
    assert.deepStrictEqual(await raw.json(), { message: "The request body contains invalid JSON.", code: 50109 })
    assert.strictEqual(raw.headers.get("x-ratelimit-limit"), "50")
    assert.isNotNull(raw.headers.get("x-ratelimit-bucket"))
    const anonymous = await fetch(`${fake.apiBase}/v10/users/@me`)
    assert.strictEqual(anonymous.status, 401)
    assert.deepStrictEqual(await anonymous.json(), { message: "401: Unauthorized", code: 0 })
  })

  it("enforces its own per-bucket rate limit with a genuine 429 that discord.js waits out", async () => {
    const fake = await startFake({ rateLimit: { limit: 2, windowMs: 400 } })
    const { generalId } = world(fake)
    const { client } = await connect(fake)
    const channel = await sendable(client, generalId)
    // discord.js reads X-RateLimit-Remaining and queues instead of hitting the 429.
    await Promise.all([channel.send("1"), channel.send("2"), channel.send("3"), channel.send("4")])
    const path = `/channels/${generalId}/messages`
    assert.deepStrictEqual(fake.sentMessages.map((m) => m.content), ["1", "2", "3", "4"])
    assert.isFalse(fake.requests.some((r) => r.path === path && r.status === 429))

    // A client that ignores the headers gets the 429 with Discord's body.
    const hammer = await Promise.all(
      [1, 2, 3].map(() =>
        fetch(`${fake.apiBase}/v10${path}`, {
          method: "POST",
          headers: { authorization: `Bot ${fake.token}`, "content-type": "application/json" },
          body: JSON.stringify({ content: "raw" })
        })
      )
    )
    const limited = hammer.find((r) => r.status === 429)
    assert.isDefined(limited)
    const body: unknown = await limited?.json()
    assert.deepInclude(body, { message: "You are being rate limited.", global: false })
    assert.strictEqual(limited?.headers.get("x-ratelimit-scope"), "user")
    assert.match(limited?.headers.get("retry-after") ?? "", /^\d+$/)
  })

  it.live("FakeDiscord.make serves inside a Scope and closes with it", () =>
    Effect.gen(function*() {
      const url = yield* Effect.scoped(Effect.gen(function*() {
        const fake = yield* FakeDiscord.make()
        const response = yield* Effect.promise(() => fetch(`${fake.apiBase}/v10/gateway`).then((r) => r.json()))
        assert.deepStrictEqual(response, { url: fake.gatewayUrl })
        return fake.apiBase
      }))
      const after = yield* Effect.promise(() => fetch(`${url}/v10/gateway`).then(() => "open", () => "closed"))
      assert.strictEqual(after, "closed")
    }))

  it("refuses gateway protocol violations with Discord's close codes", async () => {
    const fake = await startFake()
    const open = async (path = "/gateway?v=10&encoding=json") => {
      const ws = new WebSocket(`${fake.url.replace("http", "ws")}${path}`)
      const frames: Array<unknown> = []
      ws.on("message", (data) => frames.push(JSON.parse(String(data))))
      const closed = new Promise<number>((resolve) => ws.on("close", (code) => resolve(code)))
      await once(ws, "open")
      await fake.waitFor(() => frames.length >= 1, 2000, "HELLO")
      return { ws, frames, closed }
    }
    const identify = (token: string, intents = 513) => JSON.stringify({
      op: GatewayOp.Identify,
      d: { token, intents, properties: { os: "linux", browser: "test", device: "test" } }
    })

    const garbage = await open()
    assert.deepInclude(garbage.frames[0], { op: GatewayOp.Hello, d: { heartbeat_interval: 250, _trace: ["[\"fake-discord\",{\"micros\":0}]"] } })
    garbage.ws.send("{nope")
    assert.strictEqual(await garbage.closed, CloseCode.DecodeError)

    const early = await open()
    early.ws.send(JSON.stringify({ op: GatewayOp.RequestGuildMembers, d: { guild_id: "1" } }))
    assert.strictEqual(await early.closed, CloseCode.NotAuthenticated)

    const unknownOp = await open()
    unknownOp.ws.send(JSON.stringify({ op: 99, d: null }))
    assert.strictEqual(await unknownOp.closed, CloseCode.UnknownOpcode)

    const badIntents = await open()
    badIntents.ws.send(identify(fake.token, 1 << 30))
    assert.strictEqual(await badIntents.closed, CloseCode.InvalidIntents)

    const twice = await open()
    twice.ws.send(identify(fake.token))
    await fake.waitFor(() => twice.frames.some((f) => typeof f === "object" && f !== null && "t" in f && f.t === "READY"), 2000, "READY")
    twice.ws.send(identify(fake.token))
    assert.strictEqual(await twice.closed, CloseCode.AlreadyAuthenticated)

    const staleResume = await open()
    staleResume.ws.send(JSON.stringify({ op: GatewayOp.Resume, d: { token: fake.token, session_id: "gone", seq: 3 } }))
    await fake.waitFor(() => staleResume.frames.length === 2, 2000, "op 9")
    assert.deepInclude(staleResume.frames[1], { op: GatewayOp.InvalidSession, d: false })
    staleResume.ws.close(1000)

    const oldVersion = await open("/gateway?v=9&encoding=json")
    assert.strictEqual(await oldVersion.closed, CloseCode.InvalidApiVersion)

    const etf = new WebSocket(`${fake.url.replace("http", "ws")}/gateway?v=10&encoding=etf`)
    const refused = await new Promise<string>((resolve) => {
      etf.on("unexpected-response", (_req, res) => resolve(String(res.statusCode)))
      etf.on("error", (e) => resolve(e.message))
    })
    assert.strictEqual(refused, "400")
    assert.isTrue(fake.protocolErrors.some((e) => e.includes("encoding etf")))
  })
})

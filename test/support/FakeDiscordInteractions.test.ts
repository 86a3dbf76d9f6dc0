// The real discord.js against FakeDiscord's application commands and
// interactions: registering commands (bulk PUT, POST upsert, DELETE),
// INTERACTION_CREATE, the initial response within its window, editing the
// original response and follow-ups through the interaction's webhook token,
// and Discord's refusals (a second acknowledgement, a late response, an
// expired token, a bad command).
import { once } from "node:events"
import { assert, describe, it } from "@effect/vitest"
import {
  ApplicationCommandOptionType,
  type ChatInputApplicationCommandData,
  type ChatInputCommandInteraction,
  Client,
  DiscordAPIError,
  Events,
  GatewayIntentBits,
  MessageFlags,
  Partials
} from "discord.js"
import { afterEach } from "vitest"
import { FakeDiscord, type FakeDiscordHandle, type FakeDiscordOptions } from "./FakeDiscord.ts"

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

const startFake = async (options: FakeDiscordOptions = {}): Promise<FakeDiscordHandle> => {
  const fake = await FakeDiscord.start({ heartbeatIntervalMs: 250, ...options })
  cleanups.push(() => fake.close())
  return fake
}

const connect = async (fake: FakeDiscordHandle) => {
  const client = new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.DirectMessages], partials: [Partials.Channel], rest: { api: fake.apiBase } })
  cleanups.push(() => client.destroy())
  const interactions: Array<ChatInputCommandInteraction> = []
  client.on(Events.InteractionCreate, (interaction) => {
    if (interaction.isChatInputCommand()) interactions.push(interaction)
  })
  const ready = once(client, Events.ClientReady)
  await client.login(fake.token)
  await ready
  const application = client.application
  if (application === null) throw new Error("no application after READY")
  return { client, application, interactions }
}

const STATUS: ChatInputApplicationCommandData = { name: "status", description: "Show the session" }
const THINK: ChatInputApplicationCommandData = {
  name: "think",
  description: "Set thinking",
  // Discord answers integration_types [0] for a command registered without them, so a comparison needs them set.
  integrationTypes: [0],
  contexts: [0, 1],
  options: [{ type: ApplicationCommandOptionType.String, name: "level", description: "The level", required: false, choices: [{ name: "high", value: "high" }] }]
}

const apiError = async (promise: Promise<unknown>): Promise<DiscordAPIError> => {
  try {
    await promise
  } catch (error) {
    if (error instanceof DiscordAPIError) return error
    throw error
  }
  throw new Error("expected a Discord API error")
}

describe("FakeDiscord application commands", () => {
  it("bulk overwrite, fetch, upsert and delete as discord.js does them; ids survive an overwrite of the same name", async () => {
    const fake = await startFake()
    const { application } = await connect(fake)
    assert.strictEqual(application.id, fake.applicationId)
    assert.strictEqual((await application.commands.fetch()).size, 0)

    const first = await application.commands.set([STATUS, THINK])
    assert.strictEqual(first.size, 2)
    const put = fake.requests.filter((r) => r.method === "PUT" && r.path === `/applications/${fake.applicationId}/commands`)
    assert.strictEqual(put.length, 1)
    const fetched = await application.commands.fetch()
    const think = fetched.find((c) => c.name === "think")
    assert.isTrue(think?.equals(THINK, true), "what was registered is what discord.js compares equal")
    assert.isFalse(think?.equals({ ...THINK, description: "changed" }, true))

    const again = await application.commands.set([STATUS])
    assert.strictEqual(again.first()?.id, first.find((c) => c.name === "status")?.id, "same name keeps its id")
    assert.deepStrictEqual(fake.applicationCommands().map((c) => c.name), ["status"])

    const created = await application.commands.create(THINK)
    assert.strictEqual(fake.requests.at(-1)?.status, 201)
    await application.commands.create({ ...THINK, description: "Set thinking now" })
    assert.strictEqual(fake.requests.at(-1)?.status, 200, "an existing name is overwritten")
    assert.strictEqual(fake.applicationCommands().find((c) => c.name === "think")?.description, "Set thinking now")
    await application.commands.delete(created.id)
    assert.deepStrictEqual(fake.applicationCommands().map((c) => c.name), ["status"])
    const missing = await apiError(application.commands.delete(created.id))
    assert.strictEqual(missing.code, 10063)
    assert.deepStrictEqual(fake.protocolErrors, [])
  })

  it("refuses invalid commands with Discord's form errors and leaves the set unchanged", async () => {
    const fake = await startFake()
    const { application } = await connect(fake)
    await application.commands.set([STATUS])
    const upper = await apiError(application.commands.set([{ name: "Status", description: "x" }]))
    assert.strictEqual(upper.code, 50035)
    const empty = await apiError(application.commands.set([{ name: "help", description: "" }]))
    assert.strictEqual(empty.code, 50035)
    const duplicate = await apiError(application.commands.set([STATUS, STATUS]))
    assert.strictEqual(duplicate.code, 50035)
    const long = await apiError(application.commands.create({ name: "help", description: "x".repeat(101) }))
    assert.strictEqual(long.code, 50035)
    assert.deepStrictEqual(fake.applicationCommands().map((c) => c.name), ["status"])
    const unauthorized = await fetch(`${fake.apiBase}/v10/applications/${fake.applicationId}/commands`)
    assert.strictEqual(unauthorized.status, 401, "command routes need the bot token")
  })
})

describe("FakeDiscord interactions", () => {
  it("INTERACTION_CREATE reaches discord.js; defer (ephemeral), edit the original, follow up", async () => {
    const fake = await startFake()
    const alice = fake.addUser({ username: "alice" })
    const generalId = fake.snowflake()
    const guild = fake.addGuild({ name: "G", channels: [{ id: generalId, name: "general" }], members: [{ user: alice }] })
    const { application, interactions } = await connect(fake)
    await application.commands.set([STATUS, THINK])
    await fake.waitFor(() => true)

    const sent = fake.dispatchInteraction({ user: alice, channelId: generalId, commandName: "think", options: { level: "high" } })
    await fake.waitFor(() => interactions.length === 1, 3000, "interactionCreate")
    const interaction = interactions[0]
    if (interaction === undefined) throw new Error("no interaction")
    assert.strictEqual(interaction.id, sent.id)
    assert.strictEqual(interaction.commandName, "think")
    assert.strictEqual(interaction.options.getString("level"), "high")
    assert.strictEqual(interaction.guildId, guild.id)
    assert.strictEqual(interaction.channelId, generalId)
    assert.strictEqual(interaction.user.id, alice.id)
    assert.strictEqual(interaction.applicationId, fake.applicationId)

    await interaction.deferReply({ flags: MessageFlags.Ephemeral })
    assert.isTrue(fake.interaction(sent.id)?.acknowledged)
    assert.strictEqual(fake.interaction(sent.id)?.flags, MessageFlags.Ephemeral)
    assert.strictEqual(fake.interaction(sent.id)?.originalContent, undefined, "deferred: still thinking")
    const callback = fake.requests.find((r) => r.path.startsWith(`/interactions/${sent.id}/`))
    assert.isFalse(callback?.authorized, "discord.js answers interactions without the bot token")

    const edited = await interaction.editReply("Thinking set to high.")
    assert.strictEqual(edited.content, "Thinking set to high.")
    assert.strictEqual(fake.interaction(sent.id)?.originalContent, "Thinking set to high.")
    await interaction.followUp({ content: "more", flags: MessageFlags.Ephemeral })
    assert.deepStrictEqual(fake.interaction(sent.id)?.followups.map((f) => [f.content, f.flags]), [["more", MessageFlags.Ephemeral]])
    assert.deepStrictEqual(fake.interactionResponses.map((r) => r.kind), ["callback", "edit-original", "followup"])
    assert.strictEqual(fake.interactionResponses[0]?.callbackType, 5)
    assert.deepStrictEqual(fake.protocolErrors, [])
  })

  it("a redelivered interaction cannot be acknowledged twice (40060); DM interactions carry the user", async () => {
    const fake = await startFake()
    const bob = fake.addDmUser({ username: "bob" })
    const { application, interactions } = await connect(fake)
    await application.commands.set([STATUS])
    const sent = fake.dispatchInteraction({ user: bob.user, channelId: bob.channelId, commandName: "status" })
    await fake.waitFor(() => interactions.length === 1, 3000, "first delivery")
    fake.redispatchInteraction(sent.id)
    await fake.waitFor(() => interactions.length === 2, 3000, "redelivery")
    const [first, second] = interactions
    if (first === undefined || second === undefined) throw new Error("missing interactions")
    assert.strictEqual(second.id, first.id)
    assert.isNull(first.guildId)
    assert.strictEqual(first.user.id, bob.user.id)
    await first.reply({ content: "status here" })
    assert.strictEqual(fake.interaction(sent.id)?.originalContent, "status here")
    const twice = await apiError(second.deferReply())
    assert.strictEqual(twice.code, 40060)
    assert.throws(() => fake.dispatchInteraction({ user: bob.user, channelId: bob.channelId, commandName: "nope" }), /not a registered command/)
  })

  it("a first response after the window is refused (10062); an expired token cannot edit or follow up (10015)", async () => {
    const fake = await startFake({ interactionCallbackWindowMs: 100, interactionTokenTtlMs: 600 })
    const bob = fake.addDmUser({ username: "bob" })
    const { application, interactions } = await connect(fake)
    await application.commands.set([STATUS])
    fake.dispatchInteraction({ user: bob.user, channelId: bob.channelId, commandName: "status" })
    fake.dispatchInteraction({ user: bob.user, channelId: bob.channelId, commandName: "status" })
    await fake.waitFor(() => interactions.length === 2, 3000, "two interactions")
    const [late, timely] = interactions
    if (late === undefined || timely === undefined) throw new Error("missing interactions")
    await timely.deferReply()
    await new Promise((resolve) => setTimeout(resolve, 150))
    const tooLate = await apiError(late.deferReply())
    assert.strictEqual(tooLate.code, 10062)
    await timely.editReply("still in time")
    await new Promise((resolve) => setTimeout(resolve, 600))
    const expired = await apiError(timely.editReply("too late"))
    assert.strictEqual(expired.code, 10015)
    const expiredFollowup = await apiError(timely.followUp("too late"))
    assert.strictEqual(expiredFollowup.code, 10015)
    assert.strictEqual(fake.interaction(timely.id)?.originalContent, "still in time")
  })
})

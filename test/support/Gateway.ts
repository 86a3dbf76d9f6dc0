/**
 * Starts the real gateway (`dist/main.js`) as its own process on a free
 * loopback port, with a temp state directory, a config written to disk and a
 * known token, and points its Anthropic provider at a fake server.
 */
import * as fs from "node:fs/promises"
import * as os from "node:os"
import * as path from "node:path"
import { afterAll, beforeAll } from "@effect/vitest"
import { stringify } from "yaml"
import { freePort, start, waitFor } from "./Cli.ts"
import { type FakeAnthropicHandle, startFakeAnthropic } from "./FakeAnthropic.ts"

export interface StartedGateway {
  readonly url: string
  readonly wsUrl: string
  readonly port: number
  readonly token: string
  readonly home: string
  readonly output: () => { stdout: string; stderr: string }
  /** SIGTERM, wait for the exit, then delete the state directory unless `keepHome`. */
  readonly stop: (options?: { readonly keepHome?: boolean }) => Promise<{ code: number | null; stdout: string; stderr: string }>
}

export interface GatewayOptions {
  readonly anthropicUrl: string
  /** Extra config, as it would be written in beamclaw.yaml; merged over the test defaults at the top level. */
  readonly config?: Record<string, unknown>
  readonly token?: string
  readonly env?: Record<string, string>
}

export const startGateway = async (options: GatewayOptions): Promise<StartedGateway> => {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), "beamclaw-gw-"))
  const port = await freePort()
  const token = options.token ?? `test-token-${crypto.randomUUID()}`
  const config = {
    models: { providers: { anthropic: { baseUrl: options.anthropicUrl, apiKey: "sk-test" } } },
    ...options.config
  }
  await fs.writeFile(path.join(home, "beamclaw.yaml"), stringify(config))
  const started = start([], { BEAMCLAW_HOME: home, BEAMCLAW_PORT: String(port), BEAMCLAW_GATEWAY_TOKEN: token, ...options.env })
  try {
    await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/ready`).catch(() => undefined))?.ok === true, "the gateway to be ready", 15_000)
  } catch (error) {
    started.child.kill("SIGKILL")
    const output = started.output()
    throw new Error(`${String(error)}\nstdout: ${output.stdout}\nstderr: ${output.stderr}`)
  }
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    token,
    home,
    output: started.output,
    stop: async (stopOptions) => {
      started.child.kill("SIGTERM")
      const result = await started.result
      if (stopOptions?.keepHome !== true) await fs.rm(home, { recursive: true, force: true })
      return result
    }
  }
}

/**
 * One fake Anthropic API and one gateway on it for a whole test file: started
 * before its first test, stopped after its last. Read them inside tests.
 */
export const gatewayForFile = (options: Omit<GatewayOptions, "anthropicUrl"> = {}) => {
  let fake: FakeAnthropicHandle | undefined
  let gateway: StartedGateway | undefined
  beforeAll(async () => {
    fake = await startFakeAnthropic()
    gateway = await startGateway({ ...options, anthropicUrl: fake.url })
  })
  afterAll(async () => {
    await gateway?.stop()
    await fake?.close()
  })
  const started = <A>(value: A | undefined, what: string): A => {
    if (value === undefined) throw new Error(`${what} is read before the file's beforeAll ran`)
    return value
  }
  return {
    get fake(): FakeAnthropicHandle {
      return started(fake, "the fake Anthropic API")
    },
    get gateway(): StartedGateway {
      return started(gateway, "the gateway")
    }
  }
}

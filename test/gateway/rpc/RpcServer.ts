/**
 * The RPC route served in-process over the real core layers (config from a
 * file on disk, so PatchConfig can write it), real GatewayAuth, and the fake
 * Anthropic upstream; the client under test connects over loopback.
 */
import * as fs from "node:fs/promises"
import { createServer } from "node:http"
import * as path from "node:path"
import { NodeHttpServer, NodeServices } from "@effect/platform-node"
import { Context, Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { stringify } from "yaml"
import * as AgentDirectoryLayer from "../../../src/agent/AgentDirectoryLayer.ts"
import * as PromptBuilder from "../../../src/agent/PromptBuilder.ts"
import { ToolRegistry } from "../../../src/agent/Tool.ts"
import { AppConfig } from "../../../src/config/AppConfig.ts"
import { ConfigWriter } from "../../../src/config/ConfigWriter.ts"
import { Paths } from "../../../src/config/Paths.ts"
import * as GatewayAuthLayer from "../../../src/gateway/auth/GatewayAuthLayer.ts"
import * as RpcRoutes from "../../../src/gateway/rpc/RpcRoutes.ts"
import { SessionEvents } from "../../../src/gateway/rpc/SessionEvents.ts"
import * as ModelsLayer from "../../../src/provider/ModelsLayer.ts"
import * as FileSessionStore from "../../../src/session/FileSessionStore.ts"
import { Sessions } from "../../../src/session/Sessions.ts"
import { SessionMaintenance } from "../../../src/session/SessionMaintenance.ts"
import { ChannelSupervisor } from "../../../src/channels/ChannelSupervisor.ts"
import { PairingStore } from "../../../src/channels/PairingStore.ts"
import { FakeAnthropic, type FakeAnthropicHandle } from "../../support/FakeAnthropic.ts"
import { tempDir } from "../../support/TestApp.ts"

export interface RpcTestServerShape {
  /** ws://127.0.0.1:<port>/rpc */
  readonly url: string
  readonly httpUrl: string
  readonly token: string
  readonly home: string
  readonly configFile: string
  readonly fake: FakeAnthropicHandle
}

export class RpcTestServer extends Context.Service<RpcTestServer, RpcTestServerShape>()("test/RpcTestServer") {}

export const CONFIG_COMMENT = "# written by the RPC test: this comment must survive a patch"

export const layer = Layer.unwrap(Effect.gen(function*() {
  const home = yield* tempDir("beamclaw-rpc-")
  const fake = yield* FakeAnthropic.make()
  const token = `rpc-token-${crypto.randomUUID()}`
  const configFile = path.join(home, "beamclaw.yaml")
  const config = {
    models: { providers: { anthropic: { baseUrl: fake.url, apiKey: "sk-test" } } },
    agents: { defaults: { workspace: path.join(home, "workspace"), timeoutSeconds: 20 }, list: [{ id: "main", default: true }, { id: "other" }] },
    gateway: { auth: { mode: "token", token } },
    session: { supervisor: { backoffMs: 10 } }
  }
  yield* Effect.promise(() => fs.writeFile(configFile, `${CONFIG_COMMENT}\n${stringify(config)}`))

  const core = Sessions.layer.pipe(
    Layer.provideMerge(Layer.mergeAll(
      AgentDirectoryLayer.layer,
      ModelsLayer.layer,
      PromptBuilder.layer,
      ToolRegistry.empty,
      FileSessionStore.layer({ home })
    )),
    Layer.provideMerge(AppConfig.layerWith({ watchFile: false })),
    Layer.provideMerge(Paths.layerFrom({ home, configFile })),
    Layer.provideMerge(NodeServices.layer)
  )
  const server = HttpRouter.serve(RpcRoutes.layer, { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(NodeHttpServer.layer(createServer, { port: 0, host: "127.0.0.1" })),
    // As App.gateway: the config writer and the session fan-out belong to the gateway, not the listener.
    Layer.provide(Layer.mergeAll(GatewayAuthLayer.layer, ConfigWriter.layer, SessionEvents.layer, ChannelSupervisor.layer<never>([]), SessionMaintenance.layer({ automatic: false }))),
    Layer.provideMerge(PairingStore.layer),
    Layer.provideMerge(core)
  )
  return Layer.effect(RpcTestServer)(Effect.gen(function*() {
    const http = yield* HttpServer.HttpServer
    const port = http.address._tag === "UnixPathAddress" ? 0 : http.address.port
    return RpcTestServer.of({ url: `ws://127.0.0.1:${port}/rpc`, httpUrl: `http://127.0.0.1:${port}`, token, home, configFile, fake })
  })).pipe(Layer.provideMerge(server))
}))

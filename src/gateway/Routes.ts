/**
 * Every HTTP route and WebSocket upgrade the gateway serves on its one port.
 */
import { Layer } from "effect"
import * as HealthRoutes from "./HealthRoutes.ts"
import * as HookRoutes from "./hooks/HookRoutes.ts"
import * as OpenAiRoutes from "./openai/OpenAiRoutes.ts"
import * as RpcRoutes from "./rpc/RpcRoutes.ts"
import * as WsRoutes from "./ws/WsRoutes.ts"

export const layer = Layer.mergeAll(
  HealthRoutes.layer,
  OpenAiRoutes.layer,
  HookRoutes.layer,
  RpcRoutes.layer,
  WsRoutes.layer
)

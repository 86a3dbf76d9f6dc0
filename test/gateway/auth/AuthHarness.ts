/**
 * Builds the real GatewayAuth layer over a temp state directory and an
 * in-memory config, collecting what it logs.
 */
import { generateKeyPairSync, sign as cryptoSign } from "node:crypto"
import { createHash } from "node:crypto"
import { Effect, Layer, Logger, Schema } from "effect"
import { AppConfig } from "../../../src/config/AppConfig.ts"
import { BeamclawConfig } from "../../../src/config/ConfigSchema.ts"
import { Paths } from "../../../src/config/Paths.ts"
import * as GatewayAuthLayer from "../../../src/gateway/auth/GatewayAuthLayer.ts"

export const decodeConfig = (gateway: Record<string, unknown> = {}) => Schema.decodeUnknownSync(BeamclawConfig)({ gateway })

export const collectLogs = () => {
  const lines: Array<string> = []
  const logger = Logger.make((options) => {
    const message = options.message
    lines.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
  })
  return { lines, layer: Logger.layer([logger]) }
}

/** GatewayAuth plus the AppConfig it reads (so a test can `set` a new config). */
export const authLayer = (home: string, config: BeamclawConfig, logs = collectLogs()) =>
  GatewayAuthLayer.layer.pipe(
    Layer.provideMerge(AppConfig.layerFromValue(config)),
    Layer.provide(Paths.layerFrom({ home })),
    Layer.provide(logs.layer)
  )

/** The startup failure of the layer, or undefined when it builds. */
export const buildFailure = (home: string, config: BeamclawConfig) =>
  Effect.scoped(Layer.build(authLayer(home, config))).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
    Effect.catchCause(() => Effect.succeed(undefined))
  )

/** A device as OpenClaw's client makes one: an Ed25519 key, id = hex SHA-256 of the raw public key. */
export const makeDevice = () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const spki = publicKey.export({ type: "spki", format: "der" })
  const raw = spki.subarray(spki.length - 32)
  return {
    id: createHash("sha256").update(raw).digest("hex"),
    publicKey: raw.toString("base64url"),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    sign: (payload: string) => cryptoSign(null, Buffer.from(payload, "utf8"), privateKey).toString("base64url")
  }
}

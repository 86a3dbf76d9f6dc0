/**
 * A raw WebSocket client for the OpenClaw protocol (Node's global
 * WebSocket): records every frame and the close, and speaks connect/req.
 */
import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto"

/** A frame as received; read nested values with `at`. */
export interface Frame {
  readonly type: string
  readonly id?: string
  readonly ok?: boolean
  readonly payload?: unknown
  readonly error?: { readonly code: string; readonly message: string; readonly details?: unknown }
  readonly event?: string
  readonly seq?: number
}

/** The value at a path of keys (or array indexes) in decoded JSON, or undefined. */
export const at = (value: unknown, ...path: ReadonlyArray<string | number>): unknown => {
  let current = value
  for (const key of path) {
    if (typeof current !== "object" || current === null) return undefined
    const next: unknown = Reflect.get(current, key)
    current = next
  }
  return current
}

export const list = (value: unknown): ReadonlyArray<unknown> => Array.isArray(value) ? value : []

export interface Closed {
  readonly code: number
  readonly reason: string
}

export class WsClient {
  readonly frames: Array<Frame> = []
  readonly closed: Promise<Closed>
  private readonly waiters: Array<() => void> = []
  private counter = 0

  readonly ws: WebSocket

  private constructor(ws: WebSocket) {
    this.ws = ws
    ws.addEventListener("message", (event) => {
      const frame: Frame = JSON.parse(String(event.data))
      this.frames.push(frame)
      for (const wake of this.waiters.splice(0)) wake()
    })
    this.closed = new Promise((resolve) => ws.addEventListener("close", (event) => {
      resolve({ code: event.code, reason: event.reason })
      for (const wake of this.waiters.splice(0)) wake()
    }))
  }

  /** `headers` go on the upgrade request (Node's WebSocket accepts them), e.g. a proxy's `x-forwarded-for`. */
  static open = (url: string, options: { readonly headers?: Record<string, string> } = {}): Promise<WsClient> =>
    new Promise((resolve, reject) => {
      const ws = options.headers === undefined ? new WebSocket(url) : new WebSocket(url, { headers: options.headers })
      const client = new WsClient(ws)
      ws.addEventListener("open", () => resolve(client), { once: true })
      ws.addEventListener("error", () => reject(new Error(`cannot open ${url}`)), { once: true })
    })

  /** Waits for the first frame (seen or future) matching `predicate`. */
  async waitFor(predicate: (frame: Frame) => boolean, timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs
    while (true) {
      const found = this.frames.find(predicate)
      if (found !== undefined) return found
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error(`socket closed while waiting; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`)
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`timed out waiting for a frame; frames: ${JSON.stringify(this.frames).slice(0, 2000)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  challenge = () => this.waitFor((frame) => frame.type === "event" && frame.event === "connect.challenge")

  sendRaw(data: string | Uint8Array): void {
    this.ws.send(data)
  }

  /** Sends a request and resolves with its first response. */
  async request(method: string, params?: unknown, id = `r${++this.counter}`): Promise<Frame> {
    this.ws.send(JSON.stringify({ type: "req", id, method, ...(params === undefined ? {} : { params }) }))
    return this.waitFor((frame) => frame.type === "res" && frame.id === id)
  }

  /** Every response to one request id (the `agent` method answers twice). */
  responses = (id: string): ReadonlyArray<Frame> => this.frames.filter((frame) => frame.type === "res" && frame.id === id)

  close(): Promise<Closed> {
    this.ws.close()
    return this.closed
  }
}

export const connectParams = (token: string | undefined, overrides: Record<string, unknown> = {}) => ({
  minProtocol: 4,
  maxProtocol: 4,
  client: { id: "cli", version: "test", platform: "linux", mode: "cli" },
  role: "operator",
  scopes: ["operator.admin"],
  ...(token === undefined ? {} : { auth: { token } }),
  ...overrides
})

/** Opens, waits for the challenge, connects; returns the client and the hello-ok response. */
export const connect = async (url: string, token: string, overrides: Record<string, unknown> = {}, options: { readonly headers?: Record<string, string> } = {}) => {
  const client = await WsClient.open(url, options)
  await client.challenge()
  const hello = await client.request("connect", connectParams(token, overrides), "connect-1")
  return { client, hello }
}

export interface Device {
  readonly id: string
  readonly publicKey: string
  readonly privateKey: KeyObject
}

/** An Ed25519 device identity, as the OpenClaw CLI keeps in identity/device.json. */
export const makeDevice = (): Device => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519")
  const raw = publicKey.export({ format: "der", type: "spki" }).subarray(12)
  return { id: createHash("sha256").update(raw).digest("hex"), publicKey: raw.toString("base64url"), privateKey }
}

/** connect.params.device signed over OpenClaw's v3 payload. */
export const signDevice = (device: Device, options: { readonly nonce: string; readonly token: string; readonly scopes: ReadonlyArray<string>; readonly signedAt?: number; readonly role?: string; readonly clientId?: string; readonly mode?: string; readonly platform?: string }) => {
  const signedAt = options.signedAt ?? Date.now()
  const payload = ["v3", device.id, options.clientId ?? "cli", options.mode ?? "cli", options.role ?? "operator", options.scopes.join(","), String(signedAt), options.token, options.nonce, options.platform ?? "linux", ""].join("|")
  return { id: device.id, publicKey: device.publicKey, signature: sign(null, Buffer.from(payload), device.privateKey).toString("base64url"), signedAt, nonce: options.nonce }
}

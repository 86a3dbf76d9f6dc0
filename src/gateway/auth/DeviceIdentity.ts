/**
 * OpenClaw's device identity, byte for byte: an Ed25519 key whose id is the
 * hex SHA-256 of the raw 32-byte public key, and a signature over a
 * pipe-joined payload (`packages/gateway-client/src/device-auth.ts`):
 *
 *   v3|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce|platform|deviceFamily
 *   v2|deviceId|clientId|clientMode|role|scopesCsv|signedAtMs|token|nonce
 *
 * `platform` and `deviceFamily` are trimmed and ASCII-lower-cased; `token` is
 * whatever the client sent as its auth token, or "". The server tries v3 first.
 */
import { createHash, createPublicKey, verify } from "node:crypto"

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw key follows. */
const ED25519_SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex")
const RAW_KEY_LENGTH = 32
/** OpenClaw's caps on the wire fields (`primitives.ts`). */
export const MAX_PUBLIC_KEY_LENGTH = 1024
export const MAX_SIGNATURE_LENGTH = 256
/** OpenClaw 2026.9's `DEVICE_SIGNATURE_SKEW_MS`. */
export const SIGNATURE_SKEW_MS = 120_000

export interface PayloadFields {
  readonly deviceId: string
  readonly clientId: string
  readonly clientMode: string
  readonly role: string
  readonly scopes: ReadonlyArray<string>
  readonly signedAtMs: number
  readonly token?: string | null | undefined
  readonly nonce: string
}

/** Only ASCII upper-case letters are folded, as OpenClaw does (no locale rules). */
const normalizeMetadata = (value: string | undefined): string =>
  value === undefined ? "" : value.trim().replace(/[A-Z]/g, (char) => String.fromCharCode(char.charCodeAt(0) + 32))

export const buildPayloadV2 = (fields: PayloadFields): string =>
  ["v2", fields.deviceId, fields.clientId, fields.clientMode, fields.role, fields.scopes.join(","), String(fields.signedAtMs), fields.token ?? "", fields.nonce].join("|")

export const buildPayloadV3 = (fields: PayloadFields & { readonly platform?: string | undefined; readonly deviceFamily?: string | undefined }): string =>
  [
    "v3",
    fields.deviceId,
    fields.clientId,
    fields.clientMode,
    fields.role,
    fields.scopes.join(","),
    String(fields.signedAtMs),
    fields.token ?? "",
    fields.nonce,
    normalizeMetadata(fields.platform),
    normalizeMetadata(fields.deviceFamily)
  ].join("|")

/** base64url with or without padding, or standard base64 (OpenClaw decodes permissively). */
const decodeBase64Url = (input: string): Buffer | undefined => {
  if (input.length === 0 || input.length > 4096 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(input)) return undefined
  return Buffer.from(input.replaceAll("-", "+").replaceAll("_", "/"), "base64")
}

/** The raw 32-byte key from base64url/base64 or a PEM `PUBLIC KEY`; undefined when it is not an Ed25519 key. */
export const rawPublicKey = (publicKey: string): Buffer | undefined => {
  if (publicKey.length === 0 || publicKey.length > MAX_PUBLIC_KEY_LENGTH) return undefined
  try {
    if (publicKey.includes("BEGIN")) {
      const key = createPublicKey(publicKey)
      if (key.asymmetricKeyType !== "ed25519") return undefined
      const der = key.export({ type: "spki", format: "der" })
      if (der.length !== ED25519_SPKI_PREFIX.length + RAW_KEY_LENGTH || !der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) return undefined
      return Buffer.from(der.subarray(ED25519_SPKI_PREFIX.length))
    }
    const raw = decodeBase64Url(publicKey.trim())
    return raw !== undefined && raw.length === RAW_KEY_LENGTH ? raw : undefined
  } catch {
    return undefined
  }
}

/** Canonical form kept in the pairing store: base64url of the raw key. */
export const normalizePublicKey = (publicKey: string): string | undefined => rawPublicKey(publicKey)?.toString("base64url")

/** `deriveDeviceIdFromPublicKey`: hex SHA-256 of the raw key. */
export const deriveDeviceId = (publicKey: string): string | undefined => {
  const raw = rawPublicKey(publicKey)
  return raw === undefined ? undefined : createHash("sha256").update(raw).digest("hex")
}

/** True when `signature` (base64url) is a valid Ed25519 signature of the UTF-8 `payload` under the raw key. */
export const verifySignature = (raw: Buffer, payload: string, signature: string): boolean => {
  if (signature.length > MAX_SIGNATURE_LENGTH) return false
  const bytes = decodeBase64Url(signature)
  if (bytes === undefined) return false
  try {
    const key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: "der", type: "spki" })
    return verify(null, Buffer.from(payload, "utf8"), key, bytes)
  } catch {
    return false
  }
}

/**
 * The duration and size spellings of OpenClaw's config: `"30m"`, `"90s"`,
 * `"7d"`; `"500mb"`, `"10gb"` or a plain number of bytes. The schema checks
 * the spelling; these turn a checked value into milliseconds or bytes.
 */

export const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/
export const BYTE_SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb)?$/i

const MS_PER_UNIT: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const BYTES_PER_UNIT: Readonly<Record<string, number>> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3, tb: 1024 ** 4 }

/** Milliseconds of a duration like `"30d"`; undefined when it is not one. */
export const durationMs = (text: string): number | undefined => {
  const match = DURATION_PATTERN.exec(text.trim())
  if (match === null) return undefined
  return Math.round(Number(match[1]) * (MS_PER_UNIT[match[2] ?? ""] ?? Number.NaN))
}

/** Bytes of a size like `"500mb"` (binary units) or a number; undefined when it is not one. */
export const byteSize = (value: string | number): number | undefined => {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined
  const match = BYTE_SIZE_PATTERN.exec(value.trim())
  if (match === null) return undefined
  return Math.floor(Number(match[1]) * (BYTES_PER_UNIT[(match[2] ?? "b").toLowerCase()] ?? Number.NaN))
}

/** `"3.2 MiB"`, for logs and reports. */
export const formatBytes = (bytes: number): string => {
  if (bytes < 1024) return `${bytes} B`
  const units = ["KiB", "MiB", "GiB", "TiB"]
  let value = bytes / 1024
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`
}

import { constants, deflateRawSync } from "node:zlib"

/**
 * Writes small, valid PDFs for tests: one page per entry of `pages`, each
 * line of a page in Helvetica, with a correct cross-reference table.
 */
const escape = (text: string) => text.replace(/[()\\]/g, "\\$&")

export const makePdf = (pages: ReadonlyArray<ReadonlyArray<string>>): Buffer => {
  const pageIds = pages.map((_, i) => 4 + i * 2)
  const objects: Array<string> = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    `<< /Type /Pages /Kids [${pageIds.map((id) => `${id} 0 R`).join(" ")}] /Count ${pages.length} >>`,
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
  ]
  pages.forEach((lines, i) => {
    const stream = `BT /F1 12 Tf 72 720 Td ${lines.map((line, j) => `${j > 0 ? "0 -16 Td " : ""}(${escape(line)}) Tj`).join(" ")} ET`
    objects.push(`<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${pageIds[i]! + 1} 0 R /Resources << /Font << /F1 3 0 R >> >> >>`)
    objects.push(`<< /Length ${Buffer.byteLength(stream, "latin1")} >>\nstream\n${stream}\nendstream`)
  })
  let out = "%PDF-1.4\n"
  const offsets: Array<number> = []
  objects.forEach((object, i) => {
    offsets.push(Buffer.byteLength(out, "latin1"))
    out += `${i + 1} 0 obj\n${object}\nendobj\n`
  })
  const xref = Buffer.byteLength(out, "latin1")
  out += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("")}`
  out += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`
  return Buffer.from(out, "latin1")
}

/**
 * A one-page PDF whose content stream (FlateDecode) inflates to `prefix`,
 * then `unit` repeated to about `megabytes` MB, then `suffix`: a few
 * kilobytes on the wire for as much as asked once inflated, for tests of the
 * reader's memory and time limits. Each part is compressed once and its
 * fully flushed blocks repeated (valid deflate data); PDF.js does not check
 * the Adler-32 trailer, left zero.
 */
export const makeInflatingPdf = (options: { readonly unit: string; readonly megabytes: number; readonly prefix?: string; readonly suffix?: string }): Buffer => {
  const flushed = (text: string) => deflateRawSync(Buffer.from(text, "latin1"), { level: 9, finishFlush: constants.Z_FULL_FLUSH })
  const block = flushed(options.unit.repeat(Math.max(1, Math.floor(1024 * 1024 / options.unit.length))))
  const data = Buffer.concat([
    Buffer.from([0x78, 0xda]),
    flushed(options.prefix ?? ""),
    ...Array.from({ length: options.megabytes }, () => block),
    flushed(options.suffix ?? ""),
    // A final, empty fixed-Huffman block, then the (unchecked) Adler-32.
    Buffer.from([0x03, 0x00, 0, 0, 0, 0])
  ])
  const objects = [
    "<< /Type /Catalog /Pages 2 0 R >>",
    "<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
    "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R /Resources << /Font << /F1 3 0 R >> >> >>"
  ].map((object) => Buffer.from(object, "latin1"))
  objects.push(Buffer.concat([Buffer.from(`<< /Filter /FlateDecode /Length ${data.length} >>\nstream\n`, "latin1"), data, Buffer.from("\nendstream", "latin1")]))
  const parts = [Buffer.from("%PDF-1.4\n", "latin1")]
  const offsets: Array<number> = []
  let length = parts[0]!.length
  objects.forEach((object, i) => {
    const part = Buffer.concat([Buffer.from(`${i + 1} 0 obj\n`, "latin1"), object, Buffer.from("\nendobj\n", "latin1")])
    offsets.push(length)
    parts.push(part)
    length += part.length
  })
  parts.push(Buffer.from(
    `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n${offsets.map((offset) => `${String(offset).padStart(10, "0")} 00000 n \n`).join("")}` +
      `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${length}\n%%EOF\n`,
    "latin1"
  ))
  return Buffer.concat(parts)
}

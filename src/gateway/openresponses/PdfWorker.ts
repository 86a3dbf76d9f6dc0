/**
 * The PDF worker: a worker thread that reads PDFs with PDF.js (through
 * unpdf), so a large or hostile PDF costs this thread's time and memory, not
 * the gateway's event loop. Built as its own entry (dist/pdf-worker.js);
 * PdfText.ts starts one per PDF and terminates it when it is done or late.
 */
import { NodeRuntime, NodeWorkerRunner } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { RpcServer } from "effect/rpc"
import { PdfRpcs, PdfUnreadable } from "./PdfRpcs.ts"

interface PdfPage {
  readonly getTextContent: () => Promise<{ readonly items: ReadonlyArray<object> }>
}

/** The text of the first `maxPages` pages: a line per text run that ends one, pages apart by a blank line. */
const readText = async (bytes: Uint8Array, maxPages: number): Promise<{ readonly text: string; readonly pages: number }> => {
  const { getDocumentProxy } = await import("unpdf")
  const document = await getDocumentProxy(bytes, { verbosity: 0, useSystemFonts: false, disableFontFace: true })
  try {
    const pages: Array<string> = []
    for (let number = 1; number <= Math.min(document.numPages, maxPages); number++) {
      const page: PdfPage = await document.getPage(number)
      const { items } = await page.getTextContent()
      pages.push(items.map((item) => "str" in item && typeof item.str === "string" ? item.str + ("hasEOL" in item && item.hasEOL === true ? "\n" : "") : "").join(""))
    }
    return { text: pages.map((page) => page.trim()).filter((page) => page !== "").join("\n\n"), pages: document.numPages }
  } finally {
    await document.loadingTask.destroy()
  }
}

const handlers = PdfRpcs.toLayer({
  ExtractText: ({ bytes, maxPages }) =>
    Effect.tryPromise({
      try: () => readText(bytes, maxPages),
      catch: (error) => new PdfUnreadable({ message: error instanceof Error ? error.message : String(error) })
    })
})

RpcServer.layer(PdfRpcs).pipe(
  Layer.provide(handlers),
  Layer.provide(RpcServer.layerProtocolWorkerRunner),
  Layer.provide(NodeWorkerRunner.layer),
  Layer.launch,
  NodeRuntime.runMain
)

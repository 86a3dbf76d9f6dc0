/**
 * What the PDF worker (PdfWorker.ts) answers: the text of a PDF's first pages.
 * Schemas only, shared by the worker and the gateway (PdfText.ts).
 */
import { Schema } from "effect"
import { Rpc, RpcGroup } from "effect/rpc"

/** The bytes are not a PDF PDF.js can read; `message` is PDF.js's reason. */
export class PdfUnreadable extends Schema.TaggedError<PdfUnreadable>()("PdfUnreadable", {
  message: Schema.String
}) {}

export class PdfRpcs extends RpcGroup.make(
  Rpc.make("ExtractText", {
    payload: { bytes: Schema.Uint8Array, maxPages: Schema.Int.check(Schema.isGreaterThan(0)) },
    success: Schema.Struct({ text: Schema.String, pages: Schema.Int }),
    error: PdfUnreadable
  })
) {}

/** A request body sent in `pieces` chunks without a Content-Length (chunked transfer), for the body-limit tests. */
export const chunked = (text: string, pieces: number): ReadableStream<Uint8Array> => {
  const bytes = new TextEncoder().encode(text)
  const size = Math.ceil(bytes.length / pieces)
  let offset = 0
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (offset >= bytes.length) return controller.close()
      controller.enqueue(bytes.slice(offset, offset + size))
      offset += size
    }
  })
}

// The baseline for bench/startup.ts: a bare node:http server answering
// GET /health (and /ready) the way the gateway does, started the same way (--port N).
import { createServer } from "node:http"

const flag = process.argv.indexOf("--port")
const port = flag >= 0 ? Number(process.argv[flag + 1]) : Number(process.env.BEAMCLAW_PORT ?? 18789)

const server = createServer((req, res) => {
  // A bare server is ready as soon as it is live.
  if (req.method === "GET" && (req.url === "/health" || req.url === "/ready")) {
    const body = JSON.stringify({ ok: true, status: "live" })
    res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store", "content-length": Buffer.byteLength(body) })
    res.end(body)
    return
  }
  res.writeHead(404)
  res.end()
})
server.listen(port, "127.0.0.1")
const stop = () => server.close(() => process.exit(0))
process.on("SIGTERM", stop)
process.on("SIGINT", stop)

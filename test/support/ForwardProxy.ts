/**
 * A forward HTTP proxy on loopback, as HTTP(S)_PROXY points at: CONNECT
 * tunnels (how https targets, and undici's http targets by default, go
 * through), and absolute-form requests for plain http when `plainHttp` is
 * "forward" ("refuse" answers them 405, to prove a client tunnelled).
 * `seen` lists each request's target in order.
 */
import * as http from "node:http"
import * as net from "node:net"

export const makeForwardProxy = (plainHttp: "forward" | "refuse") => {
  const seen: Array<string> = []
  const proxy = http.createServer((request, response) => {
    seen.push(request.url ?? "")
    if (plainHttp === "refuse") {
      response.writeHead(405)
      response.end()
      return
    }
    const upstream = http.request(request.url ?? "", { method: request.method, headers: request.headers }, (answer) => {
      response.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(response)
    })
    upstream.on("error", () => response.destroy())
    request.pipe(upstream)
  })
  proxy.on("connect", (request: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push(request.url ?? "")
    const [host = "", port = ""] = (request.url ?? "").split(":")
    const upstream = net.connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n")
      upstream.write(head)
      upstream.pipe(socket)
      socket.pipe(upstream)
    })
    upstream.on("error", () => socket.destroy())
    socket.on("error", () => upstream.destroy())
  })
  return { proxy, seen }
}

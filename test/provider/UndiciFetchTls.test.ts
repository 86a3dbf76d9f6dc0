import { execFile } from "node:child_process"
import * as fs from "node:fs/promises"
import * as http2 from "node:http2"
import type { AddressInfo } from "node:net"
import * as net from "node:net"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import { promisify } from "node:util"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { makeForwardProxy } from "../support/ForwardProxy.ts"

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, "../..")
const moduleUrl = pathToFileURL(path.join(root, "src/provider/UndiciFetch.ts")).href

/** Answers with the HTTP version the request came in on; it offers h2 by ALPN, as the API's servers do. */
const startServer = (key: Buffer, cert: Buffer) => {
  const server = http2.createSecureServer({ key, cert, allowHTTP1: true }, (request, response) => {
    request.resume()
    request.on("end", () => {
      response.writeHead(200, { "content-type": "text/event-stream" })
      response.end(`version=${request.httpVersion}`)
    })
  })
  return server
}

const listen = async (server: net.Server): Promise<number> => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return (server.address() as AddressInfo).port
}

/**
 * In a child process: NODE_EXTRA_CA_CERTS is read when Node starts, and the
 * proxy setting when the fetch is made. Prints the answer or the error's code.
 */
const fetchInChild = async (url: string, env: Record<string, string>) => {
  const script = `
    const { importUndici, makeFetch } = await import(${JSON.stringify(moduleUrl)})
    const ours = makeFetch(await importUndici())
    const attempt = async (f) => {
      try {
        const response = await f(${JSON.stringify(url)}, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })
        return await response.text()
      } catch (error) {
        return "error " + (error.code ?? error.cause?.code ?? error.message)
      }
    }
    console.log(JSON.stringify({ ours: await attempt(ours), fetch: await attempt(fetch) }))
  `
  const cleanEnv: NodeJS.ProcessEnv = { ...process.env }
  for (const name of ["NODE_EXTRA_CA_CERTS", "NODE_USE_ENV_PROXY", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy"]) {
    delete cleanEnv[name]
  }
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: root, env: { ...cleanEnv, ...env } })
  return JSON.parse(stdout) as { ours: string; fetch: string }
}

describe("UndiciFetch over TLS", () => {
  let dir = ""
  let server: http2.Http2SecureServer | undefined
  let url = ""
  const { proxy, seen: tunnels } = makeForwardProxy("refuse")
  let proxyUrl = ""

  beforeAll(async () => {
    // A self-signed certificate for 127.0.0.1, test-only (made once with the openssl CLI, valid for 100 years).
    dir = path.resolve(import.meta.dirname, "../support/tls")
    const keyFile = path.join(dir, "127.0.0.1-key.pem")
    const certFile = path.join(dir, "127.0.0.1-cert.pem")
    server = startServer(await fs.readFile(keyFile), await fs.readFile(certFile))
    url = `https://127.0.0.1:${await listen(server)}/v1/messages`
    proxyUrl = `http://127.0.0.1:${await listen(proxy)}`
  })
  afterAll(async () => {
    await new Promise<void>((resolve) => server ? server.close(() => resolve()) : resolve())
    proxy.closeAllConnections()
    await new Promise<void>((resolve) => proxy.close(() => resolve()))
  })

  it("trusts what Node trusts: a CA from NODE_EXTRA_CA_CERTS, and refuses an unknown one as fetch does", async () => {
    const untrusted = await fetchInChild(url, {})
    expect(untrusted).toEqual({ ours: "error DEPTH_ZERO_SELF_SIGNED_CERT", fetch: "error DEPTH_ZERO_SELF_SIGNED_CERT" })
    const trusted = await fetchInChild(url, { NODE_EXTRA_CA_CERTS: path.join(dir, "127.0.0.1-cert.pem") })
    expect(trusted.ours).toMatch(/^version=/)
  }, 15_000)

  it("speaks HTTP/1.1 as Node's fetch does, even to a server that offers HTTP/2", async () => {
    const answers = await fetchInChild(url, { NODE_EXTRA_CA_CERTS: path.join(dir, "127.0.0.1-cert.pem") })
    expect(answers).toEqual({ ours: "version=1.1", fetch: "version=1.1" })
  }, 15_000)

  it("speaks HTTP/1.1 through an HTTPS_PROXY tunnel too", async () => {
    const before = tunnels.length
    const answers = await fetchInChild(url, {
      NODE_EXTRA_CA_CERTS: path.join(dir, "127.0.0.1-cert.pem"),
      NODE_USE_ENV_PROXY: "1",
      HTTPS_PROXY: proxyUrl
    })
    expect(answers.ours).toBe("version=1.1")
    // Both went through the tunnel (Node's fetch honours NODE_USE_ENV_PROXY as well).
    expect(tunnels.length - before).toBeGreaterThanOrEqual(1)
  }, 15_000)
})

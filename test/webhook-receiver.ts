import {type IncomingMessage, type Server, type ServerResponse, createServer} from 'node:http'
import type {AddressInfo, Socket} from 'node:net'

import {crcResponseToken, verifyStandardWebhooks, verifyTwitterSignature} from '../src/core/webhooks/signing.js'

/**
 * A real webhook receiver on 127.0.0.1 (random port) for tests: it answers Twitter's CRC check,
 * verifies both signatures of every POST, and records what arrived in arrival order. What it answers
 * is up to the test's handler (default 200).
 */

export interface ReceivedRequest {
  /** 1-based arrival number among POSTs. */
  n: number
  body: Buffer
  headers: IncomingMessage['headers']
  /** performance.now() when the request's headers arrived. */
  arrivedAt: number
  /** Both the Twitter and the Standard Webhooks signature verified. */
  signed: boolean
  /** Requests being handled at the moment this one arrived (itself included). */
  concurrent: number
}

export type Handler = (request: ReceivedRequest, res: ServerResponse, req: IncomingMessage) => unknown

export interface Receiver {
  url: string
  port: number
  server: Server
  requests: ReceivedRequest[]
  /** Bodies of the requests answered 2xx, in the order they were answered. */
  delivered: Buffer[]
  /** Highest number of requests handled at once. */
  maxConcurrent: number
  /** CRC checks answered. */
  crcChecks: number
  /** Stops listening and cuts every open connection. */
  close(): Promise<void>
}

export interface ReceiverOptions {
  secret: string
  handler?: Handler
  /** Answer CRC checks with this secret instead (to simulate a wrong one). */
  crcSecret?: string
}

export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const sockets = new Set<Socket>()
  let active = 0
  const receiver: Receiver = {
    url: '',
    port: 0,
    server: undefined as unknown as Server,
    requests: [],
    delivered: [],
    maxConcurrent: 0,
    crcChecks: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => receiver.server.close(() => resolve()))
    },
  }
  const server = createServer((req, res) => {
    if (req.method === 'GET') {
      const token = new URL(req.url ?? '/', 'http://x').searchParams.get('crc_token')
      receiver.crcChecks++
      res.writeHead(token ? 200 : 400, {'content-type': 'application/json'})
      res.end(
        token ? JSON.stringify({response_token: crcResponseToken(options.crcSecret ?? options.secret, token)}) : '{}',
      )
      return
    }
    const arrivedAt = performance.now()
    active++
    receiver.maxConcurrent = Math.max(receiver.maxConcurrent, active)
    const concurrent = active
    let settled = false
    const done = () => {
      if (!settled) {
        settled = true
        active--
      }
    }
    res.on('close', done)
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('error', () => {})
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const signed =
        verifyTwitterSignature(
          options.secret,
          body,
          req.headers['x-twitter-webhooks-signature'] as string | undefined,
        ) && verifyStandardWebhooks(options.secret, body, req.headers)
      const request: ReceivedRequest = {
        n: receiver.requests.length + 1,
        body,
        headers: req.headers,
        arrivedAt,
        signed,
        concurrent,
      }
      receiver.requests.push(request)
      res.on('finish', () => {
        if (res.statusCode >= 200 && res.statusCode < 300) receiver.delivered.push(body)
      })
      const handler = options.handler ?? ((_request, response) => void response.writeHead(200).end('ok'))
      Promise.resolve(handler(request, res, req)).catch(() => res.destroy())
    })
  })
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  receiver.server = server
  receiver.port = port
  receiver.url = `http://127.0.0.1:${port}/webhook`
  return receiver
}

/** A port on 127.0.0.1 with nothing listening (a server opened and closed again). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()))
  const port = (server.address() as AddressInfo).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * A webhook endpoint for the demo: answers Twitter's CRC challenge, verifies both signatures on
 * every POST, and reports what it received when it gets SIGTERM.
 *   node --import tsx scripts/demo-receiver.ts <url-file> <secret>
 * It listens on a free port of 127.0.0.1 and writes its webhook URL to <url-file>.
 */
import {writeFileSync} from 'node:fs'
import {createServer} from 'node:http'

import {crcResponseToken, verifyStandardWebhooks, verifyTwitterSignature} from '../src/core/webhooks/signing.js'

const urlFile = process.argv[2] ?? '/tmp/replayctl-demo-receiver.url'
const secret = process.argv[3] ?? 'demo-secret'
let events = 0
let badSignatures = 0
let completion = ''

const server = createServer((request, response) => {
  const url = new URL(request.url ?? '/', 'http://127.0.0.1')
  if (request.method === 'GET' && url.searchParams.has('crc_token')) {
    response
      .writeHead(200, {'content-type': 'application/json'})
      .end(JSON.stringify({response_token: crcResponseToken(secret, url.searchParams.get('crc_token')!)}))
    return
  }
  const chunks: Buffer[] = []
  request.on('data', (chunk: Buffer) => chunks.push(chunk))
  request.on('end', () => {
    const body = Buffer.concat(chunks)
    const twitterOk = verifyTwitterSignature(
      secret,
      body,
      request.headers['x-twitter-webhooks-signature'] as string | undefined,
    )
    const standardOk = verifyStandardWebhooks(secret, body, request.headers as Record<string, string>)
    if (!twitterOk || !standardOk) badSignatures++
    if (body.includes('"replay_job_status"')) completion = body.toString()
    else events++
    response.writeHead(200).end()
  })
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address() as {port: number}
  writeFileSync(urlFile, `http://127.0.0.1:${address.port}/webhook`)
})
process.on('SIGTERM', () => {
  process.stdout.write(
    `${JSON.stringify({events, badSignatures, completion: completion ? JSON.parse(completion) : null})}\n`,
  )
  server.close(() => process.exit(0))
})

import {randomUUID} from 'node:crypto'

import Fastify, {LogController, type FastifyInstance, type FastifyReply} from 'fastify'
import {Counter, Histogram, Registry, collectDefaultMetrics} from 'prom-client'

import {UserError} from '../shared/errors.js'

/**
 * What every long-running HTTP front of replayctl needs, whatever it serves (the Replay API, the
 * HTTP-to-Kafka ingest): a fastify instance that logs JSON lines, GET /healthz, Prometheus GET
 * /metrics, bounds on what a client may send (body, request line + headers, path parameters) and
 * on how slowly (headers, whole request, idle connection: slow-loris clients are cut), and the
 * one lifecycle every server runs (`serve`): listen, serve until SIGTERM or SIGINT, then drain and
 * run the server's own cleanup (pools, producers).
 *
 * Routes and their error shapes belong to each server; this module only answers what no route
 * matched and what failed before a route ran, through the `errorBody` the server passes in.
 */

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A route any client may call: a server's auth hook lets it through (health, metrics). */
    public?: boolean
  }
}

export interface HttpServerOptions {
  /** Short name: the `service` field of log lines and the prefix of metric names (replayctl_<name>_...). */
  name: string
  /** Largest request body accepted, bytes (413 beyond). Default 64 KiB. */
  bodyLimit?: number
  /** Largest request line + headers, bytes (431 beyond): bounds the query string. Default 16 KiB. */
  maxHeaderBytes?: number
  /** All headers must arrive within this (408 and closed). Default 10 s. */
  headersTimeoutMs?: number
  /** The whole request, body included, must arrive within this (408 and closed). Default 30 s. */
  requestTimeoutMs?: number
  /** A connection silent for this long is closed. Default 30 s. */
  idleTimeoutMs?: number
  /** An idle keep-alive connection is closed after this. Default 5 s. */
  keepAliveTimeoutMs?: number
  /** Longest path parameter; longer ones match no route (404). Default 128. */
  maxParamLength?: number
  /**
   * Addresses or CIDRs of reverse proxies whose X-Forwarded-For names the client (for the
   * per-address throttle of failed authentications). Default none: the header is ignored, so a
   * client cannot choose the address it is counted under.
   */
  trustProxy?: string[]
  /** Deeper checks for /healthz (database, brokers); throwing answers 503. */
  health?: () => Promise<Record<string, unknown>>
  /** How long in-flight requests may finish after a stop before their connections are cut. Default 10 s. */
  graceMs?: number
  /**
   * The server's own resources, released once its last connection has closed (a pool to end, a
   * producer to flush): after the drain, so requests under way could still use them.
   */
  cleanup?: () => Promise<void>
  /** Where JSON log lines go. Default stderr. */
  logStream?: NodeJS.WritableStream
  logLevel?: 'debug' | 'info' | 'warn' | 'error' | 'silent'
  /**
   * A line when a request arrives and one when it is answered (default true). A high-rate server
   * (ingest) turns them off: at thousands of requests a second they cost more than the request.
   */
  logRequests?: boolean
  /**
   * The body of an error answer in the server's own dialect (e.g. Twitter's {"errors": [...]}).
   * `kind` says what went wrong before any route ran; `requestId` names the request in the logs.
   */
  errorBody: (kind: FrameworkFailure, message: string, requestId: string) => unknown
  /**
   * The answer to an error a route threw (a UserError of the core, say); undefined = a bug (500).
   * `logDetail`: the answer withholds the error's message, so it is logged with the request id.
   */
  translateError?: (error: Error, requestId: string) => {status: number; body: unknown; logDetail?: boolean} | undefined
}

/**
 * Failures found before or around a route: no such route; body too large, not parseable or of an
 * unsupported type; a schema-validated query, body or path parameter that is missing or malformed;
 * and a bug.
 */
export type FrameworkFailure =
  | 'not-found'
  | 'body-too-large'
  | 'bad-body'
  | 'unsupported-media-type'
  | 'missing-parameter'
  | 'malformed-parameter'
  | 'internal'

export interface HttpServer {
  app: FastifyInstance
  /** The registry /metrics serves; a server may add its own metrics to it. */
  registry: Registry
  /**
   * Listens on host:port (`listening`: more fields for the log line that says so) and serves until
   * SIGTERM, SIGINT or stop(). Then drains: stops accepting, closes idle keep-alive connections,
   * lets the requests under way finish (their answers close their connections), cuts what is left
   * after graceMs (or at a second signal), and runs `cleanup`. Resolves with the address it served
   * on; rejects when it cannot listen, or with the failure given to stop(), after the drain.
   */
  serve(host: string, port: number, listening?: Record<string, unknown>): Promise<{url: string}>
  /** Stops the server as SIGTERM does; a failure (the server cannot go on) is what serve() rejects with. */
  stop(failure?: Error): void
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']

/** A request's path without its query string (which may carry tokens), bounded for log lines. */
function pathOf(url: string): string {
  const query = url.indexOf('?')
  return (query === -1 ? url : url.slice(0, query)).slice(0, 200)
}

export function createHttpServer(options: HttpServerOptions): HttpServer {
  const headersTimeoutMs = options.headersTimeoutMs ?? 10_000
  const requestTimeoutMs = Math.max(options.requestTimeoutMs ?? 30_000, headersTimeoutMs)
  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 64 * 1024,
    routerOptions: {maxParamLength: options.maxParamLength ?? 128},
    connectionTimeout: options.idleTimeoutMs ?? 30_000,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
    requestTimeout: requestTimeoutMs,
    // node:http's own guards; it checks the two timeouts every connectionsCheckingInterval.
    http: {
      maxHeaderSize: options.maxHeaderBytes ?? 16 * 1024,
      headersTimeout: headersTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, headersTimeoutMs),
    },
    // Idle keep-alive connections are closed at once on close(); busy ones finish their request.
    forceCloseConnections: 'idle',
    // The router's own refusals (a path parameter over maxParamLength: 414; a malformed URL: 400).
    frameworkErrors: (error, request, reply: FastifyReply) => {
      const status = (error as {statusCode?: number}).statusCode ?? 400
      const message =
        error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? `a path parameter is longer than ${options.maxParamLength ?? 128} characters`
          : 'the request URL is malformed'
      void reply.code(status).send(options.errorBody('malformed-parameter', message, request.id))
    },
    // Unknown body fields are refused (additionalProperties: false), not silently dropped.
    ajv: {customOptions: {removeAdditional: false}},
    return503OnClosing: true,
    // Every request gets a random id of ours (never a client's header: a log line cannot be made
    // to look like another request's), on its log lines and in its answer's x-request-id.
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    trustProxy: options.trustProxy?.length ? options.trustProxy : false,
    logController: new LogController({disableRequestLogging: options.logRequests === false}),
    logger: {
      level: options.logLevel ?? 'info',
      stream: options.logStream ?? process.stderr,
      base: {service: options.name},
      timestamp: () => `,"time":"${new Date().toISOString()}"`,
      // Method and path only: query strings and headers (tokens, secrets) are never logged.
      serializers: {
        req: (request: {method: string; url: string; ip?: string}) => ({
          method: request.method,
          path: pathOf(request.url),
          remoteAddress: request.ip,
        }),
        res: (reply: {statusCode: number}) => ({statusCode: reply.statusCode}),
      },
    },
  })

  const registry = new Registry()
  collectDefaultMetrics({register: registry, prefix: 'replayctl_'})
  const prefix = `replayctl_${options.name.replace(/[^a-zA-Z0-9_]/g, '_')}`
  const requests = new Counter({
    name: `${prefix}_http_requests_total`,
    help: 'HTTP requests answered, by route, method and status',
    labelNames: ['route', 'method', 'status'],
    registers: [registry],
  })
  const duration = new Histogram({
    name: `${prefix}_http_request_duration_seconds`,
    help: 'Time to answer an HTTP request, by route',
    labelNames: ['route', 'method'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  })
  app.addHook('onRequest', async (request, reply) => {
    void reply.header('x-request-id', request.id)
  })
  app.addHook('onResponse', async (request, reply) => {
    // The route pattern, not the URL: one series per route however many ids are asked for.
    const route = request.routeOptions.url ?? 'unmatched'
    requests.inc({route, method: request.method, status: String(reply.statusCode)})
    duration.observe({route, method: request.method}, reply.elapsedTime / 1000)
  })

  app.get('/healthz', {config: {public: true}}, async (_request, reply) => {
    try {
      const checks = options.health ? await options.health() : {}
      return {status: 'ok', ...checks}
    } catch (error) {
      return reply
        .code(503)
        .send({status: 'unavailable', error: error instanceof UserError ? error.message : 'health check failed'})
    }
  })
  app.get('/metrics', {config: {public: true}}, async (_request, reply) => {
    reply.header('content-type', registry.contentType)
    return registry.metrics()
  })

  app.setNotFoundHandler((request, reply) => {
    void reply
      .code(404)
      .send(options.errorBody('not-found', `no route ${request.method} ${pathOf(request.url)}`, request.id))
  })
  app.setErrorHandler(
    (
      error: Error & {statusCode?: number; code?: string; validation?: {keyword: string}[]; validationContext?: string},
      request,
      reply,
    ) => {
      const translated = options.translateError?.(error, request.id)
      if (translated) {
        if (translated.logDetail)
          request.log[translated.status >= 500 ? 'error' : 'info'](
            {code: error.code, detail: error.message},
            'answered without the detail',
          )
        return reply.code(translated.status).send(translated.body)
      }
      if (error.validation) {
        const missing = error.validation.some((item) => item.keyword === 'required')
        return reply
          .code(400)
          .send(options.errorBody(missing ? 'missing-parameter' : 'malformed-parameter', error.message, request.id))
      }
      const status = error.statusCode ?? 500
      if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
        return reply
          .code(413)
          .send(
            options.errorBody(
              'body-too-large',
              `the request body is larger than ${app.initialConfig.bodyLimit} bytes`,
              request.id,
            ),
          )
      if (error.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
        return reply
          .code(415)
          .send(options.errorBody('unsupported-media-type', 'send application/json or no body', request.id))
      if (status >= 400 && status < 500)
        return reply.code(status).send(options.errorBody('bad-body', error.message, request.id))
      request.log.error({err: error}, 'request failed')
      return reply.code(500).send(options.errorBody('internal', 'Internal error', request.id))
    },
  )

  let draining = false
  // A request under way when the drain starts is answered with Connection: close, so its keep-alive
  // connection closes after the answer instead of holding the exit up until keepAliveTimeout.
  // (Requests arriving on such a connection once draining get fastify's 503, also with close.)
  app.addHook('onSend', async (_request, reply) => {
    if (draining) void reply.header('connection', 'close')
  })

  // The executor runs at once: requestStop is the promise's resolve from here on.
  let requestStop: (failure: Error | undefined) => void = () => {}
  const stopRequested = new Promise<Error | undefined>((resolve) => (requestStop = resolve))
  const graceMs = options.graceMs ?? 10_000

  const listen = async (host: string, port: number): Promise<string> => {
    try {
      await app.listen({host, port})
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message
      throw new UserError(
        'INVALID_ARGUMENT',
        `cannot listen on ${host}:${port} (${code})`,
        'choose a free --port, or a --host of this machine',
      )
    }
    const address = app.server.address()
    const bound = typeof address === 'object' && address ? {host: address.address, port: address.port} : {host, port}
    return `http://${bound.host.includes(':') ? `[${bound.host}]` : bound.host}:${bound.port}`
  }

  const drain = async () => {
    draining = true
    app.log.info({graceMs}, 'stopping: no new connections, finishing requests under way')
    const cut = setTimeout(() => {
      app.log.warn({graceMs}, 'grace period over: cutting the remaining connections')
      app.server.closeAllConnections()
    }, graceMs)
    cut.unref()
    try {
      // Stops accepting, closes idle connections, resolves once the last connection has closed.
      await app.close()
    } finally {
      clearTimeout(cut)
    }
    app.log.info('http server closed')
    await options.cleanup?.()
    app.log.info('stopped')
  }

  return {
    app,
    registry,
    stop: (failure) => requestStop(failure),
    async serve(host, port, listening = {}) {
      const onSignal = (signal: NodeJS.Signals) => {
        if (!draining) {
          app.log.info({signal}, 'signal received')
          requestStop(undefined)
        } else {
          app.log.warn({signal}, 'signal received again: cutting the remaining connections')
          app.server.closeAllConnections()
        }
      }
      for (const signal of STOP_SIGNALS) process.on(signal, onSignal)
      try {
        let url: string
        try {
          url = await listen(host, port)
        } catch (error) {
          await app.close()
          await options.cleanup?.()
          throw error
        }
        app.log.info({address: url, ...listening}, 'listening')
        const failure = await stopRequested
        await drain()
        if (failure) throw failure
        return {url}
      } finally {
        for (const signal of STOP_SIGNALS) process.off(signal, onSignal)
      }
    },
  }
}

import {randomUUID} from 'node:crypto'

import Fastify, {LogController, type FastifyInstance, type FastifyReply} from 'fastify'
import {Counter, Histogram, Registry, collectDefaultMetrics} from 'prom-client'

import {UserError} from '../shared/errors.js'

/**
 * What every long-running HTTP front of replayctl needs, whatever it serves (the Replay API, the
 * HTTP-to-Kafka ingest): a fastify instance that logs JSON lines, GET /healthz, Prometheus GET
 * /metrics, bounds on what a client may send (body, request line + headers, path parameters) and
 * on how slowly (headers, whole request, idle connection: slow-loris clients are cut), and a
 * graceful close that stops accepting, lets in-flight requests finish, then runs the server's own
 * cleanup (pools, producers).
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
  /** Starts listening; resolves with the bound address. */
  listen(host: string, port: number): Promise<{host: string; port: number}>
  /**
   * Stops accepting, waits for in-flight requests (at most graceMs, then cuts them), runs the
   * onClose hooks. Safe to call more than once.
   */
  close(): Promise<void>
  /** Resolves once close() has finished. */
  closed: Promise<void>
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
          path: request.url.split('?')[0]!.slice(0, 200),
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
      .send(
        options.errorBody(
          'not-found',
          `no route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}`,
          request.id,
        ),
      )
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

  let closing: Promise<void> | undefined
  let resolveClosed!: () => void
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve))
  const graceMs = options.graceMs ?? 10_000

  return {
    app,
    registry,
    async listen(host, port) {
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
      return typeof address === 'object' && address ? {host: address.address, port: address.port} : {host, port}
    },
    close() {
      closing ??= (async () => {
        app.log.info('stopping: no new connections, finishing in-flight requests')
        const cut = setTimeout(() => {
          app.log.warn({graceMs}, 'grace period over: cutting the remaining connections')
          app.server.closeAllConnections()
        }, graceMs)
        cut.unref()
        try {
          await app.close()
        } finally {
          clearTimeout(cut)
          app.log.info('http server closed')
          resolveClosed()
        }
      })()
      return closing
    },
    closed,
  }
}

/** Closes the server on the first SIGTERM or SIGINT; resolves when it has closed. */
export function closeOnSignals(server: HttpServer, signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): Promise<void> {
  const onSignal = (signal: NodeJS.Signals) => {
    server.app.log.info({signal}, 'signal received')
    void server.close()
  }
  for (const signal of signals) process.once(signal, onSignal)
  return server.closed.finally(() => {
    for (const signal of signals) process.off(signal, onSignal)
  })
}

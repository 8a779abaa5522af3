import assert from 'node:assert/strict'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {describe, it} from 'node:test'

import {UserError} from '../src/core/shared/errors.js'
import {
  DEFAULT_BROKERS,
  DEFAULT_CONNECT_URL,
  localSettings,
  resolveApiTokens,
  resolveConnectUrl,
  resolveIngestTokens,
  resolveSettings,
} from '../src/core/shared/settings.js'

function configFile(content: object): string {
  const path = join(mkdtempSync(join(tmpdir(), 'replayctl-')), 'config.json')
  writeFileSync(path, JSON.stringify(content))
  return path
}

describe('settings precedence: flags > env > context > dev defaults', () => {
  const REPLAYCTL_CONFIG = configFile({
    currentContext: 'dc1',
    contexts: {
      dc1: {
        brokers: 'ctx:9092',
        mysqlUrl: 'mysql://ctx/db',
        librdkafka: {'security.protocol': 'ssl', 'socket.timeout.ms': 1000},
      },
      dc2: {brokers: 'dc2:9092'},
    },
  })

  it('uses the dev defaults with no config at all', () => {
    const settings = resolveSettings({}, {REPLAYCTL_CONFIG: '/nonexistent.json'})
    assert.equal(settings.brokers, DEFAULT_BROKERS)
    assert.deepEqual(settings.sources, {brokers: 'default', mysqlUrl: 'default'})
  })

  it('context beats defaults, env beats context, flags beat env', () => {
    assert.equal(resolveSettings({}, {REPLAYCTL_CONFIG}).brokers, 'ctx:9092')
    assert.equal(resolveSettings({}, {REPLAYCTL_CONFIG, REPLAYCTL_BROKERS: 'env:9092'}).brokers, 'env:9092')
    const settings = resolveSettings({brokers: 'flag:9092'}, {REPLAYCTL_CONFIG, REPLAYCTL_BROKERS: 'env:9092'})
    assert.equal(settings.brokers, 'flag:9092')
    assert.equal(settings.mysqlUrl, 'mysql://ctx/db')
    assert.deepEqual(settings.sources, {brokers: 'flag', mysqlUrl: 'context'})
  })

  it('--context and REPLAYCTL_CONTEXT choose a context other than the current one', () => {
    assert.equal(resolveSettings({context: 'dc2'}, {REPLAYCTL_CONFIG}).brokers, 'dc2:9092')
    assert.equal(resolveSettings({}, {REPLAYCTL_CONFIG, REPLAYCTL_CONTEXT: 'dc2'}).brokers, 'dc2:9092')
  })

  it('-X properties merge over the context librdkafka block', () => {
    const settings = resolveSettings(
      {librdkafka: ['security.protocol=sasl_ssl', 'sasl.password=a=b']},
      {REPLAYCTL_CONFIG},
    )
    assert.deepEqual(settings.librdkafka, {
      'security.protocol': 'sasl_ssl',
      'socket.timeout.ms': '1000',
      'sasl.password': 'a=b',
    })
  })

  it('explains malformed -X and unknown contexts', () => {
    assert.throws(
      () => resolveSettings({librdkafka: ['=x']}, {REPLAYCTL_CONFIG}),
      (error: unknown) => error instanceof UserError && error.code === 'INVALID_CONFIG',
    )
    assert.throws(
      () => resolveSettings({context: 'nope'}, {REPLAYCTL_CONFIG}),
      (error: unknown) =>
        error instanceof UserError && error.code === 'CONTEXT_NOT_FOUND' && /dc1, dc2/.test(error.line),
    )
  })
})

describe("Kafka Connect's URL: --url > REPLAYCTL_CONNECT_URL > the context's connectUrl > the dev worker", () => {
  const REPLAYCTL_CONFIG = configFile({
    currentContext: 'dc1',
    contexts: {dc1: {brokers: 'ctx:9092', connectUrl: 'http://connect-dc1:8083/'}, dc2: {brokers: 'dc2:9092'}},
  })

  it('takes the first source that has it, without a trailing slash', () => {
    const env = {REPLAYCTL_CONFIG}
    assert.deepEqual(resolveConnectUrl({}, env), {
      url: 'http://connect-dc1:8083',
      source: 'context',
      timeoutMs: 10_000,
    })
    assert.equal(resolveConnectUrl({context: 'dc2'}, env).url, DEFAULT_CONNECT_URL)
    assert.equal(resolveConnectUrl({}, {...env, REPLAYCTL_CONNECT_URL: 'http://env:8083'}).source, 'env')
    assert.equal(
      resolveConnectUrl({url: 'https://flag:8443'}, {...env, REPLAYCTL_CONNECT_URL: 'http://env:8083'}).url,
      'https://flag:8443',
    )
  })

  it('refuses what is not an http(s) URL, naming where it came from', () => {
    assert.throws(
      () => resolveConnectUrl({}, {REPLAYCTL_CONFIG, REPLAYCTL_CONNECT_URL: 'connect:8083'}),
      (error: unknown) =>
        error instanceof UserError &&
        /is not http or https|is not a URL/.test(error.message) &&
        error.message.includes('(env)'),
    )
  })
})

describe('private webhook targets: --allow-private-targets, else REPLAYCTL_ALLOW_PRIVATE_TARGETS=1', () => {
  const env = {REPLAYCTL_CONFIG: '/nonexistent.json'}
  it('are refused unless the flag or the variable allows them', () => {
    assert.equal(resolveSettings({}, env).allowPrivateTargets, false)
    assert.equal(resolveSettings({allowPrivateTargets: true}, env).allowPrivateTargets, true)
    assert.equal(resolveSettings({}, {...env, REPLAYCTL_ALLOW_PRIVATE_TARGETS: '1'}).allowPrivateTargets, true)
    assert.equal(resolveSettings({}, {...env, REPLAYCTL_ALLOW_PRIVATE_TARGETS: '0'}).allowPrivateTargets, false)
  })
})

describe("this machine's settings: the local stack, Apache Kafka's jars and the Java that runs them", () => {
  it('take REPLAYCTL_STATE, _CACHE, _KAFKA_HEAP, _CONNECT_HEAP, _KAFKA_LEADER_REBALANCE and JAVA_HOME when set', () => {
    const local = localSettings({
      REPLAYCTL_STATE: '/srv/state',
      REPLAYCTL_CACHE: '/srv/cache',
      JAVA_HOME: '/opt/jdk',
      REPLAYCTL_KAFKA_HEAP: '384m',
      REPLAYCTL_CONNECT_HEAP: '256m',
      REPLAYCTL_KAFKA_LEADER_REBALANCE: '0',
      REPLAYCTL_SECRET_KEY: 'a key',
      REPLAYCTL_MYSQL_URL: 'mysql://root@127.0.0.1:3306/other',
    })
    assert.deepEqual(local, {
      stateDir: '/srv/state',
      cacheDir: '/srv/cache',
      java: '/opt/jdk/bin/java',
      kafkaHeap: '384m',
      connectHeap: '256m',
      kafkaLeaderRebalance: false,
      localSecretKeyFile: null,
      mysqlUrlFromEnv: 'mysql://root@127.0.0.1:3306/other',
    })
  })

  it('else follow the XDG base directories, then the home directory', () => {
    assert.deepEqual(
      localSettings({XDG_STATE_HOME: '/x/state', XDG_CACHE_HOME: '/x/cache', XDG_CONFIG_HOME: '/x/conf'}),
      {
        stateDir: '/x/state/replayctl/dev',
        cacheDir: '/x/cache/replayctl',
        java: 'java',
        kafkaHeap: '1g',
        connectHeap: '384m',
        kafkaLeaderRebalance: true,
        localSecretKeyFile: '/x/conf/replayctl/secret.key',
        mysqlUrlFromEnv: undefined,
      },
    )
    const home = localSettings({})
    assert.ok(home.stateDir.endsWith('/.local/state/replayctl/dev') && home.cacheDir.endsWith('/.cache/replayctl'))
  })
})

describe("the secrets key: REPLAYCTL_SECRET_KEY, else the context's secretKeyFile, else the default file", () => {
  const REPLAYCTL_CONFIG = configFile({
    currentContext: 'dc1',
    contexts: {
      dc1: {secretKeyFile: 'keys/secret.key'},
      dc2: {secretKeyFile: '/etc/replayctl/secret.key'},
      dc3: {},
      bad: {secretKeyFile: 7},
    },
  })

  it('takes the first source that has it; a relative file is beside the config file', () => {
    assert.deepEqual(resolveSettings({}, {REPLAYCTL_CONFIG, REPLAYCTL_SECRET_KEY: 'a2V5'}).secretKey, {
      source: 'env',
      variable: 'REPLAYCTL_SECRET_KEY',
      base64: 'a2V5',
    })
    assert.deepEqual(resolveSettings({}, {REPLAYCTL_CONFIG}).secretKey, {
      source: 'context',
      file: join(dirname(REPLAYCTL_CONFIG), 'keys/secret.key'),
    })
    assert.deepEqual(resolveSettings({context: 'dc2'}, {REPLAYCTL_CONFIG}).secretKey, {
      source: 'context',
      file: '/etc/replayctl/secret.key',
    })
    assert.deepEqual(resolveSettings({context: 'dc3'}, {REPLAYCTL_CONFIG, XDG_CONFIG_HOME: '/xdg'}).secretKey, {
      source: 'default',
      file: '/xdg/replayctl/secret.key',
    })
    assert.throws(
      () => resolveSettings({context: 'bad'}, {REPLAYCTL_CONFIG}),
      (error: unknown) =>
        error instanceof UserError && error.code === 'INVALID_CONFIG' && /secretKeyFile/.test(error.line),
    )
  })
})

describe("API tokens: REPLAYCTL_API_TOKENS beats the context's apiTokens; bad entries named by position", () => {
  const token = 'context-token-0123456789'
  const REPLAYCTL_CONFIG = configFile({
    currentContext: 'dc1',
    contexts: {
      dc1: {
        apiTokens: [
          {token, webhooks: '*'},
          {token: 'scoped-token-0123456789', webhooks: ['acme', 'globex'], rateLimit: 50},
        ],
      },
      broken: {apiTokens: [{token: 'short-secret', webhooks: '*'}]},
    },
  })

  it("reads the context's tokens with their scopes and limits", () => {
    assert.deepEqual(resolveApiTokens(undefined, {REPLAYCTL_CONFIG}), [
      {token, webhooks: '*'},
      {token: 'scoped-token-0123456789', webhooks: ['acme', 'globex'], rateLimit: 50},
    ])
  })

  it('prefers the environment', () => {
    const env = {
      REPLAYCTL_CONFIG,
      REPLAYCTL_API_TOKENS: JSON.stringify([{token: 'env-token-0123456789abc', webhooks: ['w1']}]),
    }
    assert.deepEqual(resolveApiTokens(undefined, env), [{token: 'env-token-0123456789abc', webhooks: ['w1']}])
  })

  it('refuses short, repeated or badly scoped tokens without echoing them', () => {
    const cases: [string | undefined, Record<string, string>][] = [
      ['broken', {}],
      [
        undefined,
        {
          REPLAYCTL_API_TOKENS: JSON.stringify([
            {token: 'env-token-0123456789abc', webhooks: '*'},
            {token: 'env-token-0123456789abc', webhooks: '*'},
          ]),
        },
      ],
      [undefined, {REPLAYCTL_API_TOKENS: JSON.stringify([{token: 'env-token-0123456789abc', webhooks: ['bad id']}])}],
      [
        undefined,
        {REPLAYCTL_API_TOKENS: JSON.stringify([{token: 'env-token-0123456789abc', webhooks: '*', rateLimit: 0}])},
      ],
      [undefined, {REPLAYCTL_API_TOKENS: '{"token": "env-token-0123456789abc"'}],
    ]
    for (const [context, env] of cases) {
      assert.throws(
        () => resolveApiTokens(context, {REPLAYCTL_CONFIG, ...env}),
        (error: unknown) => {
          assert.ok(error instanceof UserError && error.code === 'INVALID_CONFIG')
          assert.ok(!error.line.includes('env-token-0123456789abc') && !error.line.includes('short-secret'), error.line)
          return true
        },
      )
    }
  })
})

describe("ingest tokens: REPLAYCTL_INGEST_TOKENS beats the context's; each scoped to keys and/or topics", () => {
  const REPLAYCTL_CONFIG = configFile({
    currentContext: 'dc1',
    contexts: {
      dc1: {
        ingestTokens: [
          {token: 'ingest-context-0123456789', keys: ['acme-*', 'globex']},
          {token: 'ingest-topics-0123456789', topics: ['delivery_log']},
        ],
      },
    },
  })

  it("reads the context's tokens, a scope left out being every one", () => {
    assert.deepEqual(resolveIngestTokens(undefined, {REPLAYCTL_CONFIG}), [
      {token: 'ingest-context-0123456789', keys: ['acme-*', 'globex'], topics: '*'},
      {token: 'ingest-topics-0123456789', keys: '*', topics: ['delivery_log']},
    ])
    assert.deepEqual(resolveIngestTokens(undefined, {REPLAYCTL_CONFIG: '/nonexistent.json'}), [])
  })

  it('prefers the environment', () => {
    const env = {
      REPLAYCTL_CONFIG,
      REPLAYCTL_INGEST_TOKENS: JSON.stringify([{token: 'ingest-env-0123456789abc', keys: '*', topics: 'events_*'}]),
    }
    assert.throws(() => resolveIngestTokens(undefined, env), /needs "topics"/)
    env.REPLAYCTL_INGEST_TOKENS = JSON.stringify([{token: 'ingest-env-0123456789abc', keys: '*', topics: ['events_*']}])
    assert.deepEqual(resolveIngestTokens(undefined, env), [
      {token: 'ingest-env-0123456789abc', keys: '*', topics: ['events_*']},
    ])
  })

  it('refuses short, repeated, unscoped or badly scoped tokens without echoing them', () => {
    const token = 'ingest-env-0123456789abc'
    for (const tokens of [
      [{token: 'short-secret', keys: '*'}],
      [
        {token, keys: '*'},
        {token, keys: ['a']},
      ],
      [{token}],
      [{token, keys: []}],
      [{token, keys: ['../../x y']}],
      [{token, keys: ['k'.repeat(65)]}],
      [{token, topics: ['a/b']}],
      [{token, keys: '*', webhooks: '*'}],
      {token, keys: '*'},
    ]) {
      assert.throws(
        () => resolveIngestTokens(undefined, {REPLAYCTL_CONFIG, REPLAYCTL_INGEST_TOKENS: JSON.stringify(tokens)}),
        (error: unknown) => {
          assert.ok(error instanceof UserError && error.code === 'INVALID_CONFIG', String(error))
          assert.ok(!error.line.includes(token) && !error.line.includes('short-secret'), error.line)
          return true
        },
        JSON.stringify(tokens),
      )
    }
  })
})

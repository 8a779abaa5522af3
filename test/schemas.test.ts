import assert from 'node:assert/strict'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {after, before, describe, it} from 'node:test'

import {wireFormat} from '../src/core/schemas/decode.js'
import {DEFAULT_SCHEMA_REGISTRY_URL} from '../src/core/shared/settings.js'
import {deleteTopics, isOneLineError, produceStock, runCli, uniqueName} from './helpers.js'

/**
 * Schemas against the local stack's real schema registry (Apicurio Registry, `dev up
 * --schema-registry`): subjects registered over its Confluent-compatible API, records produced in
 * the Confluent wire format, read back decoded. The Avro payloads are encoded by hand from the
 * Avro specification (zig-zag varints, length-prefixed strings, union branch indexes), not by the
 * library that decodes them.
 */
const REGISTRY = process.env.REPLAYCTL_SCHEMA_REGISTRY_URL ?? DEFAULT_SCHEMA_REGISTRY_URL
const env = {REPLAYCTL_SCHEMA_REGISTRY_URL: REGISTRY}
const created: string[] = []
const run = uniqueName('sch')
const dir = mkdtempSync(join(tmpdir(), 'schemas-'))

async function register(subject: string, schema: object | string, schemaType?: 'JSON' | 'PROTOBUF'): Promise<number> {
  const response = await fetch(`${REGISTRY}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: {'content-type': 'application/vnd.schemaregistry.v1+json'},
    body: JSON.stringify({
      schema: typeof schema === 'string' ? schema : JSON.stringify(schema),
      ...(schemaType ? {schemaType} : {}),
    }),
  })
  assert.equal(response.status, 200, await response.clone().text())
  return ((await response.json()) as {id: number}).id
}

function zigzag(value: bigint): Buffer {
  let n = value >= 0n ? value << 1n : (-value << 1n) - 1n
  const bytes: number[] = []
  while (n >= 0x80n) {
    bytes.push(Number(n & 0x7fn) | 0x80)
    n >>= 7n
  }
  bytes.push(Number(n))
  return Buffer.from(bytes)
}

const avroString = (text: string) => Buffer.concat([zigzag(BigInt(Buffer.byteLength(text))), Buffer.from(text, 'utf8')])

/** A User {name: string, age: int, balance: long, nick: [null, string]} in Avro binary. */
function avroUser(name: string, age: number, balance: bigint, nick: string | null): Buffer {
  return Buffer.concat([
    avroString(name),
    zigzag(BigInt(age)),
    zigzag(balance),
    nick === null ? zigzag(0n) : Buffer.concat([zigzag(1n), avroString(nick)]),
  ])
}

const userSchema = {
  type: 'record',
  name: `User_${run}`,
  fields: [
    {name: 'name', type: 'string'},
    {name: 'age', type: 'int'},
    {name: 'balance', type: 'long'},
    {name: 'nick', type: ['null', 'string'], default: null},
  ],
}
const orderSchema = {
  type: 'object',
  title: `order ${run}`,
  properties: {id: {type: 'integer'}, items: {type: 'array', items: {type: 'string'}}},
  required: ['id'],
}

async function createTopic(prefix: string): Promise<string> {
  const topic = uniqueName(prefix)
  const result = await runCli(['topic', 'create', topic, '--partitions', '1', '--json'])
  assert.equal(result.code, 0, result.stderr)
  created.push(topic)
  return topic
}

async function produceValues(topic: string, values: (Buffer | null)[]): Promise<void> {
  await produceStock(topic, values.length, (index) => ({
    partition: 0,
    key: Buffer.from(`k${index}`),
    value: values[index] ?? null,
    timestamp: Date.now(),
  }))
}

let userSubject: string
let orderSubject: string
let protoSubject: string
let userId: number
let userId2: number
let orderId: number

before(async () => {
  try {
    await fetch(`${REGISTRY}/subjects`, {signal: AbortSignal.timeout(5000)})
  } catch {
    assert.fail(`no schema registry answers at ${REGISTRY}: start it with \`replayctl dev up --schema-registry\``)
  }
  userSubject = `${run}_users-value`
  orderSubject = `${run}_orders-value`
  userId = await register(userSubject, userSchema)
  // Version 2 adds a field with a default: a compatible evolution.
  userId2 = await register(userSubject, {
    ...userSchema,
    fields: [...userSchema.fields, {name: 'email', type: 'string', default: ''}],
  })
  orderId = await register(orderSubject, orderSchema, 'JSON')
  // Outside the `run` prefix that `schema list` is checked by.
  protoSubject = `proto_${run}-value`
  await register(protoSubject, 'syntax = "proto3";\nmessage Ping { string id = 1; }\n', 'PROTOBUF')
})

after(async () => {
  await deleteTopics(created)
  // The registry's own API: the test's subjects go with it (soft, then hard delete as Confluent asks).
  rmSync(dir, {recursive: true, force: true})
  for (const subject of [userSubject, orderSubject, protoSubject]) {
    await fetch(`${REGISTRY}/subjects/${subject}`, {method: 'DELETE'})
    await fetch(`${REGISTRY}/subjects/${subject}?permanent=true`, {method: 'DELETE'})
  }
})

describe('schema list and get', () => {
  it('lists each subject with its latest version, type and id', async () => {
    const result = await runCli(['schema', 'list', '--json'], {env})
    assert.equal(result.code, 0, result.stderr)
    const mine = (result.json as {subject: string}[]).filter((entry) => entry.subject.startsWith(run))
    assert.deepEqual(mine, [
      {subject: orderSubject, version: 1, id: orderId, schemaType: 'JSON'},
      {subject: userSubject, version: 2, id: userId2, schemaType: 'AVRO'},
    ])
    const text = await runCli(['schema', 'list'], {env})
    assert.match(text.stdout, new RegExp(`${userSubject}\\s+2\\s+AVRO\\s+${userId2}`))
  })

  it('prints the latest schema, or the one of --version N', async () => {
    const latest = await runCli(['schema', 'get', userSubject, '--json'], {env})
    assert.equal(latest.code, 0, latest.stderr)
    assert.equal(latest.json.version, 2)
    assert.equal(latest.json.id, userId2)
    assert.equal(JSON.parse(latest.json.schema).fields.length, 5)

    const first = await runCli(['schema', 'get', userSubject, '--version', '1'], {env})
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /version\s+1/)
    assert.match(first.stdout, /"name": "balance"/)
    assert.doesNotMatch(first.stdout, /email/)

    const json = await runCli(['schema', 'get', orderSubject, '--json'], {env})
    assert.equal(json.json.schemaType, 'JSON')
    assert.deepEqual(JSON.parse(json.json.schema), orderSchema)
  })

  it('says in one line that a subject or version does not exist (exit 3)', async () => {
    const missing = await runCli(['schema', 'get', `${run}_nothing-value`], {env})
    assert.equal(missing.code, 3)
    assert.ok(isOneLineError(missing), missing.stderr)
    assert.match(missing.stderr, /no subject/)

    const version = await runCli(['schema', 'get', userSubject, '--version', '9', '--json'], {env})
    assert.equal(version.code, 3)
    assert.equal(version.json.error.code, 'SUBJECT_NOT_FOUND')
  })

  it('says in one line that no registry answers (exit 5)', async () => {
    // Port 9 is one fetch refuses to dial; a closed ordinary port is refused by the system.
    const refused = await runCli(['schema', 'list', '--schema-registry-url', 'http://127.0.0.1:9/apis/ccompat/v7'])
    const closed = await runCli(['schema', 'list', '--schema-registry-url', 'http://127.0.0.1:2/apis/ccompat/v7'])
    for (const [result, cause] of [
      [refused, 'bad port'],
      [closed, 'ECONNREFUSED'],
    ] as const) {
      assert.equal(result.code, 5)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(result.stderr, /could not be reached.*dev up --schema-registry/)
      assert.ok(result.stderr.includes(`(${cause})`), result.stderr)
    }
  })
})

describe('log read --decode', () => {
  it('decodes Avro values by the schema id of each record, versions mixed', async () => {
    const topic = await createTopic('sch_avro')
    await produceValues(topic, [
      wireFormat(userId, avroUser('Ada', 36, 2n ** 40n, null)),
      wireFormat(userId2, Buffer.concat([avroUser('Grace', -7, -5n, 'amazing'), avroString('g@example.org')])),
      null,
    ])
    const result = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro', '--json'], {env})
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      result.json.records.map((record: {schemaId: number; value: unknown; key: string}) => [
        record.key,
        record.schemaId,
        record.value,
      ]),
      [
        ['k0', userId, {name: 'Ada', age: 36, balance: 2 ** 40, nick: null}],
        ['k1', userId2, {name: 'Grace', age: -7, balance: -5, nick: {string: 'amazing'}, email: 'g@example.org'}],
        ['k2', null, null],
      ],
    )

    const lines = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro', '--max', '1'], {env})
    assert.equal(lines.code, 0, lines.stderr)
    const [line] = lines.stdout
      .trim()
      .split('\n')
      .map((text) => JSON.parse(text))
    assert.deepEqual(line.value, {name: 'Ada', age: 36, balance: 2 ** 40, nick: null})

    const table = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro', '--format', 'table', '--wide'], {
      env,
    })
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /\{"name":"Grace","age":-7/)
  })

  it('decodes JSON Schema values', async () => {
    const topic = await createTopic('sch_json')
    const orders = [{id: 1, items: ['a', 'b']}, {id: 2}]
    await produceValues(
      topic,
      orders.map((order) => wireFormat(orderId, Buffer.from(JSON.stringify(order)))),
    )
    const result = await runCli(['log', 'read', '--topic', topic, '--decode', 'json-schema', '--json'], {env})
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      result.json.records.map((record: {schemaId: number; value: unknown}) => [record.schemaId, record.value]),
      orders.map((order) => [orderId, order]),
    )
  })

  it('stops in one line at a value not in the wire format, or with an id the registry lacks', async () => {
    const topic = await createTopic('sch_bad')
    await produceValues(topic, [
      wireFormat(userId, avroUser('Ada', 36, 1n, null)),
      Buffer.from('{"plain":"json"}'),
      wireFormat(2_000_000_000, Buffer.from('x')),
    ])
    const plain = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro'], {env})
    assert.equal(plain.code, 2)
    assert.ok(isOneLineError(plain), plain.stderr)
    assert.match(
      plain.stderr,
      new RegExp(`${topic}/0@1 is not in the Confluent wire format \\(it starts with byte 123`),
    )
    // What came before the bad record was printed.
    assert.equal(plain.stdout.trim().split('\n').length, 1)

    const unknown = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro', '--from-offset', '2'], {env})
    assert.equal(unknown.code, 2)
    assert.ok(isOneLineError(unknown), unknown.stderr)
    assert.match(unknown.stderr, /@2 names schema id 2000000000, which the schema registry does not have/)

    const wrongType = await runCli(['log', 'read', '--topic', topic, '--decode', 'json-schema', '--json'], {env})
    assert.equal(wrongType.json.error.code, 'RECORD_NOT_DECODABLE')
    assert.match(wrongType.json.error.message, /of type AVRO, not JSON/)
  })

  it('refuses --decode with --format raw', async () => {
    const result = await runCli(['log', 'read', '--topic', 'any', '--decode', 'avro', '--format', 'raw'], {env})
    assert.equal(result.code, 2)
    assert.ok(isOneLineError(result), result.stderr)
  })
})

function ndjson(name: string, values: unknown[]): string {
  const file = join(dir, name)
  writeFileSync(file, values.map((value) => JSON.stringify(value)).join('\n') + '\n')
  return file
}

async function decodedValues(topic: string, decoding: string): Promise<[number, unknown][]> {
  const result = await runCli(['log', 'read', '--topic', topic, '--decode', decoding, '--json'], {env})
  assert.equal(result.code, 0, result.stderr)
  return result.json.records.map((record: {schemaId: number; value: unknown}) => [record.schemaId, record.value])
}

describe('log produce --value-subject', () => {
  // Avro's JSON encoding, as `log read --decode avro` prints it: unions as {"branch": value}.
  const users = [
    {name: 'Ada', age: 36, balance: 2 ** 40, nick: null, email: 'ada@example.org'},
    {name: 'Grace', age: -7, balance: -5, nick: {string: 'amazing'}, email: ''},
  ]

  it('writes Avro values that `log read --decode avro` reads back unchanged, and reads them again', async () => {
    const topic = await createTopic('sch_prod_avro')
    const file = ndjson('users.ndjson', users)
    const result = await runCli(
      ['log', 'produce', '--topic', topic, '--file', file, '--key-field', 'name', '--value-subject', userSubject],
      {env},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, new RegExp(`value schema\\s+${userSubject} version 2 \\(id ${userId2}, AVRO\\)`))
    assert.deepEqual(await decodedValues(topic, 'avro'), [
      [userId2, users[0]],
      [userId2, users[1]],
    ])

    // What read printed, written again from stdin with version 1 (no email), reads back the same.
    const again = await createTopic('sch_prod_avro2')
    const lines = await runCli(['log', 'read', '--topic', topic, '--decode', 'avro'], {env})
    const v1 = lines.stdout
      .trim()
      .split('\n')
      .map((line) => {
        const {email: _, ...value} = JSON.parse(line).value
        return JSON.stringify(value)
      })
    const second = await runCli(
      [
        'log',
        'produce',
        '--topic',
        again,
        '--key-field',
        'name',
        '--value-subject',
        userSubject,
        '--value-schema-version',
        '1',
        '--json',
      ],
      {env, input: v1.join('\n') + '\n'},
    )
    assert.equal(second.code, 0, second.stderr)
    assert.deepEqual(second.json.valueSchema, {subject: userSubject, version: 1, schemaId: userId, schemaType: 'AVRO'})
    assert.deepEqual(
      await decodedValues(again, 'avro'),
      v1.map((line) => [userId, JSON.parse(line)]),
    )
  })

  it('writes JSON Schema values as they are', async () => {
    const topic = await createTopic('sch_prod_json')
    const orders = [
      {webhook_id: 'w1', id: 1, items: ['a', 'b']},
      {webhook_id: 'w2', id: 2},
    ]
    const result = await runCli(
      ['log', 'produce', '--topic', topic, '--file', ndjson('orders.ndjson', orders), '--value-subject', orderSubject],
      {env},
    )
    assert.equal(result.code, 0, result.stderr)
    assert.deepEqual(
      await decodedValues(topic, 'json-schema'),
      orders.map((order) => [orderId, order]),
    )
  })

  it('refuses a file with a value that does not fit in one line naming it, and writes nothing (exit 2)', async () => {
    const topic = await createTopic('sch_prod_bad')
    const cases: [unknown, RegExp][] = [
      [
        {...users[0], age: 1.5},
        /line 2 of .* does not fit the Avro schema .*: field age is 1\.5, not int; nothing was written/,
      ],
      [{...users[0], nick: 'plain'}, /line 2 .*: field nick is "plain", not a branch of \[null, string\]/],
      [{...users[0], emial: 'typo'}, /line 2 .*: the value has a field 'emial' that the schema does not declare/],
      [{name: 'Ada', balance: 1}, /line 2 .*: field age is missing and has no default/],
    ]
    for (const [bad, message] of cases) {
      const file = ndjson('bad.ndjson', [users[1], bad, users[1]])
      const result = await runCli(
        ['log', 'produce', '--topic', topic, '--file', file, '--key-field', 'name', '--value-subject', userSubject],
        {env},
      )
      assert.equal(result.code, 2, result.stderr)
      assert.ok(isOneLineError(result), result.stderr)
      assert.match(result.stderr, message)
    }
    const read = await runCli(['log', 'read', '--topic', topic, '--json'], {env})
    assert.equal(read.code, 0, read.stderr)
    assert.deepEqual(read.json.records, [])
  })

  it('says in one line that the subject does not exist (exit 3) or holds Protobuf (exit 2)', async () => {
    const topic = await createTopic('sch_prod_none')
    const file = ndjson('one.ndjson', [users[0]])
    const missing = await runCli(
      ['log', 'produce', '--topic', topic, '--file', file, '--value-subject', `${run}_nothing-value`, '--json'],
      {env},
    )
    assert.equal(missing.code, 3)
    assert.equal(missing.json.error.code, 'SUBJECT_NOT_FOUND')

    const proto = await runCli(['log', 'produce', '--topic', topic, '--file', file, '--value-subject', protoSubject], {
      env,
    })
    assert.equal(proto.code, 2)
    assert.ok(isOneLineError(proto), proto.stderr)
    assert.match(proto.stderr, /holds a PROTOBUF schema; --value-subject writes Avro and JSON Schema values only/)

    const down = await runCli([
      'log',
      'produce',
      '--topic',
      topic,
      '--file',
      file,
      '--value-subject',
      userSubject,
      '--schema-registry-url',
      'http://127.0.0.1:9/apis/ccompat/v7',
    ])
    assert.equal(down.code, 5)
    assert.ok(isOneLineError(down), down.stderr)
  })
})

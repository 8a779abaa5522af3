import assert from 'node:assert/strict'
import {after, describe, it} from 'node:test'

import {deleteTopics, nth, runCli, uniqueName} from './helpers.js'

/**
 * `topic describe` reads configs, and `cluster status` the controller, with Apache Kafka's own tools
 * because the client library has neither DescribeConfigs nor DescribeCluster. Without Java both
 * still answer and say in one line what they could not learn, instead of failing.
 */
const topic = uniqueName('cfg')

after(async () => {
  await deleteTopics([topic])
})

describe('topic describe without Java', () => {
  it('shows partitions and one line saying configs need Java', async () => {
    const created = await runCli(['topic', 'create', topic, '--partitions', '2', '--json'])
    assert.equal(created.code, 0, created.stderr)
    const noJava = {PATH: '/nonexistent', JAVA_HOME: ''}

    const json = await runCli(['topic', 'describe', topic, '--json'], {env: noJava})
    assert.equal(json.code, 0, json.stderr)
    assert.equal(json.json.partitions.length, 2)
    assert.equal(json.json.configs, null)
    assert.match(
      json.json.configsUnavailable,
      /need Java .*no DescribeConfigs \(Java 17 or newer is needed .* not found\); --no-configs skips them/,
    )

    const table = await runCli(['topic', 'describe', topic], {env: noJava})
    assert.equal(table.code, 0, table.stderr)
    assert.equal(table.stderr, '')
    assert.match(table.stdout, /partitions\s+2/)
    const configLines = table.stdout.split('\n').filter((line) => /config/i.test(line))
    assert.equal(configLines.length, 1, table.stdout)
    assert.match(nth(configLines, 0), /^configs unavailable: they need Java/)

    const withJava = await runCli(['topic', 'describe', topic, '--json'])
    assert.equal(withJava.json.configs['compression.type'], 'snappy')
  })
})

describe('cluster status without Java', () => {
  it('still judges health and says the controller is unknown', async () => {
    const result = await runCli(['cluster', 'status', '--json'], {env: {PATH: '/nonexistent', JAVA_HOME: ''}})
    assert.equal(result.code, 0, result.stdout + result.stderr)
    assert.equal(result.json.healthy, true)
    assert.equal(result.json.controller, null)
    assert.match(result.json.controllerUnavailable, /Java 17 or newer is needed/)
    assert.ok(result.json.brokers.length >= 1)
    const table = await runCli(['cluster', 'status'], {env: {PATH: '/nonexistent', JAVA_HOME: ''}})
    assert.equal(table.code, 0)
    assert.match(table.stdout, /controller\s+unknown: Java 17 or newer is needed/)
  })
})

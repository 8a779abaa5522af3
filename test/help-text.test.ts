import assert from 'node:assert/strict'
import {readFileSync} from 'node:fs'
import {after, describe, it} from 'node:test'

import {deleteTopics, runCli, uniqueName} from './helpers.js'

/**
 * Small wrongs of the help and the output (issue 14): no empty `[default: ]`, connection flags
 * only for what a command talks to, counts that agree with their nouns, `dev seed`'s defaults as the
 * README says.
 */
const topic = uniqueName('helptext')
const seeded = uniqueName('helptext_seed')
after(() => deleteTopics([topic, seeded]))

async function help(command: string[]): Promise<string> {
  const result = await runCli([...command, '--help'])
  assert.equal(result.code, 0, result.stderr)
  return result.stdout
}

describe('help and output wording', () => {
  it('repeatable flags show no empty default', async () => {
    for (const command of [
      ['log', 'produce'],
      ['topic', 'create'],
      ['topic', 'restore'],
    ]) {
      const text = await help(command)
      assert.doesNotMatch(text, /\[default: \]/, command.join(' '))
    }
  })

  it('each command shows the connection flags of what it talks to', async () => {
    for (const command of [
      ['log', 'produce'],
      ['topic', 'list'],
      ['group', 'lag'],
      ['ingest', 'serve'],
    ]) {
      const text = await help(command)
      assert.match(text, /--brokers/, command.join(' '))
      assert.doesNotMatch(text, /--mysql-url/, command.join(' '))
    }
    const db = await help(['db', 'status'])
    assert.match(db, /--mysql-url/)
    assert.doesNotMatch(db, /--brokers|--X=/)
    const both = await help(['replay', 'submit'])
    assert.match(both, /--brokers/)
    assert.match(both, /--mysql-url/)
  })

  it("every topic has its own description, not one of its commands'", async () => {
    const manifest = JSON.parse(readFileSync(new URL('../oclif.manifest.json', import.meta.url), 'utf8')) as {
      commands: Record<string, unknown>
    }
    const packageJson = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      oclif: {topics: Record<string, {description: string}>}
    }
    const topics = new Set(Object.keys(manifest.commands).map((id) => id.split(':', 1).join('')))
    for (const name of topics)
      assert.ok(packageJson.oclif.topics[name]?.description, `${name} has no topic description`)
    const root = await runCli(['--help'])
    assert.match(root.stdout, /connect +Kafka Connect through its REST API/)
    assert.match(root.stdout, /schema +Schemas in a Confluent-compatible schema registry/)
  })

  it('one event is "1 event"', async () => {
    assert.equal((await runCli(['topic', 'create', topic, '--partitions', '1'])).code, 0)
    const result = await runCli(['log', 'produce', '-t', topic], {input: '{"webhook_id":"w"}\n'})
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, new RegExp(`^wrote 1 event to ${topic}$`, 'm'))
    const search = await runCli(['log', 'search', '-t', topic, '--key', 'w'])
    assert.equal(search.code, 0, search.stderr)
    assert.match(search.stderr, /^1 match in 1 record scanned/m)
  })

  it("dev seed's defaults are the delivery_log the README's walk-through describes", async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const walk =
      /the one `dev seed`\s+writes \(([\d,]+) events for ([\d,]+) webhooks over (\d+) days, (\d+) partitions/.exec(
        readme,
      )
    assert.ok(walk, 'the README says what `dev seed` writes')
    const [events, webhooks, days, partitions] = walk.slice(1).map((number) => Number(number.replaceAll(',', '')))
    assert.equal(webhooks, 2000)
    const text = await help(['dev', 'seed'])
    const defaultOf = (flag: string) => Number(new RegExp(`--${flag}=<value> +\\[default: (\\d+)\\]`).exec(text)?.[1])
    assert.deepEqual(['events', 'webhooks', 'days', 'partitions'].map(defaultOf), [events, webhooks, days, partitions])
    // A small run without --webhooks draws its events from that many webhooks.
    const result = await runCli(['dev', 'seed', '-t', seeded, '-n', '50', '--partitions', '1', '--days', '1', '--json'])
    assert.equal(result.code, 0, result.stderr)
    assert.equal(result.json.events, 50)
    assert.equal(result.json.webhooks, webhooks)
  })
})

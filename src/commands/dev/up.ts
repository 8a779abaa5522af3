import {Flags} from '@oclif/core'

import {BaseCommand, tableFlags} from '../../cli/base-command.js'
import {type Detail, details, paint, table} from '../../cli/output.js'
import {noteWriter, uiMode} from '../../cli/progress.js'
import {DC2_PORT_OFFSET, DEFAULT_BASE_PORT, DEFAULT_CONNECT_PORT, up, type UpResult} from '../../core/dev/stack.js'
import {invalidArgument} from '../../core/shared/errors.js'
import {DEFAULT_SCHEMA_REGISTRY_PORT, localSettings} from '../../core/shared/settings.js'
import {ensureLocalSecretKey} from '../../core/webhooks/secret-key.js'

export default class DevUp extends BaseCommand<typeof DevUp> {
  static override summary = 'Start the local stack: Apache Kafka (KRaft) and MariaDB on 127.0.0.1'
  static override description =
    `Fetches Apache Kafka's jars from Maven Central on first use (cached under ~/.cache/replayctl), formats storage, ` +
    `starts the broker(s) and waits until they answer metadata; with --connect or --datacenters 2 also Kafka Connect ` +
    `(its jars fetched the same way). Starts MariaDB if it is installed but stopped. ` +
    `Creates the key webhook secrets are encrypted with, ~/.config/replayctl/secret.key (mode 0600), unless it ` +
    `exists or REPLAYCTL_SECRET_KEY is set. Running it again reports the running stack and starts only what has ` +
    `stopped. With --schema-registry it also builds (once, with mvn) and starts Apicurio Registry, whose ` +
    `Confluent-compatible API the schema commands and \`log read --decode\` use; once started it stays part of ` +
    `the stack.`
  static override examples = [
    '<%= config.bin %> dev up',
    '<%= config.bin %> dev up --brokers 3',
    '<%= config.bin %> dev up --schema-registry',
    '<%= config.bin %> dev up --connect',
    '<%= config.bin %> dev up --datacenters 2',
    'eval "$(<%= config.bin %> dev up --json | jq -r \'.settings | to_entries[] | "export \\(.key)=\\(.value)"\')"',
  ]
  static override flags = {
    ...tableFlags,
    brokers: Flags.integer({
      description: 'number of Kafka nodes (3 gives replication factor 3, min.insync.replicas 2)',
      default: 1,
    }),
    port: Flags.integer({
      description:
        "client port of node 1; node N uses port + 2(N-1), its controller the port after. All must lie below Linux's " +
        'ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), where outgoing connections could take them',
      default: DEFAULT_BASE_PORT,
    }),
    'schema-registry': Flags.boolean({
      description: 'also start a schema registry (Apicurio Registry, Confluent-compatible API, in-memory storage)',
    }),
    'schema-registry-port': Flags.integer({
      description: "the schema registry's port (below the ephemeral range)",
      default: DEFAULT_SCHEMA_REGISTRY_PORT,
    }),
    connect: Flags.boolean({
      description: 'also run a Kafka Connect worker (distributed mode, FileStream and MirrorMaker 2 connectors)',
    }),
    'connect-port': Flags.integer({description: "the Kafka Connect worker's REST port", default: DEFAULT_CONNECT_PORT}),
    datacenters: Flags.integer({
      description:
        `2 adds a second single-node cluster, dc2, on --port + ${DC2_PORT_OFFSET}, and Kafka Connect (bootstrapped ` +
        `to dc2) running MirrorMaker 2 that mirrors delivery_log from dc1 into dc2 as dc1.delivery_log`,
      default: 1,
    }),
  }

  async run(): Promise<UpResult & {secretKey: {file: string; created: boolean} | null}> {
    if (this.flags.brokers < 1 || this.flags.brokers > 5)
      throw invalidArgument(
        `--brokers must be between 1 and 5, got ${this.flags.brokers}`,
        'use 1 for development or 3 for failover tests',
      )
    if (this.flags.datacenters < 1 || this.flags.datacenters > 2)
      throw invalidArgument(
        `--datacenters must be 1 or 2, got ${this.flags.datacenters}`,
        'use 2 for a second cluster mirrored with MirrorMaker 2',
      )
    const result = {
      ...(await up({
        brokers: this.flags.brokers,
        basePort: this.flags.port,
        schemaRegistry: this.flags['schema-registry'],
        schemaRegistryPort: this.flags['schema-registry-port'],
        datacenters: this.flags.datacenters,
        connect: this.flags.connect,
        connectPort: this.flags['connect-port'],
        onProgress: noteWriter(uiMode(this.jsonEnabled())),
      })),
      secretKey: ensureLocalSecretKey(localSettings().localSecretKeyFile),
    }
    this.print(
      result.alreadyRunning
        ? paint.green('the local stack is already running')
        : paint.green(`the local stack is up (Kafka ${result.kafkaVersion})`),
    )
    this.print(
      table(
        ['node', {title: 'address', cut: 'middle'}, {title: 'pid', align: 'right'}, 'state'],
        [
          ...result.nodes.map((node) => [node.id, node.address, node.pid, node.running ? 'running' : 'stopped']),
          ...(result.dc2
            ? [['dc2', result.dc2.address, result.dc2.pid, result.dc2.running ? 'running' : 'stopped']]
            : []),
          ...(result.connect
            ? [['connect', result.connect.url, result.connect.pid, result.connect.running ? 'running' : 'stopped']]
            : []),
        ],
      ),
    )
    this.print(
      details([
        ['mysql', `${result.mysql.address} (MariaDB ${result.mysql.version})`],
        ...(result.schemaRegistry
          ? [['schema registry', `${result.schemaRegistry.url} (pid ${result.schemaRegistry.pid})`, 'middle'] as Detail]
          : []),
        ['state', result.stateDir, 'middle'],
        [
          'secret key',
          result.secretKey
            ? `${result.secretKey.file}${result.secretKey.created ? ' (created)' : ''}`
            : 'REPLAYCTL_SECRET_KEY',
          'middle',
        ],
      ]),
    )
    this.print(
      `\n${paint.bold('Use it with:')}\n${Object.entries(result.settings)
        .map(([key, value]) => `  export ${key}=${value}`)
        .join('\n')}`,
    )
    return result
  }
}

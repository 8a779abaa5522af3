import {execFile, spawn} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'
import {promisify} from 'node:util'

import {findExecutable, findJava} from '../kafka/apache-dist.js'
import {UserError} from '../shared/errors.js'
import {DEFAULT_SCHEMA_REGISTRY_PORT, localSettings} from '../shared/settings.js'
import {ephemeralRange, inRange, portHolder} from './ports.js'
import {isAlive, stopProcess} from './processes.js'

/**
 * The local stack's schema registry: Apicurio Registry with its Confluent-compatible API
 * (/apis/ccompat/v7) and in-memory storage, so its schemas live as long as the process.
 *
 * Maven Central publishes Apicurio's application only as a library jar (the runnable builds ship as
 * container images), so `dev up --schema-registry` builds it once: a Maven project that depends on
 * apicurio-registry-app and runs quarkus-maven-plugin's build goal, in the cache directory. 2.4.2
 * is the newest release that runs on Java 17 and whose artifacts Maven Central has in full but for
 * three: the JSON Schema validator (everit, published on JitPack only; left out, so the registry
 * stores JSON schemas without checking them) and the config-index extension's 0.1.18 deployment
 * jar (0.1.10 used instead).
 */
export const SCHEMA_REGISTRY_VERSION = '2.4.2.Final'
const QUARKUS_VERSION = '2.16.4.Final'
const CONFIG_INDEX_VERSION = '0.1.10.Final'
const API_PATH = '/apis/ccompat/v7'
const START_TIMEOUT_MS = 180_000

const run = promisify(execFile)

const POM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>replayctl</groupId>
  <artifactId>schema-registry</artifactId>
  <version>${SCHEMA_REGISTRY_VERSION}</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <quarkus.index-dependency.registry.group-id>io.apicurio</quarkus.index-dependency.registry.group-id>
    <quarkus.index-dependency.registry.artifact-id>apicurio-registry-app</quarkus.index-dependency.registry.artifact-id>
  </properties>
  <dependencyManagement>
    <dependencies>
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-common-app-components-config-index</artifactId>
        <version>${CONFIG_INDEX_VERSION}</version>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-common-app-components-config-index-deployment</artifactId>
        <version>${CONFIG_INDEX_VERSION}</version>
      </dependency>
      <dependency>
        <groupId>io.apicurio</groupId><artifactId>apicurio-registry</artifactId>
        <version>${SCHEMA_REGISTRY_VERSION}</version><type>pom</type><scope>import</scope>
      </dependency>
    </dependencies>
  </dependencyManagement>
  <dependencies>
    <dependency>
      <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId>
      <version>${SCHEMA_REGISTRY_VERSION}</version>
      <exclusions>
        <exclusion>
          <groupId>com.github.everit-org.json-schema</groupId><artifactId>org.everit.json.schema</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin>
        <!-- The application's own configuration (storage, API paths) lives in its jar. -->
        <groupId>org.apache.maven.plugins</groupId><artifactId>maven-dependency-plugin</artifactId>
        <executions>
          <execution>
            <id>app-config</id><phase>generate-resources</phase><goals><goal>unpack</goal></goals>
            <configuration>
              <artifactItems>
                <artifactItem>
                  <groupId>io.apicurio</groupId><artifactId>apicurio-registry-app</artifactId>
                  <version>${SCHEMA_REGISTRY_VERSION}</version>
                  <includes>application.properties</includes>
                  <outputDirectory>\${project.build.outputDirectory}</outputDirectory>
                </artifactItem>
              </artifactItems>
            </configuration>
          </execution>
        </executions>
      </plugin>
      <plugin>
        <groupId>io.quarkus</groupId><artifactId>quarkus-maven-plugin</artifactId><version>${QUARKUS_VERSION}</version>
        <executions><execution><goals><goal>build</goal></goals></execution></executions>
      </plugin>
    </plugins>
  </build>
</project>
`

export interface SchemaRegistryState {
  port: number
  pid: number | null
}

export interface SchemaRegistryStatus {
  url: string
  port: number
  pid: number | null
  running: boolean
  log: string
}

const buildDir = () => join(localSettings().cacheDir, `apicurio-registry-${SCHEMA_REGISTRY_VERSION}`)
const runnerJar = () => join(buildDir(), 'target', `schema-registry-${SCHEMA_REGISTRY_VERSION}-runner.jar`)
const registryDir = () => join(localSettings().stateDir, 'schema-registry')
export const schemaRegistryLog = () => join(registryDir(), 'registry.log')
const stateFile = () => join(registryDir(), 'state.json')

export const schemaRegistryUrl = (port: number) => `http://127.0.0.1:${port}${API_PATH}`

export function readSchemaRegistryState(): SchemaRegistryState | null {
  if (!existsSync(stateFile())) return null
  return JSON.parse(readFileSync(stateFile(), 'utf8')) as SchemaRegistryState
}

function writeState(state: SchemaRegistryState): void {
  mkdirSync(registryDir(), {recursive: true})
  writeFileSync(stateFile(), `${JSON.stringify(state, null, 2)}\n`)
}

// The log path is on the command line (a system property), so a reused pid is not taken for ours.
const running = (state: SchemaRegistryState | null) => state?.pid != null && isAlive(state.pid, schemaRegistryLog())

export function schemaRegistryStatus(): SchemaRegistryStatus | null {
  const state = readSchemaRegistryState()
  if (!state) return null
  return {
    url: schemaRegistryUrl(state.port),
    port: state.port,
    pid: state.pid,
    running: running(state),
    log: schemaRegistryLog(),
  }
}

/** Builds the registry once (a few minutes: mvn fetches about 130 MB of jars). */
async function ensureBuilt(progress: (line: string) => void): Promise<string> {
  if (existsSync(runnerJar())) return runnerJar()
  const mvn = findExecutable(
    'mvn',
    'Apache Maven (mvn) is needed once to build the schema registry',
    'apt-get install -y maven',
  )
  mkdirSync(buildDir(), {recursive: true})
  writeFileSync(join(buildDir(), 'pom.xml'), POM)
  progress(`building Apicurio Registry ${SCHEMA_REGISTRY_VERSION} from Maven Central jars into ${buildDir()} (once)`)
  try {
    await run(mvn, ['-B', '-q', '-f', join(buildDir(), 'pom.xml'), 'package', '-DskipTests'], {
      maxBuffer: 64 * 1024 * 1024,
    })
  } catch (error) {
    const output = `${(error as {stdout?: string}).stdout ?? ''}${(error as {stderr?: string}).stderr ?? ''}`
    const line =
      output.split('\n').find((candidate) => candidate.includes('[ERROR]')) ?? output.trim().split('\n').at(-1)
    throw new UserError(
      'STACK_FAILED',
      `could not build Apicurio Registry ${SCHEMA_REGISTRY_VERSION} with mvn (${(line ?? '').slice(0, 400)})`,
      'check that Maven Central is reachable and retry `replayctl dev up --schema-registry`',
      {cause: error},
    )
  }
  if (!existsSync(runnerJar())) throw new UserError('STACK_FAILED', `mvn finished but built no ${runnerJar()}`)
  return runnerJar()
}

/** Starts the registry unless it runs; waits until its API answers. */
export async function ensureSchemaRegistry(
  options: {port?: number},
  progress: (line: string) => void,
): Promise<SchemaRegistryStatus & {started: boolean}> {
  const existing = readSchemaRegistryState()
  const port = existing?.port ?? options.port ?? DEFAULT_SCHEMA_REGISTRY_PORT
  if (existing && running(existing)) return {...(schemaRegistryStatus() as SchemaRegistryStatus), started: false}
  const range = ephemeralRange()
  if (inRange(port, range))
    throw new UserError(
      'INVALID_ARGUMENT',
      `port ${port} of the schema registry is in Linux's ephemeral port range ${range?.low}-${range?.high}`,
      `choose a --schema-registry-port below ${range?.low}, e.g. ${DEFAULT_SCHEMA_REGISTRY_PORT}`,
    )
  const java = findJava()
  const jar = await ensureBuilt(progress)
  mkdirSync(registryDir(), {recursive: true})
  const logStart = existsSync(schemaRegistryLog()) ? statSync(schemaRegistryLog()).size : 0
  const log = openSync(schemaRegistryLog(), 'a')
  progress(`starting the schema registry on 127.0.0.1:${port}`)
  const child = spawn(
    java,
    [
      '-Xmx512m',
      `-Dreplayctl.log=${schemaRegistryLog()}`,
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${port}`,
      '-jar',
      jar,
    ],
    {detached: true, stdio: ['ignore', log, log]},
  )
  child.once('error', () => {})
  child.unref()
  closeSync(log)
  const state = {port, pid: child.pid ?? null}
  writeState(state)
  await waitForApi(state, logStart, progress)
  return {...(schemaRegistryStatus() as SchemaRegistryStatus), started: true}
}

async function waitForApi(
  state: SchemaRegistryState,
  logStart: number,
  progress: (line: string) => void,
): Promise<void> {
  progress('waiting for the schema registry to answer (a JVM start of 20-40 s)')
  const deadline = Date.now() + START_TIMEOUT_MS
  while (Date.now() < deadline) {
    if (!running(state)) {
      const log = readFileSync(schemaRegistryLog()).subarray(logStart).toString('utf8')
      const holder = /Port \d+ seems to be in use|Address already in use/i.test(log) ? portHolder(state.port) : null
      const reason = /Port \d+ seems to be in use|Address already in use/i.test(log)
        ? `port ${state.port} is already in use${holder ? ` (${holder})` : ''}`
        : (log
            .trim()
            .split('\n')
            .findLast((line) => /ERROR|Exception/.test(line))
            ?.slice(0, 300) ?? 'no log output')
      throw new UserError(
        'STACK_FAILED',
        `the schema registry could not start: ${reason}`,
        `see ${schemaRegistryLog()} (\`replayctl dev logs --schema-registry\`)`,
      )
    }
    try {
      const response = await fetch(`${schemaRegistryUrl(state.port)}/subjects`, {signal: AbortSignal.timeout(2000)})
      if (response.ok) return
    } catch {
      // Not listening yet.
    }
    await sleep(500)
  }
  throw new UserError(
    'STACK_FAILED',
    `the schema registry did not answer within ${START_TIMEOUT_MS / 1000} s`,
    'see `replayctl dev logs --schema-registry`',
  )
}

export async function stopSchemaRegistry(
  timeoutMs: number,
): Promise<{what: string; pid: number; forced: boolean} | null> {
  const state = readSchemaRegistryState()
  if (!state || state.pid === null || !running(state)) return null
  const forced = await stopProcess(state.pid, timeoutMs)
  const {pid} = state
  writeState({...state, pid: null})
  return {what: 'schema registry', pid, forced}
}

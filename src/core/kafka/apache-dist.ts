import {execFile, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, renameSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {BugError, UserError} from '../shared/errors.js'
import {localSettings, type Settings} from '../shared/settings.js'

/**
 * Apache Kafka as Maven Central ships it: the broker and Apache's own tools (ConfigCommand,
 * GetOffsetShell, ConsoleProducer, DumpLogSegments) as jars, fetched once with mvn into a cache
 * outside the repository and run with the machine's Java 17.
 */
export const KAFKA_VERSION = '4.1.1'
const LOG4J_VERSION = '2.24.3'
// Kafka 4.1 still depends on slf4j-api 1.7; log4j's slf4j2 binding needs the 2.x API to be picked.
const SLF4J_VERSION = '2.0.17'

const run = promisify(execFile)

const distDir = () => join(localSettings().cacheDir, `kafka-${KAFKA_VERSION}`)

const POM = `<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>replayctl</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>${KAFKA_VERSION}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>${KAFKA_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>${SLF4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>${LOG4J_VERSION}</version>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId>
      <version>${LOG4J_VERSION}</version>
    </dependency>
  </dependencies>
</project>
`

// Tools log warnings to stderr only; the broker logs INFO to stdout, which dev up sends to a file.
const TOOLS_LOG4J = `status = error
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.err.ref = err
`
const BROKER_LOG4J = `status = error
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.controller.name = kafka.controller
logger.controller.level = info
`

export interface KafkaDist {
  version: string
  dir: string
  classpath: string
  java: string
  brokerLog4j: string
  toolsLog4j: string
}

/** Returns the cached distribution, fetching it with mvn the first time (about 30 s). */
export async function ensureKafkaDist(onProgress: (line: string) => void = () => {}): Promise<KafkaDist> {
  const java = findJava()
  const dir = distDir()
  const libs = join(dir, 'libs')
  const complete = join(dir, '.complete')
  if (!existsSync(complete)) {
    onProgress(`fetching Apache Kafka ${KAFKA_VERSION} jars from Maven Central into ${libs}`)
    await mavenCopy(dir, POM, libs, 'Kafka')
    if (!readdirSync(libs).some((name) => name.startsWith(`kafka_2.13-${KAFKA_VERSION}`))) {
      throw new BugError(`mvn finished but ${libs} holds no kafka_2.13 jar`)
    }
    writeFileSync(join(dir, 'log4j2-broker.properties'), BROKER_LOG4J)
    writeFileSync(join(dir, 'log4j2-tools.properties'), TOOLS_LOG4J)
    writeFileSync(complete, `${new Date().toISOString()}\n`)
  }
  return distAt(dir, java)
}

/**
 * The distribution only when Java and the cached jars are both there, for commands whose Apache
 * tool use is an extra (configs, the controller): they say what is missing at once instead of
 * fetching jars for half a minute.
 */
export function cachedKafkaDist(): KafkaDist {
  const java = findJava()
  const dir = distDir()
  if (!existsSync(join(dir, '.complete'))) {
    throw new UserError(
      'DEPENDENCY_MISSING',
      `Apache Kafka's ${KAFKA_VERSION} jars are not cached in ${dir}`,
      'run `replayctl dev up` once (it fetches them with mvn)',
    )
  }
  return distAt(dir, java)
}

/**
 * Kafka Connect as Maven Central ships it: the worker (connect-runtime, with connect-json and
 * connect-mirror, MirrorMaker 2's connectors, on its classpath as Apache's distribution has them)
 * and the FileStream connectors alone in a plugin directory, as Apache's distribution leaves them
 * off the classpath since 3.2.
 */
export interface ConnectDist {
  version: string
  dir: string
  classpath: string
  pluginPath: string
  java: string
  log4j: string
}

const connectDistDir = () => join(localSettings().cacheDir, `kafka-connect-${KAFKA_VERSION}`)

const CONNECT_POM = POM.replace('<artifactId>kafka-runtime</artifactId>', '<artifactId>connect-runtime</artifactId>')
  .replace(
    /<dependency>\s*<groupId>org.apache.kafka<\/groupId><artifactId>kafka_2.13<\/artifactId>.*?<\/dependency>/s,
    ['connect-runtime', 'connect-json', 'connect-mirror', 'connect-mirror-client', 'connect-file']
      .map(
        (artifact) =>
          `<dependency><groupId>org.apache.kafka</groupId><artifactId>${artifact}</artifactId>` +
          `<version>${KAFKA_VERSION}</version></dependency>`,
      )
      .join('\n    '),
  )
  .replace(
    /<dependency>\s*<groupId>org.apache.kafka<\/groupId><artifactId>kafka-tools<\/artifactId>.*?<\/dependency>/s,
    '',
  )

/** Returns the cached Connect worker's jars, fetching them with mvn the first time. */
export async function ensureConnectDist(onProgress: (line: string) => void = () => {}): Promise<ConnectDist> {
  const java = findJava()
  const dir = connectDistDir()
  const libs = join(dir, 'libs')
  const plugins = join(dir, 'plugins')
  if (!existsSync(join(dir, '.complete'))) {
    onProgress(`fetching Kafka Connect ${KAFKA_VERSION} jars from Maven Central into ${libs}`)
    await mavenCopy(dir, CONNECT_POM, libs, 'Kafka Connect')
    const fileJar = `connect-file-${KAFKA_VERSION}.jar`
    if (!existsSync(join(libs, fileJar))) throw new BugError(`mvn finished but ${libs} holds no ${fileJar}`)
    mkdirSync(join(plugins, 'connect-file'), {recursive: true})
    renameSync(join(libs, fileJar), join(plugins, 'connect-file', fileJar))
    writeFileSync(join(dir, 'log4j2-connect.properties'), BROKER_LOG4J)
    writeFileSync(join(dir, '.complete'), `${new Date().toISOString()}\n`)
  }
  return {
    version: KAFKA_VERSION,
    dir,
    classpath: join(libs, '*'),
    pluginPath: plugins,
    java,
    log4j: join(dir, 'log4j2-connect.properties'),
  }
}

async function mavenCopy(dir: string, pom: string, libs: string, what: string): Promise<void> {
  const mvn = findExecutable(
    'mvn',
    `Apache Maven (mvn) is needed once to fetch the ${what} jars`,
    'apt-get install -y maven',
  )
  mkdirSync(dir, {recursive: true})
  writeFileSync(join(dir, 'pom.xml'), pom)
  try {
    await run(
      mvn,
      [
        '-B',
        '-q',
        '-f',
        join(dir, 'pom.xml'),
        'dependency:copy-dependencies',
        `-DoutputDirectory=${libs}`,
        '-DincludeScope=runtime',
      ],
      {maxBuffer: 64 * 1024 * 1024},
    )
  } catch (error) {
    const output = `${(error as {stdout?: string}).stdout ?? ''}${(error as {stderr?: string}).stderr ?? ''}`
      .trim()
      .split('\n')
      .slice(-3)
      .join(' ')
    throw new UserError(
      'STACK_FAILED',
      `could not fetch the ${what} ${KAFKA_VERSION} jars with mvn (${output})`,
      'check that Maven Central is reachable and retry `replayctl dev up`',
      {cause: error},
    )
  }
}

function distAt(dir: string, java: string): KafkaDist {
  return {
    version: KAFKA_VERSION,
    dir,
    classpath: join(dir, 'libs', '*'),
    java,
    brokerLog4j: join(dir, 'log4j2-broker.properties'),
    toolsLog4j: join(dir, 'log4j2-tools.properties'),
  }
}

/**
 * How long a tool that talks to the cluster may run: the JVM's start-up (tens of seconds on a loaded
 * 2-core machine) on top of the command's --timeout, so that --timeout still bounds the command.
 */
export function kafkaToolTimeoutMs(settings: Pick<Settings, 'timeoutMs'>): number {
  return JVM_START_ALLOWANCE_MS + settings.timeoutMs
}

const JVM_START_ALLOWANCE_MS = 45_000

/** Runs one of Apache Kafka's own command-line tools from the cached jars and returns its stdout. */
export async function runKafkaTool(
  dist: KafkaDist,
  mainClass: string,
  args: string[],
  timeoutMs = 60_000,
): Promise<string> {
  const tool = mainClass.split('.').pop()
  try {
    // A tool lives for seconds: C1 only and the serial collector cut its CPU by about a third.
    const {stdout} = await run(
      dist.java,
      [
        '-Xmx512m',
        '-XX:TieredStopAtLevel=1',
        '-XX:+UseSerialGC',
        `-Dlog4j2.configurationFile=${dist.toolsLog4j}`,
        '-cp',
        dist.classpath,
        mainClass,
        ...args,
      ],
      {
        maxBuffer: 256 * 1024 * 1024,
        timeout: timeoutMs,
      },
    )
    return stdout
  } catch (error) {
    if ((error as {killed?: boolean}).killed)
      throw new UserError(
        'KAFKA_UNAVAILABLE',
        `Apache Kafka's ${tool} did not finish within ${Math.round(timeoutMs / 1000)}s`,
        'check that the broker is up (`replayctl dev status`), or give it longer with --timeout',
        {cause: error},
      )
    const stderr = String((error as {stderr?: string}).stderr ?? '')
      .trim()
      .split('\n')
      .filter(Boolean)
      .slice(-2)
      .join(' ')
    throw new UserError(
      'KAFKA_REJECTED',
      `Apache Kafka's ${tool} failed: ${stderr || (error as Error).message}`,
      'check the arguments and that the broker is up (`replayctl dev status`)',
      {cause: error},
    )
  }
}

export function findJava(): string {
  const candidate = localSettings().java
  const probe = spawnSync(candidate, ['-version'], {encoding: 'utf8'})
  if (probe.error || probe.status !== 0) {
    throw new UserError(
      'DEPENDENCY_MISSING',
      'Java 17 or newer is needed to run Apache Kafka and was not found',
      'install it with `apt-get install -y openjdk-17-jre-headless` or set JAVA_HOME',
    )
  }
  const major = Number(/version "(\d+)/.exec(probe.stderr)?.[1] ?? 0)
  if (major < 17) {
    throw new UserError(
      'DEPENDENCY_MISSING',
      `Apache Kafka ${KAFKA_VERSION} needs Java 17 or newer; ${candidate} is Java ${major}`,
      'install openjdk-17-jre-headless or point JAVA_HOME at a newer JDK',
    )
  }
  return candidate
}

export function findExecutable(name: string, why: string, install: string): string {
  const probe = spawnSync('sh', ['-c', `command -v ${name}`], {encoding: 'utf8'})
  const path = probe.stdout.trim()
  if (!path) throw new UserError('DEPENDENCY_MISSING', `${why} and was not found`, `install it with \`${install}\``)
  return path
}

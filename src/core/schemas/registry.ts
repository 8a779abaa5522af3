import {UserError, quoteInput} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'

/**
 * A Confluent-compatible Schema Registry over its REST API (Confluent's own, Apicurio's
 * /apis/ccompat/v7, Karapace): subjects, their versions, and schemas by the id that the Confluent
 * wire format puts in front of each record.
 */
export type SchemaType = 'AVRO' | 'JSON' | 'PROTOBUF'

export interface SubjectVersion {
  subject: string
  version: number
  id: number
  schemaType: SchemaType
  schema: string
}

export interface RegisteredSchema {
  id: number
  schemaType: SchemaType
  schema: string
}

interface RegistryErrorBody {
  error_code?: number
  message?: string
}

/** Confluent's error codes that mean "not there" (40401 subject, 40402 version, 40403 schema). */
const NOT_FOUND_CODES = new Set([40401, 40402, 40403])

/** Why fetch failed: its cause's code (ECONNREFUSED) or message (fetch refuses some ports), not "fetch failed". */
function connectionFailure(error: unknown): string {
  const cause = (error as {cause?: {code?: string; message?: string}}).cause
  return String(cause?.code ?? cause?.message ?? (error as Error).message)
}

async function call<T>(settings: Settings, path: string, what: string): Promise<T> {
  const base = settings.schemaRegistryUrl.replace(/\/+$/, '')
  let response: Response
  try {
    response = await fetch(`${base}${path}`, {
      headers: {accept: 'application/vnd.schemaregistry.v1+json, application/json'},
      signal: AbortSignal.timeout(settings.timeoutMs),
    })
  } catch (error) {
    const reason =
      (error as Error).name === 'TimeoutError'
        ? `no answer within ${Math.round(settings.timeoutMs / 1000)}s`
        : connectionFailure(error)
    throw new UserError(
      'SCHEMA_REGISTRY_UNAVAILABLE',
      `the schema registry at ${base} could not be reached (${reason})`,
      'start the local one with `replayctl dev up --schema-registry`, or set REPLAYCTL_SCHEMA_REGISTRY_URL',
      {cause: error},
    )
  }
  const text = await response.text()
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    body = undefined
  }
  if (response.ok && body !== undefined) return body as T
  const {error_code: code, message} = (body ?? {}) as RegistryErrorBody
  if (response.status === 404 && code !== undefined && NOT_FOUND_CODES.has(code)) {
    throw new UserError(
      code === 40403 ? 'SCHEMA_NOT_FOUND' : 'SUBJECT_NOT_FOUND',
      `the schema registry has no ${what}`,
      code === 40403 ? 'check the schema id' : 'see `replayctl schema list`',
    )
  }
  throw new UserError(
    'SCHEMA_REGISTRY_UNAVAILABLE',
    `the schema registry at ${base} answered ${what} with HTTP ${response.status}` +
      `${message ? ` (${message.slice(0, 200)})` : ''}`,
    'check REPLAYCTL_SCHEMA_REGISTRY_URL: it is the base of the Confluent-compatible API',
  )
}

export async function listSubjects(settings: Settings): Promise<string[]> {
  const subjects = await call<string[]>(settings, '/subjects', 'subject list')
  return [...subjects].sort()
}

/** `version`: a number, or undefined for the latest. */
export async function subjectVersion(settings: Settings, subject: string, version?: number): Promise<SubjectVersion> {
  const which = version === undefined ? 'latest' : String(version)
  const found = await call<{subject: string; version: number; id: number; schemaType?: SchemaType; schema: string}>(
    settings,
    `/subjects/${encodeURIComponent(subject)}/versions/${which}`,
    version === undefined ? `subject ${quoteInput(subject)}` : `version ${version} of subject ${quoteInput(subject)}`,
  )
  // Confluent leaves schemaType out for Avro, the first type it had.
  return {...found, schemaType: found.schemaType ?? 'AVRO'}
}

export async function schemaById(settings: Settings, id: number): Promise<RegisteredSchema> {
  const found = await call<{schemaType?: SchemaType; schema: string}>(settings, `/schemas/ids/${id}`, `schema id ${id}`)
  return {id, schemaType: found.schemaType ?? 'AVRO', schema: found.schema}
}

export interface SubjectSummary {
  subject: string
  version: number
  id: number
  schemaType: SchemaType
}

/** `schema list`: each subject with its latest version. */
export async function listSchemas(settings: Settings): Promise<SubjectSummary[]> {
  const subjects = await listSubjects(settings)
  const latest: SubjectVersion[] = []
  // A few requests at a time: a registry with a thousand subjects is not asked a thousand things at once.
  for (let at = 0; at < subjects.length; at += 8)
    latest.push(...(await Promise.all(subjects.slice(at, at + 8).map((subject) => subjectVersion(settings, subject)))))
  return latest.map(({subject, version, id, schemaType}) => ({subject, version, id, schemaType}))
}

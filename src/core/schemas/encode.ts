import avro from 'avsc'

import {invalidArgument, quoteInput} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {wireFormat} from './decode.js'
import {type SchemaType, subjectVersion} from './registry.js'

/**
 * `log produce --value-subject`: each event's JSON text written in the Confluent wire format with
 * one subject version's schema, fetched from the registry once. Avro values are given in Avro's
 * JSON encoding (unions as {"type": value}), what `log read --decode avro` prints, so what it read
 * can be written back; JSON Schema values are written as they are, once they parse as JSON.
 *
 * A value that does not fit is refused, never bent to fit: a field the schema does not declare is
 * an error rather than dropped (avsc alone would drop it silently).
 */
export interface ValueEncoder {
  subject: string
  version: number
  schemaId: number
  schemaType: SchemaType
  /** The value in the wire format, or what is wrong with it, worded to follow "line N of FILE ". */
  encode(text: Buffer): Buffer | EncodeProblem
}

export interface EncodeProblem {
  problem: string
}

export async function valueEncoder(settings: Settings, subject: string, version?: number): Promise<ValueEncoder> {
  const found = await subjectVersion(settings, subject, version)
  const which = `${quoteInput(subject)} version ${found.version} (id ${found.id})`
  const base = {subject: found.subject, version: found.version, schemaId: found.id, schemaType: found.schemaType}
  if (found.schemaType === 'JSON')
    return {
      ...base,
      encode: (text) => {
        try {
          JSON.parse(text.toString('utf8'))
        } catch {
          return {problem: `is not JSON, which the JSON schema of ${which} needs`}
        }
        return wireFormat(found.id, text)
      },
    }
  if (found.schemaType !== 'AVRO')
    throw invalidArgument(
      `subject ${which} holds a ${found.schemaType} schema; --value-subject writes Avro and JSON Schema values only`,
      'choose an Avro or JSON Schema subject (see `replayctl schema list`)',
    )
  let type: avro.Type
  try {
    type = avro.Type.forSchema(JSON.parse(found.schema) as avro.Schema)
  } catch (error) {
    throw invalidArgument(
      `subject ${which} holds an Avro schema avsc cannot read (${(error as Error).message})`,
      'choose another --value-subject or --value-schema-version',
    )
  }
  return {
    ...base,
    encode: (text) => {
      const source = text.toString('utf8')
      let json: unknown
      try {
        json = JSON.parse(source)
      } catch {
        return {problem: `is not JSON, which Avro's JSON encoding is`}
      }
      const misfit = misfitOf(type, json, 'the value')
      if (misfit !== undefined) return {problem: `does not fit the Avro schema of ${which}: ${misfit}`}
      return wireFormat(found.id, type.toBuffer(type.fromString(source)))
    },
  }
}

/** Why `json` is not `type` in Avro's JSON encoding, naming where (`at`); undefined when it is. */
function misfitOf(type: avro.Type, json: unknown, at: string): string | undefined {
  if (type instanceof avro.types.LogicalType) return misfitOf(type.underlyingType, json, at)
  const isObject = typeof json === 'object' && json !== null && !Array.isArray(json)
  if (type instanceof avro.types.RecordType) {
    if (!isObject) return `${at} is ${shown(json)}, not a record ${type.name ?? ''}`.trimEnd()
    const fields = json as Record<string, unknown>
    for (const name of Object.keys(fields))
      if (!type.fields.some((field) => field.name === name))
        return `${at} has a field ${quoteInput(name)} that the schema does not declare`
    for (const field of type.fields) {
      const value = fields[field.name]
      const where = `${at === 'the value' ? 'field ' : `${at}.`}${field.name}`
      if (value === undefined) {
        if (field.defaultValue() === undefined) return `${where} is missing and has no default`
        continue
      }
      const misfit = misfitOf(field.type, value, where)
      if (misfit !== undefined) return misfit
    }
    return undefined
  }
  if (type instanceof avro.types.ArrayType) {
    if (!Array.isArray(json)) return `${at} is ${shown(json)}, not an array`
    for (const [index, item] of json.entries()) {
      const misfit = misfitOf(type.itemsType, item, `${at}[${index}]`)
      if (misfit !== undefined) return misfit
    }
    return undefined
  }
  if (type instanceof avro.types.MapType) {
    if (!isObject) return `${at} is ${shown(json)}, not a map`
    for (const [key, value] of Object.entries(json as Record<string, unknown>)) {
      const misfit = misfitOf(type.valuesType as avro.Type, value, `${at}[${JSON.stringify(key)}]`)
      if (misfit !== undefined) return misfit
    }
    return undefined
  }
  if (type instanceof avro.types.UnwrappedUnionType || type instanceof avro.types.WrappedUnionType) {
    const names = type.types.map((branch) => branch.branchName ?? 'null')
    if (json === null)
      return names.includes('null') ? undefined : `${at} is null, which the union ${shownNames(names)} lacks`
    const keys = isObject ? Object.keys(json as object) : []
    const [name] = keys
    const branch = type.types.find((candidate) => candidate.branchName === name)
    if (keys.length !== 1 || name === undefined || branch === undefined)
      return `${at} is ${shown(json)}, not a branch of ${shownNames(names)} written as {"branch": value}`
    return misfitOf(branch, (json as Record<string, unknown>)[name], `${at}.${name}`)
  }
  try {
    type.fromString(JSON.stringify(json))
  } catch {
    return `${at} is ${shown(json)}, not ${type.branchName ?? type.typeName}`
  }
  return undefined
}

/** JSON as written (JSON.stringify escapes control characters), shortened. */
function shown(json: unknown): string {
  const text = JSON.stringify(json)
  return text.length > 30 ? `${text.slice(0, 30)}...` : text
}

function shownNames(names: string[]): string {
  return `[${names.join(', ')}]`
}

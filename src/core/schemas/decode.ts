import type avro from 'avsc'

import {UserError} from '../shared/errors.js'
import type {Settings} from '../shared/settings.js'
import {type RegisteredSchema, schemaById} from './registry.js'

/**
 * Values in the Confluent wire format: magic byte 0, the schema's registry id as 4 bytes
 * big-endian, then the payload (Avro binary, or JSON text for JSON Schema). Each schema id is
 * fetched from the registry once per decoder.
 */
export const DECODINGS = ['avro', 'json-schema'] as const
export type Decoding = (typeof DECODINGS)[number]

const MAGIC = 0
const HEADER_LENGTH = 5

export interface DecodedValue {
  schemaId: number
  /** Avro in Avro's JSON encoding (unions as {"type": value}, as kcat -s value=avro prints it); JSON as parsed. */
  value: unknown
}

/** Where a record sits, for messages. */
export interface RecordPlace {
  topic: string
  partition: number
  offset: number
}

const SCHEMA_TYPE: Record<Decoding, RegisteredSchema['schemaType']> = {avro: 'AVRO', 'json-schema': 'JSON'}

export function wireFormat(schemaId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(HEADER_LENGTH)
  header.writeUInt8(MAGIC, 0)
  header.writeUInt32BE(schemaId, 1)
  return Buffer.concat([header, payload])
}

export class ValueDecoder {
  private readonly schemas = new Map<number, Promise<(payload: Buffer) => unknown>>()

  constructor(
    private readonly settings: Settings,
    readonly decoding: Decoding,
  ) {}

  /** The value decoded, or null for a null value (a tombstone). */
  async decode(value: Buffer | null, place: RecordPlace): Promise<DecodedValue | null> {
    if (value === null) return null
    const where = `the value at ${place.topic}/${place.partition}@${place.offset}`
    if (value.length < HEADER_LENGTH || value[0] !== MAGIC)
      throw undecodable(
        `${where} is not in the Confluent wire format (it ${
          value.length < HEADER_LENGTH ? `is only ${value.length} bytes` : `starts with byte ${value[0]}, not 0`
        })`,
      )
    const schemaId = value.readUInt32BE(1)
    const decode = await this.decoderFor(schemaId, where)
    try {
      return {schemaId, value: decode(value.subarray(HEADER_LENGTH))}
    } catch (error) {
      throw undecodable(`${where} does not decode with schema id ${schemaId} (${(error as Error).message})`)
    }
  }

  private decoderFor(schemaId: number, where: string): Promise<(payload: Buffer) => unknown> {
    let found = this.schemas.get(schemaId)
    if (!found) {
      found = this.load(schemaId, where)
      this.schemas.set(schemaId, found)
    }
    return found
  }

  private async load(schemaId: number, where: string): Promise<(payload: Buffer) => unknown> {
    let schema: RegisteredSchema
    try {
      schema = await schemaById(this.settings, schemaId)
    } catch (error) {
      if (error instanceof UserError && error.code === 'SCHEMA_NOT_FOUND')
        throw undecodable(`${where} names schema id ${schemaId}, which the schema registry does not have`)
      throw error
    }
    if (schema.schemaType !== SCHEMA_TYPE[this.decoding])
      throw undecodable(
        `${where} names schema id ${schemaId} of type ${schema.schemaType}, not ${SCHEMA_TYPE[this.decoding]}`,
      )
    if (this.decoding === 'json-schema') return (payload) => JSON.parse(payload.toString('utf8'))
    // avsc is loaded only for --decode avro: every other read would pay for its start and heap.
    const {default: avsc} = await import('avsc')
    let type: avro.Type
    try {
      type = avsc.Type.forSchema(JSON.parse(schema.schema) as avro.Schema)
    } catch (error) {
      throw undecodable(`schema id ${schemaId} is not an Avro schema avsc can read (${(error as Error).message})`)
    }
    return (payload) => JSON.parse(type.toString(type.fromBuffer(payload)))
  }
}

function undecodable(message: string): UserError {
  return new UserError(
    'RECORD_NOT_DECODABLE',
    message,
    'read it without --decode, or choose the --decode its producer used',
  )
}

// `uniqueItems` for payload schemas, in time linear in the payload's size
// (docs/configuration.md#payload-schemas). ajv compares every pair of items unless the schema
// declares them strings, numbers or booleans: measured, 8,000 small objects (87 KB) took
// 1.2 s and 32,000 (373 KB) 19 s; a one-megabyte frame of `{}` items would take half an hour,
// during which kahets, one thread, reads no client.
//
// Here each item is written once in a canonical form (JSON with object keys sorted), and the
// forms go into a set. For what JSON.parse returns (null, booleans, numbers, strings, arrays
// and plain objects) two items have the same form exactly when ajv's deep equality calls them
// equal: JSON.stringify writes a number the same way for equal values (0 and -0 both as 0),
// arrays keep their order, and objects compare key by key whatever the order.
import type { Ajv } from 'ajv'

function canonical (v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o).sort().map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`).join(',')}}`
}

interface UniqueItems {
  (schema: boolean, data: unknown[]): boolean
  errors?: Array<{ keyword: string, message: string, params: { i: number, j: number } }>
}

/** Replaces ajv's uniqueItems keyword on `ajv` with the linear check above. */
export function useLinearUniqueItems (ajv: Ajv): void {
  const validate: UniqueItems = (schema, data) => {
    validate.errors = undefined
    if (!schema) return true
    const seen = new Map<string, number>()
    for (let i = 0; i < data.length; i++) {
      const form = canonical(data[i])
      const j = seen.get(form)
      if (j !== undefined) {
        // ajv's own wording and params: i the later item, j the earlier one.
        validate.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`, params: { i, j } }]
        return false
      }
      seen.set(form, i)
    }
    return true
  }
  ajv.removeKeyword('uniqueItems')
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate })
}

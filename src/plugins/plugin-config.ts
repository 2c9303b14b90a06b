/**
 * Plugin configurations against their Avro schemas (avsc): every plugin kind and every built-in
 * owner verifier type declares its config this way, so a bad config is refused with the path of the
 * bad value when it is set, and top-level record fields missing from it get their schema defaults.
 */
import avro from 'avsc';
import { LatchkeyError } from '../errors.js';

/** The avsc type of a config schema; LK_PLUGIN_INVALID if avsc refuses the schema. */
export function compileConfigSchema(label: string, schema: unknown): avro.Type {
  try {
    return avro.Type.forSchema(schema as avro.Schema, { wrapUnions: false });
  } catch (err) {
    throw new LatchkeyError('LK_PLUGIN_INVALID', `${label}: configSchema is not a valid Avro schema: ${(err as Error).message}`, { cause: err });
  }
}

/** Validate `config` against an Avro record schema and fill top-level defaults. */
export function validatePluginConfig(label: string, schema: unknown, config: unknown): unknown {
  const type = compileConfigSchema(label, schema);
  let value = config;
  const fields = (schema as { fields?: Array<{ name: string; default?: unknown }> }).fields;
  if (fields && value && typeof value === 'object' && !Array.isArray(value)) {
    const filled: Record<string, unknown> = { ...(value as Record<string, unknown>) };
    for (const f of fields) if (!(f.name in filled) && 'default' in f) filled[f.name] = f.default;
    for (const k of Object.keys(filled)) {
      if (!fields.some((f) => f.name === k)) throw new LatchkeyError('LK_CONFIG_UNKNOWN_KEY', `${label}: config key ${k}`);
    }
    value = filled;
  }
  const problems: string[] = [];
  const ok = type.isValid(value, { errorHook: (p) => problems.push(p.join('.') || '(root)') });
  if (!ok) throw new LatchkeyError('LK_CONFIG_INVALID_VALUE', `${label}: config does not match its schema at ${problems.join(', ')}`);
  return value;
}

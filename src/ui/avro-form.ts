/**
 * A form generated from an Avro record schema: Kaa's "Add user verifier" page, where the fields of
 * the configuration come from the verifier type's schema (GET /admin/v1/verifier-types).
 *
 * The form only turns what was typed into JSON of the right shape (numbers, booleans, lists); it
 * does not judge the values: the server validates the configuration against the same schema and
 * its own range checks, and its message (LK_BAD_VERIFIER_CONFIG: ...) is what the operator sees.
 * A field left empty is left out, so the server fills its default or says it is missing.
 *
 * Mapping: string -> text (password when the name says secret/password), int/long -> integer,
 * float/double -> number, boolean -> checkbox, enum -> drop-down, array of primitives -> one item
 * per line, map of strings -> key=value lines, ["null", T] -> optional T, a nested record -> a
 * fieldset of its fields; anything else -> a JSON text area.
 */
import { field, h } from './dom.js';

export interface AvroField {
  name: string;
  type: unknown;
  doc?: string;
  default?: unknown;
}

export type ReadResult = { ok: true; value: Record<string, unknown> } | { ok: false; field: string; message: string };

interface Control {
  element: HTMLElement;
  /** undefined: leave the field out. */
  read(): { ok: true; value: unknown } | { ok: false; message: string };
}

const PRIMITIVE_NUMBER = new Set(['int', 'long', 'float', 'double']);

function typeName(t: unknown): string {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && !Array.isArray(t)) return String((t as { type?: unknown }).type);
  return Array.isArray(t) ? 'union' : 'unknown';
}

/** The non-null branch of ["null", T] (or [T, "null"]), or null when `t` is not such a union. */
function optionalOf(t: unknown): unknown {
  if (!Array.isArray(t) || t.length !== 2) return null;
  const other = t.filter((b) => b !== 'null');
  return other.length === 1 ? other[0] : null;
}

function parseScalar(kind: string, text: string): { ok: true; value: unknown } | { ok: false; message: string } {
  if (kind === 'int' || kind === 'long') {
    if (!/^-?\d+$/.test(text.trim())) return { ok: false, message: 'must be a whole number' };
    return { ok: true, value: Number(text.trim()) };
  }
  if (kind === 'float' || kind === 'double') {
    const n = Number(text.trim());
    return Number.isFinite(n) && text.trim() !== '' ? { ok: true, value: n } : { ok: false, message: 'must be a number' };
  }
  if (kind === 'boolean') return text === 'true' || text === 'false' ? { ok: true, value: text === 'true' } : { ok: false, message: 'must be true or false' };
  return { ok: true, value: text };
}

function control(name: string, type: unknown, def: unknown, hasDefault: boolean, path: string): Control {
  const opt = optionalOf(type);
  if (opt !== null) {
    const inner = control(name, opt, def === null ? undefined : def, hasDefault && def !== null, path);
    return {
      element: inner.element,
      read: () => {
        const r = inner.read();
        return r.ok && r.value === undefined ? { ok: true, value: hasDefault ? undefined : null } : r;
      },
    };
  }
  const kind = typeName(type);
  const id = `cfg-${path.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  if (kind === 'string' || PRIMITIVE_NUMBER.has(kind)) {
    const secret = kind === 'string' && /secret|password/i.test(name);
    const input = h('input', {
      id, name: path, type: secret ? 'password' : kind === 'string' ? 'text' : 'number', autocomplete: 'off',
      ...(kind === 'int' || kind === 'long' ? { step: '1', inputmode: 'numeric' } : kind === 'string' ? {} : { step: 'any' }),
      ...(hasDefault && def !== null && def !== undefined ? { value: String(def) } : {}),
    });
    return {
      element: input,
      read: () => (input.value === '' ? { ok: true, value: undefined } : parseScalar(kind, input.value)),
    };
  }
  if (kind === 'boolean') {
    const input = h('input', { id, name: path, type: 'checkbox', checked: def === true });
    return { element: input, read: () => ({ ok: true, value: input.checked }) };
  }
  if (kind === 'enum') {
    const symbols = ((type as { symbols?: unknown }).symbols as string[] | undefined) ?? [];
    const select = h('select', { id, name: path },
      h('option', { value: '' }, hasDefault ? `(default: ${String(def)})` : '— choose —'),
      ...symbols.map((s) => h('option', { value: s }, s)));
    return { element: select, read: () => ({ ok: true, value: select.value === '' ? undefined : select.value }) };
  }
  if (kind === 'array' || kind === 'map') {
    const inner = kind === 'array' ? (type as { items?: unknown }).items : (type as { values?: unknown }).values;
    const innerKind = typeName(inner);
    if (['string', 'boolean', ...PRIMITIVE_NUMBER].includes(innerKind)) {
      const initial = Array.isArray(def) ? def.map(String).join('\n')
        : kind === 'map' && def && typeof def === 'object' ? Object.entries(def as Record<string, unknown>).map(([k, v]) => `${k}=${String(v)}`).join('\n') : '';
      const area = h('textarea', { id, name: path, rows: 3, spellcheck: 'false', placeholder: kind === 'array' ? 'one per line' : 'key=value, one per line' }, initial);
      return {
        element: area,
        read: () => {
          const lines = area.value.split('\n').map((l) => l.trim()).filter((l) => l !== '');
          if (lines.length === 0 && area.value.trim() === '' && hasDefault) return { ok: true, value: undefined };
          if (kind === 'array') {
            const out: unknown[] = [];
            for (const l of lines) {
              const r = parseScalar(innerKind, l);
              if (!r.ok) return { ok: false, message: `"${l}" ${r.message}` };
              out.push(r.value);
            }
            return { ok: true, value: out };
          }
          const out: Record<string, unknown> = {};
          for (const l of lines) {
            const i = l.indexOf('=');
            if (i <= 0) return { ok: false, message: `"${l}" is not key=value` };
            const r = parseScalar(innerKind, l.slice(i + 1));
            if (!r.ok) return { ok: false, message: `"${l}" ${r.message}` };
            out[l.slice(0, i)] = r.value;
          }
          return { ok: true, value: out };
        },
      };
    }
  }
  if (kind === 'record') {
    const sub = recordForm(type as { fields?: AvroField[] }, path);
    return {
      element: h('fieldset', { class: 'nested' }, sub.element),
      read: () => {
        const r = sub.read();
        return r.ok ? { ok: true, value: r.value } : { ok: false, message: `${r.field}: ${r.message}` };
      },
    };
  }
  // Anything else (unions of several types, fixed, bytes...): JSON, as the API takes it.
  const area = h('textarea', { id, name: path, rows: 3, spellcheck: 'false', placeholder: 'JSON' }, hasDefault ? JSON.stringify(def) : '');
  return {
    element: area,
    read: () => {
      if (area.value.trim() === '') return { ok: true, value: undefined };
      try {
        return { ok: true, value: JSON.parse(area.value) as unknown };
      } catch {
        return { ok: false, message: 'is not valid JSON' };
      }
    },
  };
}

function describeType(t: unknown): string {
  const opt = optionalOf(t);
  if (opt !== null) return `${describeType(opt)}, optional`;
  const k = typeName(t);
  if (k === 'array') return `list of ${describeType((t as { items: unknown }).items)}`;
  if (k === 'map') return `map of ${describeType((t as { values: unknown }).values)}`;
  return k;
}

/** The form for one record schema; `read()` returns the JSON object to send, or the first problem. */
export function recordForm(schema: { fields?: AvroField[]; doc?: string }, prefix = ''): { element: HTMLElement; read(): ReadResult } {
  const fields = schema.fields ?? [];
  const controls: Array<{ name: string; c: Control }> = [];
  const wrap = h('div', { class: 'avro-form' });
  if (fields.length === 0) wrap.append(h('p', { class: 'help' }, schema.doc ?? 'This type has no settings.'));
  for (const f of fields) {
    const hasDefault = Object.prototype.hasOwnProperty.call(f, 'default');
    const path = prefix ? `${prefix}.${f.name}` : f.name;
    const c = control(f.name, f.type, f.default, hasDefault, path);
    controls.push({ name: f.name, c });
    const help = [f.doc, `(${describeType(f.type)}${hasDefault ? `; default ${JSON.stringify(f.default)}` : ''})`].filter(Boolean).join(' ');
    const required = !hasDefault && optionalOf(f.type) === null && typeName(f.type) !== 'boolean';
    wrap.append(field(f.name, c.element, help, required));
  }
  return {
    element: wrap,
    read: () => {
      const value: Record<string, unknown> = {};
      for (const { name, c } of controls) {
        const r = c.read();
        if (!r.ok) return { ok: false, field: prefix ? `${prefix}.${name}` : name, message: r.message };
        if (r.value !== undefined) value[name] = r.value;
      }
      return { ok: true, value };
    },
  };
}

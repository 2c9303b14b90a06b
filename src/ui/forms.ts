/** Form plumbing shared by the pages: submit once at a time, show the server's refusal in place. */
import { errorBox } from './app.js';
import { clear, h } from './dom.js';

/**
 * A form that runs `action` on submit. While it runs the submit button is disabled; a refusal
 * (an ApiError: its code and message) appears inside the form, under the fields, as well as being
 * returned to the caller's flash when `flash` is given.
 */
export function form(attrs: { id: string; class?: string }, children: HTMLElement[], submitLabel: string, action: () => Promise<void>): HTMLFormElement {
  const errors = h('div', { class: 'form-errors', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const f = h('form', { id: attrs.id, class: `card form ${attrs.class ?? ''}`, novalidate: true }, ...children, errors, h('div', { class: 'actions' }, submit));
  f.addEventListener('submit', (ev) => {
    ev.preventDefault();
    clear(errors);
    submit.disabled = true;
    void action().catch((e: unknown) => errors.append(errorBox(e))).finally(() => (submit.disabled = false));
  });
  return f;
}

/** Parse an optional JSON object typed by the operator; '' is undefined. Throws a readable error. */
export function jsonObject(text: string, what: string): Record<string, unknown> | undefined {
  if (text.trim() === '') return undefined;
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new Error(`${what} is not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${what} must be a JSON object`);
  return v as Record<string, unknown>;
}

/** A section: a heading and its content. */
export function section(title: string, ...content: Array<HTMLElement | null>): HTMLElement {
  return h('section', { class: 'panel' }, h('h3', {}, title), ...content.filter((c): c is HTMLElement => c !== null));
}

/** A section as wide as the page (lists and tables), above the half-width forms of a grid. */
export function wideSection(title: string, ...content: Array<HTMLElement | null>): HTMLElement {
  const s = section(title, ...content);
  s.classList.add('wide');
  return s;
}

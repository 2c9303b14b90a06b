/**
 * A few DOM helpers, so pages build elements instead of HTML strings: text from the server (names,
 * profiles, error messages) is always set as text, never parsed as markup.
 */
export type Child = Node | string | number | null | undefined | false;
type Handler = (ev: Event) => void;
export type Attrs = Record<string, string | number | boolean | Handler | null | undefined>;

/** `h('button', { class: 'primary', onclick: go }, 'Save')`. Booleans set properties (disabled, checked). */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (v === true) {
      if (k in el) (el as unknown as Record<string, unknown>)[k] = true;
      else el.setAttribute(k, '');
    } else if (k === 'value' && 'value' in el) (el as HTMLInputElement).value = String(v);
    else el.setAttribute(k, String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el: Element | DocumentFragment, ...children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** A table whose cells carry their column name (data-label), so phones can show rows as cards. */
export function table(columns: string[], rows: Child[][], empty = 'Nothing here yet.'): HTMLElement {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, ...r.map((cell, i) => h('td', { 'data-label': columns[i] ?? '' }, cell)))))));
}

/** A labelled form field: label text, the control, optional help below it. */
export function field(label: string, control: HTMLElement, help?: string | null, required = false): HTMLElement {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  return h('div', { class: 'field' },
    h('label', { for: id }, label, required ? h('span', { class: 'req', title: 'required' }, ' *') : null),
    control,
    help ? h('small', { class: 'help' }, help) : null);
}

export function time(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return `${d.toISOString().slice(0, 10)} ${d.toTimeString().slice(0, 8)}`;
}

/** Monospace text with a copy button. */
export function code(text: string, short = false): HTMLElement {
  const shown = short && text.length > 16 ? `${text.slice(0, 8)}…${text.slice(-6)}` : text;
  return h('span', { class: 'mono-wrap' },
    h('code', { title: text }, shown),
    h('button', { type: 'button', class: 'copy', title: 'copy to the clipboard', onclick: () => void navigator.clipboard?.writeText(text).catch(() => undefined) }, 'copy'));
}

export function badge(text: string, kind = text.toLowerCase()): HTMLElement {
  return h('span', { class: `badge badge-${kind.replace(/[^a-z0-9_-]/g, '')}` }, text);
}

/**
 * A button that asks once more before it acts (no modal dialogs: they block phones and tests
 * alike): the first click arms it for 5 s, the second runs `action`.
 */
export function confirmButton(label: string, confirmLabel: string, action: () => Promise<void> | void, cls = 'danger'): HTMLButtonElement {
  let armed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const b = h('button', { type: 'button', class: cls }, label);
  b.addEventListener('click', () => {
    if (!armed) {
      armed = true;
      b.textContent = confirmLabel;
      b.classList.add('armed');
      timer = setTimeout(() => {
        armed = false;
        b.textContent = label;
        b.classList.remove('armed');
      }, 5000);
      return;
    }
    clearTimeout(timer);
    b.disabled = true;
    void Promise.resolve(action()).finally(() => {
      b.disabled = false;
      armed = false;
      b.textContent = label;
      b.classList.remove('armed');
    });
  });
  return b;
}

/** Pretty JSON for display, or the text itself when it is not JSON-able. */
export function pretty(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

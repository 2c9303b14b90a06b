/**
 * The Administration UI's shell: sign-in with an admin API key (kept in sessionStorage, so it
 * leaves with the tab), the tenant and application the pages work on, the navigation and the
 * hash router (#/credentials). Pages live in pages/*.ts and speak only the admin REST API.
 *
 * Failure is always visible: a refused key shows the sign-in form with the server's code; a 401
 * later (the key was deleted) signs out with that code; a 403 (a tenant key on a root-only action)
 * says so where it happened; a bug in a page shows an error box, never a blank page.
 */
import { Api, ApiError, seg, type Me } from './api.js';
import { clear, field, h } from './dom.js';
import type { Application, Items, Tenant } from './types.js';

export interface PageCtx {
  api: Api;
  me: Me;
  root: boolean;
  tenantId: string | null;
  tenants: Tenant[];
  app: Application | null;
  apps: Application[];
  /** A message above the page: success (ok) or an error (a thrown ApiError shows its code). */
  flash(msg: string | unknown, kind?: 'ok' | 'error'): void;
  /** Render the current page again (after a change). */
  refresh(): Promise<void>;
  /** Reload tenants and applications (after creating one), then render. */
  reloadContext(select?: { tenantId?: string; appId?: string }): Promise<void>;
  /** Timers a page starts (polls): cleared when another page renders. */
  every(ms: number, fn: () => Promise<void> | void): void;
}

export interface Page {
  id: string;
  title: string;
  /** Shown to root keys only (the API refuses tenant keys with 403 anyway). */
  rootOnly?: boolean;
  needs?: 'tenant' | 'app';
  render(ctx: PageCtx): Promise<HTMLElement>;
}

const KEY_STORAGE = 'latchkey.adminKey';
const CONTEXT_STORAGE = 'latchkey.ui.context';

/** An error as the operator sees it: the catalogue code, then the server's message. */
export function errorBox(err: unknown): HTMLElement {
  if (err instanceof ApiError) {
    const hint = err.status === 403 ? ' — this API key\'s scope does not allow it (tenant keys see their own tenant only).' : '';
    return h('div', { class: 'error', role: 'alert' }, h('strong', { class: 'code' }, err.code), ' ', err.message, hint);
  }
  return h('div', { class: 'error', role: 'alert' }, h('strong', { class: 'code' }, 'UI_ERROR'), ' ', err instanceof Error ? err.message : String(err));
}

export function startApp(root: HTMLElement, pages: Page[]): void {
  let timers: Array<ReturnType<typeof setInterval>> = [];
  let me: Me | null = null;
  let api: Api | null = null;
  let tenants: Tenant[] = [];
  let apps: Application[] = [];
  let context: { tenantId: string | null; appId: string | null } = loadContext();
  let renderSeq = 0;

  const stopTimers = (): void => {
    for (const t of timers) clearInterval(t);
    timers = [];
  };

  function loadContext(): { tenantId: string | null; appId: string | null } {
    try {
      const c = JSON.parse(sessionStorage.getItem(CONTEXT_STORAGE) ?? '{}') as { tenantId?: string; appId?: string };
      return { tenantId: c.tenantId ?? null, appId: c.appId ?? null };
    } catch {
      return { tenantId: null, appId: null };
    }
  }
  const saveContext = (): void => sessionStorage.setItem(CONTEXT_STORAGE, JSON.stringify(context));

  // --- sign-in ---
  function showSignIn(err?: unknown): void {
    stopTimers();
    me = null;
    api = null;
    clear(root);
    const input = h('input', { type: 'password', name: 'apiKey', autocomplete: 'off', placeholder: 'lk_<id>.<secret>', spellcheck: 'false' });
    const errors = h('div', { class: 'signin-errors', 'aria-live': 'polite' });
    if (err) errors.append(errorBox(err));
    const button = h('button', { type: 'submit', class: 'primary' }, 'Sign in');
    const form = h('form', { class: 'card signin', id: 'signin' },
      h('h1', {}, 'latchkey ', h('span', { class: 'muted' }, 'administration')),
      h('p', { class: 'muted' }, 'Sign in with an admin API key: a root key, or a key of one tenant. The first start of the server prints a root key once.'),
      field('Admin API key', input, null, true),
      errors,
      button);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      button.disabled = true;
      clear(errors);
      void signIn(input.value.trim()).catch((e: unknown) => {
        clear(errors);
        errors.append(errorBox(e));
      }).finally(() => (button.disabled = false));
    });
    root.append(h('div', { class: 'signin-wrap' }, form));
    input.focus();
  }

  async function signIn(key: string): Promise<void> {
    // The server judges the key, an empty one included (LK_AUTH_REQUIRED), so the sign-in error
    // is the catalogue's, as for every other call.
    const candidate = new Api(key);
    const who = await candidate.get<Me>('/admin/v1/me');
    sessionStorage.setItem(KEY_STORAGE, key);
    api = candidate;
    me = who;
    if (who.tenantId !== null) context.tenantId = who.tenantId;
    await loadTenantsAndApps();
    if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/tenants';
    else await render();
  }

  function signOut(): void {
    sessionStorage.removeItem(KEY_STORAGE);
    showSignIn();
  }

  async function loadTenantsAndApps(): Promise<void> {
    tenants = (await api!.get<Items<Tenant>>('/admin/v1/tenants')).items;
    if (context.tenantId !== null && !tenants.some((t) => t.id === context.tenantId)) context.tenantId = null;
    if (context.tenantId === null && tenants.length > 0) context.tenantId = tenants[0]!.id;
    apps = context.tenantId ? (await api!.get<Items<Application>>(`/admin/v1/tenants/${seg(context.tenantId)}/applications`)).items : [];
    if (context.appId !== null && !apps.some((a) => a.id === context.appId)) context.appId = null;
    if (context.appId === null && apps.length > 0) context.appId = apps[0]!.id;
    saveContext();
  }

  // --- the shell ---
  const flashArea = h('div', { id: 'flash', 'aria-live': 'polite' });
  const flash = (msg: string | unknown, kind: 'ok' | 'error' = 'ok'): void => {
    clear(flashArea);
    if (kind === 'error' || typeof msg !== 'string') {
      flashArea.append(errorBox(msg));
      if (msg instanceof ApiError && msg.status === 401) signOutWith(msg);
      return;
    }
    flashArea.append(h('div', { class: 'ok', role: 'status' }, msg, h('button', { type: 'button', class: 'icon', 'aria-label': 'dismiss', onclick: () => clear(flashArea) }, '×')));
  };
  const signOutWith = (err: unknown): void => {
    sessionStorage.removeItem(KEY_STORAGE);
    showSignIn(err);
  };

  function currentPage(): Page {
    const id = location.hash.replace(/^#\/?/, '').split('?')[0] || 'tenants';
    return pages.find((p) => p.id === id) ?? pages[0]!;
  }

  async function render(): Promise<void> {
    if (!api || !me) return;
    stopTimers();
    const seq = ++renderSeq;
    const page = currentPage();
    const isRoot = me.tenantId === null;
    const app = apps.find((a) => a.id === context.appId) ?? null;

    const tenantSelect = h('select', { id: 'ctx-tenant', 'aria-label': 'tenant', disabled: tenants.length === 0 || !isRoot },
      ...(tenants.length === 0 ? [h('option', { value: '' }, 'no tenants')] : tenants.map((t) => h('option', { value: t.id, selected: t.id === context.tenantId }, `${t.name} (${t.id})`))));
    tenantSelect.addEventListener('change', () => {
      context = { tenantId: tenantSelect.value, appId: null };
      void reloadContext().catch((e: unknown) => flash(e, 'error'));
    });
    const appSelect = h('select', { id: 'ctx-app', 'aria-label': 'application', disabled: apps.length === 0 },
      ...(apps.length === 0 ? [h('option', { value: '' }, 'no applications')] : apps.map((a) => h('option', { value: a.id, selected: a.id === context.appId }, a.name))));
    appSelect.addEventListener('change', () => {
      context.appId = appSelect.value;
      saveContext();
      void render();
    });

    const nav = h('nav', { class: 'side', 'aria-label': 'pages' },
      ...pages.filter((p) => isRoot || !p.rootOnly).map((p) => h('a', { href: `#/${p.id}`, class: p.id === page.id ? 'active' : '', ...(p.id === page.id ? { 'aria-current': 'page' } : {}) }, p.title)));
    const main = h('main', { id: 'view' }, flashArea, h('h2', {}, page.title), h('p', { class: 'muted loading' }, 'Loading…'));
    clear(root);
    root.append(
      h('header', { class: 'top' },
        h('a', { class: 'brand', href: '#/tenants' }, 'latchkey'),
        h('div', { class: 'context' }, h('label', {}, h('span', {}, 'Tenant'), tenantSelect), h('label', {}, h('span', {}, 'Application'), appSelect)),
        h('div', { class: 'who' },
          h('span', { class: 'key', title: `API key ${me.id}` }, isRoot ? 'root key' : `tenant ${me.tenantId}`, me.name ? ` · ${me.name}` : ''),
          h('button', { type: 'button', id: 'signout', onclick: signOut }, 'Sign out'))),
      h('div', { class: 'body' }, nav, main));
    // On a phone the navigation is a horizontal strip: bring the current page's link into view.
    nav.querySelector('a.active')?.scrollIntoView({ block: 'nearest', inline: 'center' });

    const ctx: PageCtx = {
      api, me, root: isRoot, tenantId: context.tenantId, tenants, app, apps, flash,
      refresh: render,
      reloadContext,
      every: (ms, fn) => {
        timers.push(setInterval(() => {
          if (seq !== renderSeq) return;
          void Promise.resolve(fn()).catch((e: unknown) => flash(e, 'error'));
        }, ms));
      },
    };
    let content: HTMLElement;
    if (page.rootOnly && !isRoot) content = errorBox(new ApiError(403, 'LK_FORBIDDEN', 'this page needs a root API key'));
    else if (page.needs === 'tenant' && !context.tenantId) content = h('p', { class: 'empty' }, 'No tenant yet: create one on the Tenants page.');
    else if (page.needs === 'app' && !app) content = h('p', { class: 'empty' }, 'No application selected: create one on the Applications page, or choose one above.');
    else {
      try {
        content = await page.render(ctx);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401) return signOutWith(e);
        content = errorBox(e);
      }
    }
    if (seq !== renderSeq) return;
    main.querySelector('.loading')?.replaceWith(content);
  }

  async function reloadContext(select: { tenantId?: string; appId?: string } = {}): Promise<void> {
    if (select.tenantId !== undefined) context = { tenantId: select.tenantId, appId: null };
    if (select.appId !== undefined) context.appId = select.appId;
    saveContext();
    await loadTenantsAndApps();
    await render();
  }

  window.addEventListener('hashchange', () => {
    clear(flashArea);
    void render();
  });
  window.addEventListener('unhandledrejection', (ev) => flash(ev.reason, 'error'));

  const stored = sessionStorage.getItem(KEY_STORAGE);
  if (stored) {
    clear(root);
    root.append(h('p', { class: 'muted signin-wrap' }, 'Signing in…'));
    void signIn(stored).catch((e: unknown) => {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn(e);
    });
  } else showSignIn();
}

/**
 * FakeCassandra: an in-memory stand-in for a Cassandra cluster with one replica, enough to run
 * CassandraStore (src/store/store-cassandra.ts) through the store contract where no Cassandra
 * server can run. It builds its tables from the store's own CREATE TABLE statements (schema()) and
 * executes the CQL shapes the store sends, refusing what Cassandra 2.2 refuses among them:
 * - SELECT cols FROM t [WHERE pk = ? AND ... [AND ck = ? ...] [AND ck >|>=|<|<= ? ...]] [LIMIT n]:
 *   the whole partition key by equality, clustering restrictions a prefix of equalities then one
 *   range on the next column, no restriction on other columns (ALLOW FILTERING is never used);
 * - INSERT ... VALUES ... [IF NOT EXISTS] [USING TTL ?], UPDATE t [USING TTL ?] SET ... WHERE the
 *   whole primary key (only the partition key when only static columns are set) [IF EXISTS | IF
 *   col = v AND ...], DELETE FROM t WHERE the whole primary key or partition key [IF ...] (no range
 *   deletes: Cassandra 3.0+);
 * - batches; a batch with a condition must stay in one partition of one table, and applies all of
 *   its statements iff every condition holds (a lightweight transaction).
 * Bound values are checked against the column types (a string bound to an int column is an
 * error), `types.unset` leaves a column alone, null deletes a cell, an empty list is null (as
 * cassandra-driver encodes it), bigint columns read back as types.Long, and a row read for a
 * column the SELECT did not name throws.
 *
 * What it measures: for every SELECT, the live rows it returned and the tombstones (deleted rows)
 * it passed inside its clustering slice before reaching its LIMIT, which is what Cassandra counts
 * against tombstone_warn_threshold / tombstone_failure_threshold (1,000 / 100,000).
 *
 * What it is not: a check that a real server accepts the CQL or behaves the same (consistency
 * levels, Paxos, timestamps, paging and schema agreement are not modelled; every statement applies
 * at once, in arrival order, after a setImmediate so concurrent calls interleave).
 */
import { errors, types } from 'cassandra-driver';
import { schema } from '../../src/store/cassandra/schema.js';

interface Column {
  name: string;
  type: string;
  isStatic: boolean;
}

interface Table {
  name: string;
  columns: Map<string, Column>;
  partitionKey: string[];
  clustering: string[];
  partitions: Map<string, Partition>;
}

interface Cell {
  value: unknown;
  /** ms since the epoch, or null: no TTL. */
  expiresAt: number | null;
}

interface Row {
  ck: unknown[];
  cells: Map<string, Cell>;
  /** The row marker an INSERT writes (null: none, e.g. a row only UPDATEs wrote). */
  marker: Cell | null;
}

interface Partition {
  key: unknown[];
  statics: Map<string, Cell>;
  /** Sorted by clustering key. A row with no live marker or cell is a tombstone. */
  rows: Row[];
}

type Term = { kind: 'param'; index: number } | { kind: 'literal'; value: unknown };

interface Restriction {
  column: string;
  op: '=' | '>' | '>=' | '<' | '<=';
  term: Term;
}

type Condition = { kind: 'exists' } | { kind: 'notExists' } | { kind: 'equals'; column: string; term: Term };

type Plan =
  | { kind: 'select'; table: Table; columns: string[]; where: Restriction[]; limit: Term | null }
  | { kind: 'insert'; table: Table; columns: string[]; values: Term[]; ifNotExists: boolean; ttl: Term | null }
  | { kind: 'update'; table: Table; set: Array<{ column: string; term: Term }>; where: Restriction[]; conditions: Condition[]; ttl: Term | null }
  | { kind: 'delete'; table: Table; where: Restriction[]; conditions: Condition[] };

export interface ReadStat {
  table: string;
  /** Live rows returned. */
  rows: number;
  /** Deleted rows passed inside the clustering slice. */
  tombstones: number;
}

/** An error the fake answers for CQL a Cassandra 2.2 server would refuse (InvalidRequest). */
export class FakeInvalidRequest extends errors.ResponseError {
  constructor(message: string) {
    super(types.responseErrorCodes.invalid, message);
  }
}

export class FakeCassandra {
  readonly tables = new Map<string, Table>();
  /** Every SELECT since the last reset, in order. */
  reads: ReadStat[] = [];
  /** Every statement refused as invalid (a correct store sends none). */
  readonly invalid: string[] = [];
  private readonly plans = new Map<string, Plan>();

  constructor(readonly keyspace = 'ks') {
    for (const ddl of schema(keyspace)) this.createTable(ddl);
  }

  /** A cassandra-driver Client stand-in over this fake (execute, batch, shutdown). */
  client(): unknown {
    return {
      execute: async (query: string, params: unknown[] = []) => {
        await this.latency();
        return this.run(() => this.execute(query, params));
      },
      batch: async (queries: Array<{ query: string; params: unknown[] }>) => {
        await this.latency();
        return this.run(() => this.batch(queries));
      },
      shutdown: async () => undefined,
    };
  }

  /**
   * A round trip: one to four event loop turns, at random, so concurrent calls interleave in
   * varying orders as requests to a cluster do (in lockstep, every round of N contenders for one
   * lightweight transaction would have exactly one winner, which no network produces for long).
   */
  private async latency(): Promise<void> {
    const turns = 1 + Math.floor(Math.random() * 4);
    for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
  }

  resetStats(): void {
    this.reads = [];
  }

  /** Partitions of a table, optionally only those whose first partition key column is `first`. */
  partitions(table: string, first?: unknown): Partition[] {
    const t = this.table(table);
    return [...t.partitions.values()].filter((p) => first === undefined || p.key[0] === first);
  }

  private run<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof FakeInvalidRequest) this.invalid.push(err.message);
      throw err;
    }
  }

  // --- schema ---

  private createTable(ddl: string): void {
    const text = ddl.replace(/\s+/g, ' ').trim();
    const head = /^CREATE TABLE IF NOT EXISTS (\w+)\.(\w+) \(/.exec(text);
    if (!head) throw new Error(`fake: cannot parse ${text}`);
    const open = head[0].length - 1;
    const close = matching(text, open);
    const body = text.slice(open + 1, close);
    const rest = text.slice(close + 1).trim();
    const columns = new Map<string, Column>();
    let partitionKey: string[] = [];
    let clustering: string[] = [];
    for (const part of splitTop(body)) {
      const pk = /^PRIMARY KEY \((.*)\)$/.exec(part);
      if (pk) {
        const keys = splitTop(pk[1]!);
        const first = keys[0]!;
        partitionKey = first.startsWith('(') ? splitTop(first.slice(1, -1)) : [first];
        clustering = keys.slice(1);
        continue;
      }
      const col = /^(\w+) (.+?)( static)?( PRIMARY KEY)?$/.exec(part);
      if (!col) throw new Error(`fake: cannot parse column ${part}`);
      columns.set(col[1]!, { name: col[1]!, type: col[2]!, isStatic: col[3] !== undefined });
      if (col[4]) partitionKey = [col[1]!];
    }
    const order = /CLUSTERING ORDER BY \(([^)]*)\)/.exec(rest);
    if (order && !splitTop(order[1]!).every((o) => / ASC$/.test(o))) throw new Error(`fake: only ASC clustering order is modelled (${head[2]})`);
    for (const k of [...partitionKey, ...clustering]) if (!columns.has(k)) throw new Error(`fake: key column ${k} of ${head[2]} is not declared`);
    this.tables.set(head[2]!, { name: head[2]!, columns, partitionKey, clustering, partitions: new Map() });
  }

  private table(name: string): Table {
    const t = this.tables.get(name);
    if (!t) throw new FakeInvalidRequest(`unconfigured table ${name}`);
    return t;
  }

  // --- parsing ---

  private plan(query: string): Plan {
    const cached = this.plans.get(query);
    if (cached) return cached;
    const q = query.replace(/\s+/g, ' ').trim();
    let index = 0;
    const term = (token: string): Term => {
      const t = token.trim();
      if (t === '?') return { kind: 'param', index: index++ };
      if (t === 'null') return { kind: 'literal', value: null };
      if (/^-?\d+$/.test(t)) return { kind: 'literal', value: Number(t) };
      const str = /^'((?:[^']|'')*)'$/.exec(t);
      if (str) return { kind: 'literal', value: str[1]!.replace(/''/g, "'") };
      throw new FakeInvalidRequest(`cannot parse term ${t} in ${q}`);
    };
    const tableOf = (ks: string, name: string) => {
      if (ks !== this.keyspace) throw new FakeInvalidRequest(`keyspace ${ks} does not exist`);
      return this.table(name);
    };
    const where = (table: Table, clause: string): Restriction[] =>
      clause.split(' AND ').map((r) => {
        const m = /^(\w+) (=|>=|<=|>|<) (.+)$/.exec(r.trim());
        if (!m) throw new FakeInvalidRequest(`cannot parse restriction ${r} in ${q}`);
        column(table, m[1]!);
        return { column: m[1]!, op: m[2] as Restriction['op'], term: term(m[3]!) };
      });
    const conditions = (table: Table, clause: string | undefined): Condition[] => {
      if (clause === undefined) return [];
      if (clause === 'EXISTS') return [{ kind: 'exists' }];
      return clause.split(' AND ').map((c) => {
        const m = /^(\w+) = (.+)$/.exec(c.trim());
        if (!m) throw new FakeInvalidRequest(`cannot parse condition ${c} in ${q}`);
        const col = column(table, m[1]!);
        if (table.partitionKey.includes(col.name) || table.clustering.includes(col.name)) throw new FakeInvalidRequest(`condition on primary key column ${col.name}`);
        return { kind: 'equals', column: m[1]!, term: term(m[2]!) };
      });
    };
    let plan: Plan;
    let m: RegExpExecArray | null;
    if ((m = /^SELECT (.+?) FROM (\w+)\.(\w+)(?: WHERE (.+?))?(?: LIMIT (\S+))?$/.exec(q))) {
      const table = tableOf(m[2]!, m[3]!);
      const columns = m[1]!.split(',').map((c) => column(table, c.trim()).name);
      const w = m[4] === undefined ? [] : where(table, m[4]);
      plan = { kind: 'select', table, columns, where: w, limit: m[5] === undefined ? null : term(m[5]) };
    } else if ((m = /^INSERT INTO (\w+)\.(\w+) \(([^)]*)\) VALUES \(([^)]*)\)( IF NOT EXISTS)?(?: USING TTL (\S+))?$/.exec(q))) {
      const table = tableOf(m[1]!, m[2]!);
      const columns = m[3]!.split(',').map((c) => column(table, c.trim()).name);
      const values = m[4]!.split(',').map((v) => term(v));
      if (columns.length !== values.length) throw new FakeInvalidRequest(`column and value counts differ in ${q}`);
      plan = { kind: 'insert', table, columns, values, ifNotExists: m[5] !== undefined, ttl: m[6] === undefined ? null : term(m[6]) };
    } else if ((m = /^UPDATE (\w+)\.(\w+)(?: USING TTL (\S+))? SET (.+?) WHERE (.+?)(?: IF (.+))?$/.exec(q))) {
      const table = tableOf(m[1]!, m[2]!);
      const ttl = m[3] === undefined ? null : term(m[3]);
      const set = m[4]!.split(',').map((a) => {
        const s = /^(\w+) = (.+)$/.exec(a.trim());
        if (!s) throw new FakeInvalidRequest(`cannot parse assignment ${a} in ${q}`);
        column(table, s[1]!);
        return { column: s[1]!, term: term(s[2]!) };
      });
      const w = where(table, m[5]!);
      plan = { kind: 'update', table, set, where: w, conditions: conditions(table, m[6]), ttl };
    } else if ((m = /^DELETE FROM (\w+)\.(\w+) WHERE (.+?)(?: IF (.+))?$/.exec(q))) {
      const table = tableOf(m[1]!, m[2]!);
      const w = where(table, m[3]!);
      plan = { kind: 'delete', table, where: w, conditions: conditions(table, m[4]) };
    } else {
      throw new FakeInvalidRequest(`statement shape not modelled: ${q}`);
    }
    this.plans.set(query, plan);
    return plan;
  }

  // --- execution ---

  private execute(query: string, params: unknown[]): FakeResult {
    const plan = this.plan(query);
    if (plan.kind === 'select') return this.select(plan, params);
    const write = this.bindWrite(plan, params);
    if (write.conditional) {
      const applied = this.check(write);
      if (applied) this.apply(write);
      return new FakeResult([], applied);
    }
    this.apply(write);
    return new FakeResult([], true);
  }

  private batch(queries: Array<{ query: string; params: unknown[] }>): FakeResult {
    if (queries.length === 0) throw new FakeInvalidRequest('empty batch');
    const writes = queries.map(({ query, params }) => {
      const plan = this.plan(query);
      if (plan.kind === 'select') throw new FakeInvalidRequest('SELECT in a batch');
      return this.bindWrite(plan, params ?? []);
    });
    if (writes.some((w) => w.conditional)) {
      const first = writes[0]!;
      for (const w of writes) {
        if (w.table !== first.table) throw new FakeInvalidRequest('Batch with conditions cannot span multiple tables');
        if (w.partitionId !== first.partitionId) throw new FakeInvalidRequest('Batch with conditions cannot span multiple partitions');
      }
      // Every condition against the state before the batch; then all or nothing.
      const applied = writes.every((w) => this.check(w));
      if (applied) for (const w of writes) this.apply(w);
      return new FakeResult([], applied);
    }
    for (const w of writes) this.apply(w);
    return new FakeResult([], true);
  }

  private select(plan: Extract<Plan, { kind: 'select' }>, params: unknown[]): FakeResult {
    const { table } = plan;
    const limit = plan.limit === null ? Infinity : (value(plan.limit, params) as number);
    if (plan.limit !== null && (!Number.isInteger(limit) || limit <= 0)) throw new FakeInvalidRequest(`LIMIT must be strictly positive (${String(limit)})`);
    const stat: ReadStat = { table: table.name, rows: 0, tombstones: 0 };
    this.reads.push(stat);
    const out: FakeRow[] = [];
    const now = Date.now();
    const emit = (p: Partition, row: Row | null) => {
      const values = new Map<string, unknown>();
      for (const c of plan.columns) {
        const col = table.columns.get(c)!;
        const pk = table.partitionKey.indexOf(c);
        const ck = table.clustering.indexOf(c);
        let v: unknown = null;
        if (pk >= 0) v = p.key[pk];
        else if (ck >= 0) v = row ? row.ck[ck] : null;
        else if (col.isStatic) v = live(p.statics.get(c), now);
        else v = row ? live(row.cells.get(c), now) : null;
        values.set(c, readValue(col.type, v));
      }
      out.push(new FakeRow(values));
    };
    const scan = (p: Partition, slice: Slice | null) => {
      let emitted = 0;
      for (const row of p.rows) {
        if (out.length >= limit) return emitted;
        if (slice && !slice.contains(row.ck)) {
          if (slice.after(row.ck)) break;
          continue;
        }
        if (rowLive(row, now)) {
          stat.rows++;
          emitted++;
          emit(p, row);
        } else {
          stat.tombstones++;
        }
      }
      return emitted;
    };
    if (plan.where.length === 0) {
      for (const p of table.partitions.values()) {
        if (out.length >= limit) break;
        if (scan(p, null) === 0 && table.clustering.length > 0 && hasLive(p.statics, now)) emit(p, null);
      }
      return new FakeResult(out, undefined);
    }
    const { key, slice, clusteringRestricted } = this.restrict(table, plan.where, params, 'select');
    const p = table.partitions.get(partitionId(table, key));
    if (!p) return new FakeResult([], undefined);
    const emitted = scan(p, slice);
    // A partition with static cells and no rows reads as one row of nulls, unless the query
    // restricted the clustering columns.
    if (emitted === 0 && !clusteringRestricted && table.clustering.length > 0 && hasLive(p.statics, now) && out.length < limit) emit(p, null);
    return new FakeResult(out, undefined);
  }

  /** The partition key and clustering slice of a WHERE clause, checked as Cassandra 2.2 would. */
  private restrict(table: Table, where: Restriction[], params: unknown[], what: 'select' | 'write') {
    const byColumn = new Map<string, Restriction[]>();
    for (const r of where) byColumn.set(r.column, [...(byColumn.get(r.column) ?? []), r]);
    for (const c of byColumn.keys()) {
      if (!table.partitionKey.includes(c) && !table.clustering.includes(c)) throw new FakeInvalidRequest(`restriction on non-primary-key column ${c} needs ALLOW FILTERING`);
    }
    const key = table.partitionKey.map((c) => {
      const rs = byColumn.get(c);
      if (!rs || rs.length !== 1 || rs[0]!.op !== '=') throw new FakeInvalidRequest(`partition key column ${c} of ${table.name} must be restricted by equality`);
      const v = value(rs[0]!.term, params);
      checkValue(table.columns.get(c)!, v, true);
      return v;
    });
    const eq: unknown[] = [];
    const bounds: Array<{ op: Restriction['op']; value: unknown }> = [];
    let rangeColumn: string | null = null;
    for (const c of table.clustering) {
      const rs = byColumn.get(c);
      if (!rs) {
        // Nothing after an unrestricted column may be restricted.
        const later = table.clustering.slice(table.clustering.indexOf(c) + 1).some((x) => byColumn.has(x));
        if (later) throw new FakeInvalidRequest(`clustering column ${c} of ${table.name} must be restricted before later ones`);
        break;
      }
      if (rangeColumn !== null) throw new FakeInvalidRequest(`clustering column ${c} restricted after a range on ${rangeColumn}`);
      if (rs.length === 1 && rs[0]!.op === '=') {
        const v = value(rs[0]!.term, params);
        checkValue(table.columns.get(c)!, v, true);
        eq.push(v);
        continue;
      }
      if (what === 'write') throw new FakeInvalidRequest(`range restriction on ${c} in a write (range deletes need Cassandra 3.0)`);
      for (const r of rs) {
        if (r.op === '=') throw new FakeInvalidRequest(`${c} restricted by equality and a range`);
        const v = value(r.term, params);
        checkValue(table.columns.get(c)!, v, true);
        bounds.push({ op: r.op, value: v });
      }
      rangeColumn = c;
    }
    const types = table.clustering.map((c) => table.columns.get(c)!.type);
    const slice = eq.length === 0 && bounds.length === 0 ? null : new Slice(types, eq, bounds);
    return { key, slice, clusteringRestricted: slice !== null, fullClustering: eq.length === table.clustering.length, ck: eq };
  }

  private bindWrite(plan: Exclude<Plan, { kind: 'select' }>, params: unknown[]): Write {
    const { table } = plan;
    const ttlTerm = plan.kind === 'delete' ? null : plan.ttl;
    const ttl = ttlTerm === null ? 0 : (value(ttlTerm, params) as number);
    if (!Number.isInteger(ttl) || ttl < 0) throw new FakeInvalidRequest(`bad TTL ${String(ttl)}`);
    const expiresAt = ttl === 0 ? null : Date.now() + ttl * 1000;
    if (plan.kind === 'insert') {
      const vals = new Map<string, unknown>();
      plan.columns.forEach((c, i) => vals.set(c, value(plan.values[i]!, params)));
      const key = table.partitionKey.map((c) => {
        if (!vals.has(c)) throw new FakeInvalidRequest(`missing partition key column ${c}`);
        checkValue(table.columns.get(c)!, vals.get(c), true);
        return vals.get(c);
      });
      const ck = table.clustering.map((c) => {
        if (!vals.has(c)) throw new FakeInvalidRequest(`missing clustering column ${c}`);
        checkValue(table.columns.get(c)!, vals.get(c), true);
        return vals.get(c);
      });
      const cells = new Map<string, unknown>();
      for (const [c, v] of vals) {
        if (table.partitionKey.includes(c) || table.clustering.includes(c)) continue;
        checkValue(table.columns.get(c)!, v, false);
        cells.set(c, v);
      }
      return { table, partitionId: partitionId(table, key), key, ck, kind: 'insert', cells, expiresAt, conditions: plan.ifNotExists ? [{ kind: 'notExists' }] : [], params, conditional: plan.ifNotExists };
    }
    const r = this.restrict(table, plan.where, params, 'write');
    const base = { table, partitionId: partitionId(table, r.key), key: r.key, params, conditions: plan.conditions, conditional: plan.conditions.length > 0 };
    if (!r.fullClustering && r.ck.length > 0) throw new FakeInvalidRequest(`a write must name the whole clustering key or none of it (${table.name})`);
    if (plan.kind === 'update') {
      const cells = new Map<string, unknown>();
      for (const { column: c, term: t } of plan.set) {
        if (table.partitionKey.includes(c) || table.clustering.includes(c)) throw new FakeInvalidRequest(`PRIMARY KEY part ${c} found in SET part`);
        const v = value(t, params);
        checkValue(table.columns.get(c)!, v, false);
        cells.set(c, v);
      }
      const onlyStatic = [...cells.keys()].every((c) => table.columns.get(c)!.isStatic);
      if (table.clustering.length > 0) {
        if (r.ck.length === 0 && !onlyStatic) throw new FakeInvalidRequest(`Missing mandatory PRIMARY KEY part ${table.clustering[0]}`);
        if (r.ck.length > 0 && onlyStatic) throw new FakeInvalidRequest('Invalid restrictions on clustering columns since the UPDATE statement modifies only static columns');
      }
      return { ...base, kind: 'update', ck: r.ck.length > 0 || table.clustering.length === 0 ? r.ck : null, cells, expiresAt };
    }
    return { ...base, kind: 'delete', ck: r.ck.length > 0 || table.clustering.length === 0 ? r.ck : null, cells: new Map(), expiresAt: null };
  }

  private partitionOf(w: Write, create: boolean): Partition | undefined {
    let p = w.table.partitions.get(w.partitionId);
    if (!p && create) {
      p = { key: w.key, statics: new Map(), rows: [] };
      w.table.partitions.set(w.partitionId, p);
    }
    return p;
  }

  private findRow(w: Write, p: Partition | undefined, create: boolean): Row | undefined {
    if (!p || w.ck === null) return undefined;
    const types = w.table.clustering.map((c) => w.table.columns.get(c)!.type);
    let lo = 0;
    let hi = p.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (compareKeys(types, p.rows[mid]!.ck, w.ck) < 0) lo = mid + 1;
      else hi = mid;
    }
    const at = p.rows[lo];
    if (at && compareKeys(types, at.ck, w.ck) === 0) return at;
    if (!create) return undefined;
    const row: Row = { ck: w.ck, cells: new Map(), marker: null };
    p.rows.splice(lo, 0, row);
    return row;
  }

  private check(w: Write): boolean {
    const now = Date.now();
    const p = this.partitionOf(w, false);
    const row = this.findRow(w, p, false);
    const exists = w.ck === null ? p !== undefined && (hasLive(p.statics, now) || p.rows.some((r) => rowLive(r, now))) : row !== undefined && rowLive(row, now);
    return w.conditions.every((c) => {
      if (c.kind === 'exists') return exists;
      if (c.kind === 'notExists') return !exists;
      const col = w.table.columns.get(c.column)!;
      const current = col.isStatic ? live(p?.statics.get(c.column), now) : row ? live(row.cells.get(c.column), now) : null;
      const wanted = value(c.term, w.params);
      checkValue(col, wanted, false);
      return same(col.type, current, normalize(wanted));
    });
  }

  private apply(w: Write): void {
    if (w.kind === 'delete') {
      const p = this.partitionOf(w, true)!;
      if (w.ck === null) {
        // Partition delete: every row becomes a tombstone.
        p.statics.clear();
        for (const r of p.rows) {
          r.cells.clear();
          r.marker = null;
        }
        return;
      }
      // A delete writes a tombstone whether or not the row existed.
      const row = this.findRow(w, p, true)!;
      row.cells.clear();
      row.marker = null;
      return;
    }
    const p = this.partitionOf(w, true)!;
    const row = this.findRow(w, p, true);
    if (w.kind === 'insert' && row) row.marker = { value: true, expiresAt: w.expiresAt };
    for (const [c, v] of w.cells) {
      if (v === types.unset) continue;
      const target = w.table.columns.get(c)!.isStatic ? p.statics : row?.cells;
      if (!target) throw new FakeInvalidRequest(`no row to write ${c} to`);
      const n = normalize(v);
      if (n === null) target.delete(c);
      else target.set(c, { value: n, expiresAt: w.expiresAt });
    }
  }
}

interface Write {
  table: Table;
  partitionId: string;
  key: unknown[];
  /** The row's clustering key; null for a statement on the partition (statics, partition delete). */
  ck: unknown[] | null;
  kind: 'insert' | 'update' | 'delete';
  cells: Map<string, unknown>;
  expiresAt: number | null;
  conditions: Condition[];
  conditional: boolean;
  params: unknown[];
}

class Slice {
  constructor(
    private readonly types: string[],
    private readonly eq: unknown[],
    private readonly bounds: Array<{ op: Restriction['op']; value: unknown }>,
  ) {}

  contains(ck: unknown[]): boolean {
    for (let i = 0; i < this.eq.length; i++) if (compareValues(this.types[i]!, ck[i], this.eq[i]) !== 0) return false;
    const i = this.eq.length;
    return this.bounds.every(({ op, value }) => {
      const c = compareValues(this.types[i]!, ck[i], value);
      return op === '>' ? c > 0 : op === '>=' ? c >= 0 : op === '<' ? c < 0 : c <= 0;
    });
  }

  /** Whether `ck` sorts after every key of the slice (so a scan in order can stop). */
  after(ck: unknown[]): boolean {
    for (let i = 0; i < this.eq.length; i++) {
      const c = compareValues(this.types[i]!, ck[i], this.eq[i]);
      if (c !== 0) return c > 0;
    }
    const i = this.eq.length;
    return this.bounds.some(({ op, value }) => {
      const c = compareValues(this.types[i]!, ck[i], value);
      return (op === '<' && c >= 0) || (op === '<=' && c > 0);
    });
  }
}

export class FakeRow {
  constructor(private readonly values: Map<string, unknown>) {}
  get(name: string): unknown {
    if (!this.values.has(name)) throw new Error(`fake: column ${name} was not selected`);
    return this.values.get(name);
  }
}

class FakeResult {
  constructor(
    readonly rows: FakeRow[],
    private readonly applied: boolean | undefined,
  ) {}
  get rowLength(): number {
    return this.rows.length;
  }
  first(): FakeRow | null {
    return this.rows[0] ?? null;
  }
  wasApplied(): boolean {
    if (this.applied === undefined) throw new Error('fake: wasApplied() on a read');
    return this.applied;
  }
  async *[Symbol.asyncIterator](): AsyncGenerator<FakeRow> {
    for (const r of this.rows) yield r;
  }
}

// --- values ---

function column(table: Table, name: string): Column {
  const c = table.columns.get(name);
  if (!c) throw new FakeInvalidRequest(`Undefined column name ${name} in table ${table.name}`);
  return c;
}

function value(t: Term, params: unknown[]): unknown {
  if (t.kind === 'literal') return t.value;
  if (t.index >= params.length) throw new FakeInvalidRequest(`missing bind value ${t.index}`);
  return params[t.index];
}

/** cassandra-driver encodes an empty list as null. */
function normalize(v: unknown): unknown {
  return Array.isArray(v) && v.length === 0 ? null : v;
}

function checkValue(col: Column, v: unknown, key: boolean): void {
  if (v === types.unset) {
    if (key) throw new FakeInvalidRequest(`unset value for key column ${col.name}`);
    return;
  }
  if (v === null || v === undefined) {
    if (key) throw new FakeInvalidRequest(`Invalid null value for key column ${col.name}`);
    return;
  }
  const bad = () => new FakeInvalidRequest(`value ${String(v)} does not fit ${col.name} ${col.type}`);
  switch (col.type) {
    case 'text':
      if (typeof v !== 'string') throw bad();
      if (key && v.length === 0) throw new FakeInvalidRequest(`empty value for key column ${col.name}`);
      return;
    case 'int':
      if (typeof v !== 'number' || !Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw bad();
      return;
    case 'bigint':
      if (!(v instanceof types.Long) && !(typeof v === 'number' && Number.isSafeInteger(v))) throw bad();
      return;
    case 'blob':
      if (!Buffer.isBuffer(v)) throw bad();
      return;
    case 'timestamp':
      if (!(v instanceof Date) || Number.isNaN(v.getTime())) throw bad();
      return;
    case 'uuid':
      if (!(v instanceof types.Uuid)) throw bad();
      return;
    case 'frozen<list<text>>':
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad();
      return;
    default:
      throw new FakeInvalidRequest(`type ${col.type} not modelled`);
  }
}

/** A stored value as cassandra-driver would return it (fresh copies). */
function readValue(type: string, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (type) {
    case 'bigint':
      return v instanceof types.Long ? v : types.Long.fromNumber(v as number);
    case 'blob':
      return Buffer.from(v as Buffer);
    case 'timestamp':
      return new Date((v as Date).getTime());
    case 'frozen<list<text>>':
      return [...(v as string[])];
    default:
      return v;
  }
}

function num(v: unknown): number {
  return v instanceof types.Long ? v.toNumber() : (v as number);
}

function compareValues(type: string, a: unknown, b: unknown): number {
  switch (type) {
    case 'text':
      return Buffer.compare(Buffer.from(a as string, 'utf8'), Buffer.from(b as string, 'utf8'));
    case 'int':
    case 'bigint':
      return Math.sign(num(a) - num(b));
    case 'blob':
      return Buffer.compare(a as Buffer, b as Buffer);
    case 'timestamp':
      return Math.sign((a as Date).getTime() - (b as Date).getTime());
    case 'uuid':
      return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
    default:
      throw new FakeInvalidRequest(`no order for type ${type}`);
  }
}

function compareKeys(types: string[], a: unknown[], b: unknown[]): number {
  for (let i = 0; i < types.length; i++) {
    const c = compareValues(types[i]!, a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

function same(type: string, a: unknown, b: unknown): boolean {
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (type === 'frozen<list<text>>') return JSON.stringify(a) === JSON.stringify(b);
  return compareValues(type, a, b) === 0;
}

function partitionId(table: Table, key: unknown[]): string {
  return key
    .map((v, i) => {
      const type = table.columns.get(table.partitionKey[i]!)!.type;
      if (type === 'blob') return `b:${(v as Buffer).toString('hex')}`;
      if (type === 'int' || type === 'bigint') return `n:${num(v)}`;
      return `${type}:${String(v)}`;
    })
    .join('\u0001');
}

function live(cell: Cell | undefined, now: number): unknown {
  if (!cell || (cell.expiresAt !== null && cell.expiresAt <= now)) return null;
  return cell.value;
}

function hasLive(cells: Map<string, Cell>, now: number): boolean {
  for (const c of cells.values()) if (live(c, now) !== null) return true;
  return false;
}

function rowLive(row: Row, now: number): boolean {
  return (row.marker !== null && live(row.marker, now) !== null) || hasLive(row.cells, now);
}

// --- text ---

/** Index of the parenthesis closing the one at `open`. */
function matching(text: string, open: number): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')' && --depth === 0) return i;
  }
  throw new Error(`fake: unbalanced parentheses in ${text}`);
}

/** Split on commas outside () and <>. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '(' || ch === '<') depth++;
    else if (ch === ')' || ch === '>') depth--;
    else if (ch === ',' && depth === 0) {
      out.push(text.slice(start, i).trim());
      start = i + 1;
    }
  }
  out.push(text.slice(start).trim());
  return out.filter((s) => s.length > 0);
}

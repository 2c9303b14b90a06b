/** The catalogue table of docs/errors.md, rendered from src/errors.ts (and parsed back by the test). */
import { ConnackCode, DisconnectReason, ERRORS, type ErrorCode } from '../../src/errors.js';

export interface DocRow {
  code: string;
  http: number;
  close: number | null;
  wire: string;
  message: string;
}

export function wireOf(code: ErrorCode): string {
  const s = ERRORS[code];
  const parts: string[] = [];
  if (s.connack) parts.push(`CONNACK ${ConnackCode[s.connack]} ${s.connack}`);
  if (s.disconnect) parts.push(`DISCONNECT ${DisconnectReason[s.disconnect]} ${s.disconnect}`);
  return parts.join('; ') || '-';
}

export function catalogueRows(): DocRow[] {
  return (Object.keys(ERRORS) as ErrorCode[]).map((code) => ({
    code,
    http: ERRORS[code].http,
    close: ERRORS[code].close ?? null,
    wire: wireOf(code),
    message: ERRORS[code].message,
  }));
}

export function renderTable(): string {
  const head = '| code | HTTP | close | wire | message |\n|---|---|---|---|---|';
  return head + '\n' + catalogueRows().map((r) => `| \`${r.code}\` | ${r.http} | ${r.close ?? '-'} | ${r.wire} | ${r.message} |`).join('\n');
}

export function parseTable(md: string): DocRow[] {
  const rows: DocRow[] = [];
  for (const line of md.split('\n')) {
    const m = /^\| `(LK_[A-Z0-9_]+)` \| (\d+) \| (\d+|-) \| ([^|]+) \| (.+) \|$/.exec(line.trim());
    if (!m) continue;
    rows.push({ code: m[1]!, http: Number(m[2]), close: m[3] === '-' ? null : Number(m[3]), wire: m[4]!.trim(), message: m[5]!.trim() });
  }
  return rows;
}

/**
 * The SDK's side of session resumption (docs/protocol.md 4.3, 4.6) against the worked examples of
 * sections 8 and 8.1 as test/helpers/protocol-example.ts computes them from the server's code
 * (the same values the document prints): the SDK (WebCrypto, its own Avro codec) derives the
 * section 8 session's resumption secret, and from it and the 8.1 ticket builds the same ResumeBody,
 * proof, keys, confirmation and RESUME frame, byte for byte. Then the ticket holder: newest ticket
 * only, lifetime 0 keeps none, expiry, and which refusals fall back to a full CONNECT.
 */
import { describe, expect, it } from 'vitest';
import { NodeGcmCipher } from '../../src/crypto/aead.js';
import { ERRORS } from '../../src/errors.js';
import { RESUME_CONTEXT } from '../../src/crypto/session-crypto.js';
import { RESUME_CONTEXT_BYTES, FRAME } from '../../src/sdk/constants.js';
import { concat, deriveClientKeys, deriveResumedKeys, resumeInput } from '../../src/sdk/crypto.js';
import { prepareResume } from '../../src/sdk/hello.js';
import { fallsBackToConnect, TicketHolder, TICKETREQ_FRAME } from '../../src/sdk/resumption.js';
import wire from '../../src/sdk/wire.js';
import { computeExample, computeResumeExample } from '../helpers/protocol-example.js';

const full = new Map(computeExample().lines);
const ex = new Map(computeResumeExample());
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
const bytes = (m: Map<string, string>, k: string): Uint8Array => {
  const v = m.get(k);
  if (v === undefined) throw new Error(`no example line "${k}"`);
  return new Uint8Array(Buffer.from(v, 'hex'));
};

describe('SDK resumption against the worked example (docs/protocol.md 8, 8.1)', () => {
  it('section 8: the full session\'s keys (L = 128) give its resumption secret; keys and confirmation unchanged', async () => {
    const secret = Uint8Array.from({ length: 64 }, (_, i) => i);
    const keys = await deriveClientKeys(secret, bytes(full, 'bodyBytes = Avro(ConnectBody) (the fields above, concatenated)'));
    expect(hex(keys.resumptionSecret)).toBe(full.get('resumptionSecret = OKM[96..128) (section 4.6)'));
    expect(await keys.checkConfirmation(bytes(full, 'confirmation'))).toBe(true);
    const req = bytes(full, 'SyncRequest{requestId 1, profileBody "hello"} (Avro)');
    expect(hex(await keys.tx.seal(0, req))).toBe(full.get('sealed with keyC2S, counter 0 (CONNECT.sync)'));
    expect(hex(keys.resumptionSecret)).toBe(ex.get('resumptionSecret of the section 8 session'));
  });

  it('section 8.1: TICKETREQ, TICKET, ResumeBody, resumeInput, proof, keys, confirmation, next secret and RESUME frame, byte for byte', async () => {
    expect(hex(TICKETREQ_FRAME)).toBe(ex.get('TICKETREQ frame'));
    expect(Buffer.from(RESUME_CONTEXT_BYTES).equals(RESUME_CONTEXT)).toBe(true);
    const ticketFrame = bytes(ex, 'TICKET frame (ticket: the 120 bytes 01 08 0f ..., lifetimeSec 86400)');
    expect(ticketFrame[0]).toBe(FRAME.TICKET);
    const t = wire.ticket.fromBuffer(ticketFrame.subarray(1));
    expect(t.lifetimeSec).toBe(86_400);
    expect(hex(t.ticket)).toBe(hex(Uint8Array.from({ length: 120 }, (_, i) => (i * 7 + 1) & 0xff)));

    const resumptionSecret = bytes(ex, 'resumptionSecret of the section 8 session');
    const p = await prepareResume({
      appToken: 'example-app-token',
      keyHashRaw: bytes(full, 'keyHash = SHA-256(SPKI)'),
      ticket: t.ticket,
      resumptionSecret,
      timestamp: Number(ex.get('timestamp')),
      nonce: bytes(ex, 'nonce'),
      keepAliveSec: 60,
    });
    expect(hex(p.body)).toBe(ex.get('bodyBytes = Avro(ResumeBody)'));
    expect(hex(resumeInput(p.body))).toBe(ex.get('resumeInput = "latchkey/1 RESUME\\0" || bodyBytes'));
    expect(hex(p.proof)).toBe(ex.get('proof = HMAC-SHA-256(resumptionSecret, resumeInput)'));
    expect(hex(p.frame(null))).toBe(ex.get('RESUME frame (no sync)'));
    expect(p.resumed).toBe(true);
    expect(p.sentKey).toBe(false);

    // The SDK's AES keys cannot be exported: each is checked by what it seals and opens against the
    // server's cipher holding the example's key.
    expect(await p.keys.checkConfirmation(bytes(ex, 'confirmation'))).toBe(true);
    expect(await p.keys.checkConfirmation(bytes(full, 'confirmation'))).toBe(false);
    const c2s = new NodeGcmCipher(bytes(ex, 'keyC2S'));
    const s2c = new NodeGcmCipher(bytes(ex, 'keyS2C'));
    const plain = new TextEncoder().encode('resumed');
    expect(hex(await p.keys.tx.seal(0, plain))).toBe(hex(c2s.seal(0, plain)));
    expect(hex((await p.keys.rx.open(3, s2c.seal(3, plain)))!)).toBe(hex(plain));
    expect(hex(p.keys.resumptionSecret)).toBe(ex.get('next resumptionSecret'));
    // deriveResumedKeys is the same schedule prepareResume uses.
    expect(hex((await deriveResumedKeys(resumptionSecret, p.body)).resumptionSecret)).toBe(ex.get('next resumptionSecret'));
  });

  it('a RESUME with an embedded SyncRequest carries it as Resume.sync, sealed under the new keyC2S at counter 0', async () => {
    const p = await prepareResume({ appToken: 'example-app-token', keyHashRaw: new Uint8Array(32), ticket: new Uint8Array(10), resumptionSecret: new Uint8Array(32).fill(1), timestamp: 1, nonce: new Uint8Array(16), keepAliveSec: 0 });
    const sealed = await p.keys.tx.seal(0, new Uint8Array([2, 0, 0, 0, 0]));
    const r = wire.resume.fromBuffer(p.frame(sealed).subarray(1));
    expect(hex(r.sync!)).toBe(hex(sealed));
    expect(hex(r.body)).toBe(hex(p.body));
  });
});

describe('TicketHolder', () => {
  const ticketFrame = (ticket: Uint8Array, lifetimeSec: number): Uint8Array => concat(new Uint8Array([FRAME.TICKET]), wire.ticket.toBuffer({ ticket, lifetimeSec }));

  it('keeps the newest ticket with its session\'s secret until its lifetime has passed', () => {
    let now = 1_000_000;
    const h = new TicketHolder(() => now);
    expect(h.usable()).toBeNull();
    const s1 = new Uint8Array(32).fill(1);
    h.sessionAccepted(s1);
    expect(h.onTicket(ticketFrame(new Uint8Array([1, 2, 3]), 60))).toBe(true);
    expect(h.usable()).toMatchObject({ ticket: new Uint8Array([1, 2, 3]), secret: s1, expiresAt: now + 60_000 });
    // The next session's ticket replaces it, with that session's secret.
    const s2 = new Uint8Array(32).fill(2);
    h.sessionAccepted(s2);
    h.onTicket(ticketFrame(new Uint8Array([4]), 60));
    expect(h.usable()).toMatchObject({ ticket: new Uint8Array([4]), secret: s2 });
    now += 59_999;
    expect(h.usable()).not.toBeNull();
    now += 1;
    expect(h.usable()).toBeNull();
  });

  it('lifetimeSec 0 (resumption off) keeps none, and forgets an older ticket', () => {
    const h = new TicketHolder(() => 0);
    h.sessionAccepted(new Uint8Array(32));
    h.onTicket(ticketFrame(new Uint8Array([1]), 60));
    h.sessionAccepted(new Uint8Array(32));
    expect(h.onTicket(ticketFrame(new Uint8Array(0), 0))).toBe(true);
    expect(h.usable()).toBeNull();
  });

  it('ignores a TICKET nobody asked for (none of this session, or a second one); refuses a malformed one', () => {
    const h = new TicketHolder(() => 0);
    expect(h.onTicket(ticketFrame(new Uint8Array([1]), 60))).toBe(true);
    expect(h.usable()).toBeNull();
    h.sessionAccepted(new Uint8Array(32));
    h.sessionEnded();
    h.onTicket(ticketFrame(new Uint8Array([1]), 60));
    expect(h.usable()).toBeNull();
    expect(h.onTicket(new Uint8Array([FRAME.TICKET, 0xff]))).toBe(false);
    expect(h.onTicket(new Uint8Array([FRAME.TICKET, 0x02, 0x01, 0x02, 0x00]))).toBe(false); // trailing byte
  });

  it('forget() drops the ticket and wipes its secret copy', () => {
    const h = new TicketHolder(() => 0);
    const s = new Uint8Array(32).fill(7);
    h.sessionAccepted(s);
    h.onTicket(ticketFrame(new Uint8Array([1]), 60));
    const held = h.usable()!;
    h.forget();
    expect(h.usable()).toBeNull();
    expect(held.secret.every((b) => b === 0)).toBe(true);
    expect(s.every((b) => b === 7)).toBe(true);
  });
});

describe('fallsBackToConnect (docs/protocol.md 4.6, after a refusal)', () => {
  it('every ticket and resume code of the catalogue, a stale timestamp and a replayed nonce fall back; nothing else does', () => {
    const fallBack = Object.keys(ERRORS).filter((c) => fallsBackToConnect(c)).sort();
    expect(fallBack).toEqual(['LK_HS_REPLAYED_NONCE', 'LK_HS_STALE_TIMESTAMP', 'LK_RESUME_BAD_PROOF', 'LK_RESUME_DISABLED', 'LK_TICKET_EXPIRED', 'LK_TICKET_INVALID', 'LK_TICKET_KEY_RETIRED', 'LK_TICKET_WRONG_APP']);
    expect(fallsBackToConnect(null)).toBe(false);
    expect(fallsBackToConnect('LK_CRED_REVOKED')).toBe(false);
  });
});

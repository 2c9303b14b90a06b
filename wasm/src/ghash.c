/*
 * latchkey frame AEAD kernel: GHASH (GF(2^128) multiply-accumulate for AES-GCM) and the
 * counter-mode XOR, constant-time, for WebAssembly. AES itself stays in node:crypto (AES-NI):
 * src/crypto/aead.ts computes keystream blocks with a persistent 'aes-256-ecb' cipher and hands
 * them to this kernel; see wasm/README.md.
 *
 * Constant time: no secret-dependent branch or memory index anywhere. The carry-less 64x64
 * multiply uses ordinary integer multiplies on operands masked to every fourth bit ("holes"), so
 * that no column sum of a partial product can carry into a bit that is kept (i64.mul compiles to
 * a constant-time multiply on x86-64 and 64-bit ARM); 128x128 uses Karatsuba (3 such products,
 * each as a low half and, through bit reversal, a high half), then reduction modulo
 * x^128 + x^7 + x^2 + x + 1.
 *
 * GCM's bit order: a 16-byte block is read as two big-endian 64-bit words hi:lo, and the
 * coefficient of x^0 is the most significant bit of hi (bit-reflected). Multiplying two reflected
 * 128-bit values as integers without carries gives the reflected 255-bit product, one bit short of
 * a 256-bit reflected value: shift left by one, then fold the upper degrees.
 *
 * Freestanding: no libc, no entry point, fixed memory (see wasm/build.sh). The JS side writes its
 * inputs into the static `io` block (address from lk_io()) and calls the exports below. The key
 * material in this memory (H, keystream) is the caller's to protect, as in any AES-GCM context.
 */

typedef unsigned long long u64;
typedef unsigned int u32;
typedef unsigned char u8;

#define CHUNK 16384 /* longest frame (and counter-block run) per call; aead.ts sends longer frames to node:crypto GCM */

#define EXPORT(name) __attribute__((export_name(#name)))
#define NOINLINE __attribute__((noinline)) /* keeps the module small; a call costs far less than a block */

/* Layout shared with src/crypto/ghash-wasm.ts (offsets from lk_io()). Keep in sync. */
static struct {
  u8 ghash_out[16];    /*   0: the GHASH value after lk_ghash_out */
  u8 mask[16];         /*  16: E_K(J0), masks the tag; directly followed by ks */
  u8 ks[CHUNK];        /*  32: keystream for the data in buf */
  u8 buf[CHUNK + 16];  /*  32 + CHUNK: data, transformed in place, followed by its tag */
  u8 ctr[CHUNK];       /*  48 + 2 * CHUNK: counter blocks written by lk_fill_ctr */
} io;

/* H and its derived forms, and the running GHASH value Y = yh:yl. */
static u64 hs[6][4]; /* h0, h1, h2, h0r, h1r, h2r, each split by bmul64's masks */
static u64 yh, yl;

static inline u64 load_be64(const u8 *p) {
  u64 v;
  __builtin_memcpy(&v, p, 8);
  return __builtin_bswap64(v);
}

static inline void store_be64(u8 *p, u64 v) {
  v = __builtin_bswap64(v);
  __builtin_memcpy(p, &v, 8);
}

/*
 * Low 64 bits of the carry-less product of x and y, y given as its four masked parts
 * y & 0x1111.., y & 0x2222.., y & 0x4444.., y & 0x8888.. (H's parts are computed once per frame).
 * Each part holds only bits i = r (mod 4). In the integer product of two parts only columns of one
 * residue receive bits, and a column below 60 receives at most 15 of them, so its sum fits in the
 * three-bit hole above it and never reaches the next column of that residue; columns 60..63 may
 * receive 16, whose carry leaves the 64-bit word. So bit k of the integer product is the XOR of
 * the bit products in column k, and keeping each residue class of the XOR of the four products
 * that land in it gives the carry-less product. Integer multiplies, ANDs and XORs only.
 */
static inline u64 bmul64(u64 x, const u64 *y) {
  const u64 m0 = 0x1111111111111111ULL, m1 = m0 << 1, m2 = m0 << 2, m3 = m0 << 3;
  u64 x0 = x & m0, x1 = x & m1, x2 = x & m2, x3 = x & m3;
  u64 z0 = (x0 * y[0]) ^ (x1 * y[3]) ^ (x2 * y[2]) ^ (x3 * y[1]);
  u64 z1 = (x0 * y[1]) ^ (x1 * y[0]) ^ (x2 * y[3]) ^ (x3 * y[2]);
  u64 z2 = (x0 * y[2]) ^ (x1 * y[1]) ^ (x2 * y[0]) ^ (x3 * y[3]);
  u64 z3 = (x0 * y[3]) ^ (x1 * y[2]) ^ (x2 * y[1]) ^ (x3 * y[0]);
  return (z0 & m0) | (z1 & m1) | (z2 & m2) | (z3 & m3);
}

/* Bit reversal of a 64-bit word (swaps of 1, 2, 4, 8, 16 and 32 bits). */
static inline u64 rev64(u64 x) {
  x = ((x & 0x5555555555555555ULL) << 1) | ((x >> 1) & 0x5555555555555555ULL);
  x = ((x & 0x3333333333333333ULL) << 2) | ((x >> 2) & 0x3333333333333333ULL);
  x = ((x & 0x0F0F0F0F0F0F0F0FULL) << 4) | ((x >> 4) & 0x0F0F0F0F0F0F0F0FULL);
  x = ((x & 0x00FF00FF00FF00FFULL) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFULL);
  x = ((x & 0x0000FFFF0000FFFFULL) << 16) | ((x >> 16) & 0x0000FFFF0000FFFFULL);
  return (x << 32) | (x >> 32);
}

/* Y = Y * H in GF(2^128). The high half of a 64x64 carry-less product is the bit reversal of the
 * low half of the product of the reversed operands, shifted right by one (the product has 127
 * bits). Karatsuba: lo = Yl*Hl, hi = Yh*Hh, mid = (Yl^Yh)*(Hl^Hh) ^ lo ^ hi. */
static NOINLINE void gf_mul(void) {
  u64 y0 = yl, y1 = yh, y2 = y0 ^ y1;
  u64 y0r = rev64(y0), y1r = rev64(y1), y2r = y0r ^ y1r; /* rev64 is linear */
  u64 z0 = bmul64(y0, hs[0]), z1 = bmul64(y1, hs[1]), z2 = bmul64(y2, hs[2]);
  u64 z0h = bmul64(y0r, hs[3]), z1h = bmul64(y1r, hs[4]), z2h = bmul64(y2r, hs[5]);
  z2 ^= z0 ^ z1;
  z2h ^= z0h ^ z1h;
  z0h = rev64(z0h) >> 1;
  z1h = rev64(z1h) >> 1;
  z2h = rev64(z2h) >> 1;
  /* 256-bit product v3:v2:v1:v0 (v3 most significant), reflected and one bit short. */
  u64 v0 = z0, v1 = z0h ^ z2, v2 = z1 ^ z2h, v3 = z1h;
  v3 = (v3 << 1) | (v2 >> 63);
  v2 = (v2 << 1) | (v1 >> 63);
  v1 = (v1 << 1) | (v0 >> 63);
  v0 <<= 1;
  /* Bit p of the 256-bit value is the coefficient of x^(255-p): v3 holds degrees 0..63, v2
   * 64..127, v1 128..191, v0 192..255. x^(128+k) = x^k (1 + x + x^2 + x^7): fold v0 into v2:v1,
   * then v1 (including what v0 left in it) into v3:v2. */
  v2 ^= v0 ^ (v0 >> 1) ^ (v0 >> 2) ^ (v0 >> 7);
  v1 ^= (v0 << 63) ^ (v0 << 62) ^ (v0 << 57);
  v3 ^= v1 ^ (v1 >> 1) ^ (v1 >> 2) ^ (v1 >> 7);
  v2 ^= (v1 << 63) ^ (v1 << 62) ^ (v1 << 57);
  yh = v3;
  yl = v2;
}

static NOINLINE void ghash(const u8 *p, u32 len) {
  while (len >= 16) {
    yh ^= load_be64(p);
    yl ^= load_be64(p + 8);
    gf_mul();
    p += 16;
    len -= 16;
  }
  if (len) {
    u8 last[16];
    u32 i;
    for (i = 0; i < 16; i++) last[i] = i < len ? p[i] : 0; /* len is public */
    yh ^= load_be64(last);
    yl ^= load_be64(last + 8);
    gf_mul();
  }
}

/* Set H (as four big-endian 32-bit words of E_K(0^128)) and its split forms, and Y = 0. */
static NOINLINE void init(u32 ha, u32 hb, u32 hc, u32 hd) {
  u64 h[6];
  u32 i;
  h[1] = ((u64)ha << 32) | hb;
  h[0] = ((u64)hc << 32) | hd;
  h[2] = h[0] ^ h[1];
  h[3] = rev64(h[0]);
  h[4] = rev64(h[1]);
  h[5] = rev64(h[2]);
  for (i = 0; i < 6; i++) {
    hs[i][0] = h[i] & 0x1111111111111111ULL;
    hs[i][1] = h[i] & 0x2222222222222222ULL;
    hs[i][2] = h[i] & 0x4444444444444444ULL;
    hs[i][3] = h[i] & 0x8888888888888888ULL;
  }
  yh = 0;
  yl = 0;
}

/* Absorb the frame AAD: 0x0F || counter (u64 big-endian), zero-padded to a block. */
static NOINLINE void aad(u32 ctr_hi, u32 ctr_lo) {
  u64 ctr = ((u64)ctr_hi << 32) | ctr_lo;
  yh = (0x0FULL << 56) | (ctr >> 8);
  yl = ctr << 56;
  gf_mul();
}

/* io.buf[0..len) ^= io.ks[0..len) */
static NOINLINE void xor_keystream(u32 len) {
  u32 i = 0;
  for (; i + 8 <= len; i += 8) {
    u64 a, b;
    __builtin_memcpy(&a, io.buf + i, 8);
    __builtin_memcpy(&b, io.ks + i, 8);
    a ^= b;
    __builtin_memcpy(io.buf + i, &a, 8);
  }
  for (; i < len; i++) io.buf[i] ^= io.ks[i];
}

/* Absorb the length block (9 bytes of AAD, len bytes of ciphertext); the tag is Y ^ E_K(J0):
 * returned in *th:*tl. */
static NOINLINE void finish(u32 len, u64 *th, u64 *tl) {
  yh ^= 9 * 8;
  yl ^= (u64)len << 3;
  gf_mul();
  *th = yh ^ load_be64(io.mask);
  *tl = yl ^ load_be64(io.mask + 8);
}

EXPORT(lk_io) u32 lk_io(void) { return (u32)(unsigned long)&io; }
EXPORT(lk_chunk) u32 lk_chunk(void) { return CHUNK; }

/*
 * Seal a frame of len <= CHUNK bytes under counter ctr_hi:ctr_lo, with H = ha:hb:hc:hd,
 * io.mask = E_K(J0), io.ks = the keystream for len bytes, io.buf = the plaintext. Leaves
 * ciphertext || tag in io.buf[0..len+16).
 */
EXPORT(lk_seal) void lk_seal(u32 ctr_hi, u32 ctr_lo, u32 len, u32 ha, u32 hb, u32 hc, u32 hd) {
  u64 th, tl;
  if (len > CHUNK) return;
  init(ha, hb, hc, hd);
  aad(ctr_hi, ctr_lo);
  xor_keystream(len);
  ghash(io.buf, len);
  finish(len, &th, &tl);
  store_be64(io.buf + len, th);
  store_be64(io.buf + len + 8, tl);
}

/*
 * Open a frame: as lk_seal, with io.buf = ciphertext (len <= CHUNK bytes) || 16-byte tag.
 * Returns 1 and leaves the plaintext in io.buf when the tag matches (compared in constant time),
 * else returns 0 and leaves the ciphertext there.
 */
EXPORT(lk_open) u32 lk_open(u32 ctr_hi, u32 ctr_lo, u32 len, u32 ha, u32 hb, u32 hc, u32 hd) {
  u64 th, tl, d;
  u32 ok;
  if (len > CHUNK) return 0;
  init(ha, hb, hc, hd);
  aad(ctr_hi, ctr_lo);
  ghash(io.buf, len);
  finish(len, &th, &tl);
  d = (th ^ load_be64(io.buf + len)) | (tl ^ load_be64(io.buf + len + 8));
  d |= d >> 32;
  ok = (u32)((((d & 0xFFFFFFFFULL) - 1) >> 63) & 1); /* 1 iff d == 0 */
  if (ok) xor_keystream(len); /* the outcome is public */
  return ok;
}

/* GHASH alone, for tests: lk_ghash_init (H, Y = 0), lk_ghash (absorb io.buf[0..len),
 * zero-padded), lk_ghash_out (Y to io.ghash_out). */
EXPORT(lk_ghash_init) void lk_ghash_init(u32 ha, u32 hb, u32 hc, u32 hd) { init(ha, hb, hc, hd); }
EXPORT(lk_ghash) void lk_ghash(u32 len) { if (len <= CHUNK) ghash(io.buf, len); }
EXPORT(lk_ghash_out) void lk_ghash_out(void) {
  store_be64(io.ghash_out, yh);
  store_be64(io.ghash_out + 8, yl);
}

/* Counter blocks for AES-ECB: for frames ctr .. ctr+frames-1, blocks
 * 00000000 || frame counter (u64 BE) || first, first+1, ... first+blocks-1 (u32 BE), into io.ctr.
 * Returns the number of bytes written (0 if they would not fit). */
EXPORT(lk_fill_ctr) u32 lk_fill_ctr(u32 frames, u32 blocks, u32 first, u32 ctr_hi, u32 ctr_lo) {
  u64 ctr = ((u64)ctr_hi << 32) | ctr_lo;
  u64 total = (u64)frames * blocks * 16;
  u8 *p = io.ctr;
  u32 f, b;
  if (total > CHUNK) return 0;
  for (f = 0; f < frames; f++, ctr++) {
    u64 w0 = __builtin_bswap64(ctr >> 32); /* 00000000 || counter high half */
    u32 w1 = __builtin_bswap32((u32)ctr);  /* counter low half */
    for (b = 0; b < blocks; b++, p += 16) {
      u32 w2 = __builtin_bswap32(first + b); /* block number */
      __builtin_memcpy(p, &w0, 8);
      __builtin_memcpy(p + 8, &w1, 4);
      __builtin_memcpy(p + 12, &w2, 4);
    }
  }
  return (u32)total;
}

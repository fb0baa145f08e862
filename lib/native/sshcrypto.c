/*
 * paramiko-ts's optional native packet ciphers.
 *
 * node:crypto makes a new OpenSSL context for every AES-GCM packet (the nonce changes per
 * packet and Node cannot re-arm a decipher) and returns a fresh Buffer from every update. This
 * module keeps one EVP context per direction, re-arms it with the next nonce, and writes into
 * memory the caller owns. It links against the OpenSSL that node itself exports: no other
 * library, nothing downloaded. lib/crypto/native.ts loads it; without it the node:crypto
 * classes in lib/crypto/modes.ts do the same work.
 *
 * AES-GCM's wire layout (OpenSSH PROTOCOL, RFC 5647 section 7): uint32 length (clear, the AAD)
 * || ciphertext || 16-byte tag. The 12-byte nonce is 4 fixed bytes and a 64-bit big-endian
 * invocation counter, incremented after each packet.
 *
 * chacha20-poly1305@openssh.com (OpenSSH's PROTOCOL.chacha20poly1305): a 64-byte key, K_2 its
 * first half, K_1 its second; the nonce is the packet's sequence number. The length is XORed
 * with ChaCha20(K_1) block 0; the payload with ChaCha20(K_2) from block 1; the tag is
 * Poly1305 over the encrypted length and payload, keyed with the first 32 bytes of ChaCha20(K_2)
 * block 0. node:crypto has ChaCha20 but no Poly1305 (lib/crypto/poly1305.ts has ours).
 *
 * sntrup761's polynomial arithmetic (lib/crypto/sntrup761.ts has the same in TypeScript, and
 * the key exchange around it): products and inverses in Z[x]/(x^p - x - 1). Key generation
 * inverts twice, ~25 ms in a process's first key exchange (interpreted code) and ~6 ms after;
 * here well under a millisecond.
 */
#include <node_api.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GCM_TAG 16
#define GCM_NONCE 12
#define LENGTH_FIELD 4

/* Each state starts with its kind, so a state of one kind handed to the other is refused. */
#define GCM_KIND 0x47434d31u    /* "GCM1" */
#define CHACHA_KIND 0x43484131u /* "CHA1" */

/* The first member of every state: what it is, and which way it works. */
typedef struct {
  uint32_t kind;
  int encrypt;
} state_head;

typedef struct {
  state_head head;
  EVP_CIPHER_CTX *ctx;
  unsigned char nonce[GCM_NONCE];
} gcm_state;

static void gcm_free(napi_env env, void *data, void *hint) {
  gcm_state *s = data;
  EVP_CIPHER_CTX_free(s->ctx); /* cleanses the key schedule */
  memset(s->nonce, 0, sizeof s->nonce);
  free(s);
}

static void next_nonce(unsigned char *nonce) {
  for (int i = GCM_NONCE - 1; i >= 4; i--) {
    if (++nonce[i] != 0) return;
  }
}

/* Throws a TypeError and returns NULL, for a caller's mistake (ours: the TypeScript side checks). */
static napi_value fail(napi_env env, const char *what) {
  napi_throw_type_error(env, NULL, what);
  return NULL;
}

/* The elements of a typed array of type `want` (a view of a SharedArrayBuffer too); `length` counts elements. */
static int elements_of(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *length) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, length, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

/* The bytes of a Uint8Array (Buffer, or a view of a SharedArrayBuffer). */
static int bytes_of(napi_env env, napi_value v, unsigned char **data, size_t *length) {
  void *p;
  if (!elements_of(env, v, napi_uint8_array, &p, length)) return 0;
  *data = p;
  return 1;
}

static int uint_of(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
}

/* The state behind an External made here, if it is of this kind and direction; else NULL. */
static void *state_of(napi_env env, napi_value v, uint32_t kind, int encrypt) {
  void *p;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return NULL;
  state_head *head = p;
  return head->kind == kind && head->encrypt == encrypt ? p : NULL;
}

/* A seal or open call's arguments: (state, [seq,] input, out, offset). */
typedef struct {
  void *state;
  uint32_t seq;
  unsigned char *in;
  size_t in_length;
  unsigned char *dst; /* out + offset, with room for the output */
} packet_call;

/*
 * Parses a seal or open call of `name` on a state of `kind` and direction `encrypt`. The input
 * must have at least `min_in` bytes; the output is its length plus `delta` bytes (the tag added,
 * or the length word and tag removed). Returns 0 after throwing a TypeError.
 */
static int packet_args(napi_env env, napi_callback_info info, const char *name, uint32_t kind, int encrypt, int with_seq,
                       size_t min_in, long delta, packet_call *c) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  size_t at = with_seq ? 2 : 1, out_length;
  unsigned char *out;
  uint32_t offset;
  char message[96];
  if (argc < at + 3 || !(c->state = state_of(env, argv[0], kind, encrypt)) || (with_seq && !uint_of(env, argv[1], &c->seq)) ||
      !bytes_of(env, argv[at], &c->in, &c->in_length) || !bytes_of(env, argv[at + 1], &out, &out_length) ||
      !uint_of(env, argv[at + 2], &offset)) {
    snprintf(message, sizeof message, "%s(%sState, %sinput, out, offset)", name, encrypt ? "seal" : "open", with_seq ? "seq, " : "");
    fail(env, message);
    return 0;
  }
  if (c->in_length < min_in || c->in_length > INT32_MAX - 64) {
    snprintf(message, sizeof message, "%s: input too short", name);
    fail(env, message);
    return 0;
  }
  size_t need = (size_t)((long)c->in_length + delta);
  if (offset > out_length || out_length - offset < need) {
    snprintf(message, sizeof message, "%s: output too small", name);
    fail(env, message);
    return 0;
  }
  c->dst = out + offset;
  return 1;
}

/* A call's result as a JavaScript number or boolean. */
static napi_value uint32_value(napi_env env, uint32_t n) {
  napi_value v;
  napi_create_uint32(env, n, &v);
  return v;
}

static napi_value boolean_value(napi_env env, bool b) {
  napi_value v;
  napi_get_boolean(env, b, &v);
  return v;
}

/* Hands a new state to JavaScript as an External that frees it when collected. */
static napi_value wrap_state(napi_env env, void *s, napi_finalize free_state, const char *failure) {
  napi_value external;
  if (napi_create_external(env, s, free_state, NULL, &external) != napi_ok) {
    free_state(env, s, NULL);
    return fail(env, failure);
  }
  return external;
}

/* gcmCreate(key: 16 or 32 bytes, nonce: 12 bytes, encrypt: boolean): External */
static napi_value gcm_create(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *key, *nonce;
  size_t key_length, nonce_length;
  bool encrypt;
  if (argc < 3 || !bytes_of(env, argv[0], &key, &key_length) || !bytes_of(env, argv[1], &nonce, &nonce_length) ||
      napi_get_value_bool(env, argv[2], &encrypt) != napi_ok) {
    return fail(env, "gcmCreate(key, nonce, encrypt)");
  }
  if ((key_length != 16 && key_length != 32) || nonce_length < GCM_NONCE) return fail(env, "gcmCreate: key of 16 or 32 bytes, nonce of 12");
  gcm_state *s = calloc(1, sizeof *s);
  if (!s) return fail(env, "gcmCreate: out of memory");
  s->head.kind = GCM_KIND;
  s->head.encrypt = encrypt;
  s->ctx = EVP_CIPHER_CTX_new();
  memcpy(s->nonce, nonce, GCM_NONCE);
  const EVP_CIPHER *cipher = key_length == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  if (!s->ctx || EVP_CipherInit_ex(s->ctx, cipher, NULL, key, NULL, encrypt) != 1) {
    gcm_free(env, s, NULL);
    return fail(env, "gcmCreate: OpenSSL refused the key");
  }
  return wrap_state(env, s, gcm_free, "gcmCreate: cannot wrap the context");
}

/*
 * gcmSeal(state, packet, out, offset): number
 * packet = uint32 length || body (padding included, a multiple of 16). Writes length ||
 * ciphertext || tag at out[offset..] and returns the bytes written (packet.length + 16).
 */
static napi_value gcm_seal(napi_env env, napi_callback_info info) {
  packet_call c;
  if (!packet_args(env, info, "gcmSeal", GCM_KIND, 1, 0, LENGTH_FIELD, GCM_TAG, &c)) return NULL;
  gcm_state *s = c.state;
  int body = (int)(c.in_length - LENGTH_FIELD), n = 0;
  int ok = EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, s->nonce, -1) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, NULL, &n, c.in, LENGTH_FIELD) == 1;
  /* The length word is copied after the AAD is taken: packet and out may be the same memory. */
  memmove(c.dst, c.in, LENGTH_FIELD);
  ok = ok && EVP_CipherUpdate(s->ctx, c.dst + LENGTH_FIELD, &n, c.in + LENGTH_FIELD, body) == 1;
  ok = ok && EVP_CipherFinal_ex(s->ctx, c.dst + LENGTH_FIELD + body, &n) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, c.dst + LENGTH_FIELD + body) == 1;
  next_nonce(s->nonce);
  if (!ok) return fail(env, "gcmSeal: OpenSSL failed");
  return uint32_value(env, (uint32_t)(c.in_length + GCM_TAG));
}

/*
 * gcmOpen(state, wire, out, offset): boolean
 * wire = uint32 length || ciphertext || tag. Writes the plaintext (wire.length - 20 bytes) at
 * out[offset..]; false when the tag does not verify (out then holds unauthenticated bytes that
 * the caller must not use).
 */
static napi_value gcm_open(napi_env env, napi_callback_info info) {
  packet_call c;
  if (!packet_args(env, info, "gcmOpen", GCM_KIND, 0, 0, LENGTH_FIELD + GCM_TAG, -(LENGTH_FIELD + GCM_TAG), &c)) return NULL;
  gcm_state *s = c.state;
  int body = (int)(c.in_length - LENGTH_FIELD - GCM_TAG), n = 0;
  unsigned char tag[GCM_TAG];
  memcpy(tag, c.in + LENGTH_FIELD + body, GCM_TAG);
  int ok = EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, s->nonce, -1) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, NULL, &n, c.in, LENGTH_FIELD) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, c.dst, &n, c.in + LENGTH_FIELD, body) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1;
  ok = ok && EVP_CipherFinal_ex(s->ctx, c.dst + body, &n) == 1;
  next_nonce(s->nonce);
  return boolean_value(env, ok);
}

/* ---- chacha20-poly1305@openssh.com ---- */

#define CHACHA_KEY 64
#define POLY_TAG 16

typedef struct {
  state_head head;
  EVP_CIPHER_CTX *main;   /* K_2: the Poly1305 key (block 0) and the payload (block 1 on) */
  EVP_CIPHER_CTX *header; /* K_1: the length (block 0) */
  EVP_MAC_CTX *poly;
} chacha_state;

static void chacha_free(napi_env env, void *data, void *hint) {
  chacha_state *s = data;
  EVP_CIPHER_CTX_free(s->main);
  EVP_CIPHER_CTX_free(s->header);
  EVP_MAC_CTX_free(s->poly);
  free(s);
}

/*
 * OpenSSL's ChaCha20 IV is the state's words 12-15: a 32-bit little-endian block counter and a
 * 96-bit nonce. OpenSSH's layout is djb's (64-bit counter, 64-bit nonce): word 13, the counter's
 * high half, is zero here, and the nonce is the sequence number as a 64-bit big-endian value.
 */
static int chacha_xor(EVP_CIPHER_CTX *ctx, uint32_t counter, uint32_t seq, const unsigned char *in, unsigned char *out, int n) {
  unsigned char iv[16] = {0};
  iv[0] = counter & 0xff;
  iv[1] = (counter >> 8) & 0xff;
  iv[2] = (counter >> 16) & 0xff;
  iv[3] = counter >> 24;
  iv[12] = seq >> 24;
  iv[13] = (seq >> 16) & 0xff;
  iv[14] = (seq >> 8) & 0xff;
  iv[15] = seq & 0xff;
  int len = 0;
  return EVP_CipherInit_ex(ctx, NULL, NULL, NULL, iv, -1) == 1 && (n == 0 || EVP_CipherUpdate(ctx, out, &len, in, n) == 1);
}

/* Poly1305 of data[0..n), keyed with K_2's block 0 for packet seq, into tag. */
static int chacha_tag(chacha_state *s, uint32_t seq, const unsigned char *data, size_t n, unsigned char *tag) {
  static const unsigned char zeros[32] = {0};
  unsigned char key[32];
  size_t out = 0;
  int ok = chacha_xor(s->main, 0, seq, zeros, key, 32);
  ok = ok && EVP_MAC_init(s->poly, key, sizeof key, NULL) == 1;
  ok = ok && EVP_MAC_update(s->poly, data, n) == 1;
  ok = ok && EVP_MAC_final(s->poly, tag, &out, POLY_TAG) == 1 && out == POLY_TAG;
  OPENSSL_cleanse(key, sizeof key);
  return ok;
}

/* chachaCreate(key: 64 bytes, encrypt: boolean): External */
static napi_value chacha_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *key;
  size_t key_length;
  bool encrypt;
  if (argc < 2 || !bytes_of(env, argv[0], &key, &key_length) || napi_get_value_bool(env, argv[1], &encrypt) != napi_ok) {
    return fail(env, "chachaCreate(key, encrypt)");
  }
  if (key_length != CHACHA_KEY) return fail(env, "chachaCreate: key of 64 bytes");
  chacha_state *s = calloc(1, sizeof *s);
  if (!s) return fail(env, "chachaCreate: out of memory");
  s->head.kind = CHACHA_KIND;
  s->head.encrypt = encrypt;
  s->main = EVP_CIPHER_CTX_new();
  s->header = EVP_CIPHER_CTX_new();
  EVP_MAC *mac = EVP_MAC_fetch(NULL, "POLY1305", NULL);
  s->poly = mac ? EVP_MAC_CTX_new(mac) : NULL;
  EVP_MAC_free(mac); /* the context holds its own reference */
  unsigned char iv[16] = {0};
  if (!s->main || !s->header || !s->poly || EVP_CipherInit_ex(s->main, EVP_chacha20(), NULL, key, iv, 1) != 1 ||
      EVP_CipherInit_ex(s->header, EVP_chacha20(), NULL, key + 32, iv, 1) != 1) {
    chacha_free(env, s, NULL);
    return fail(env, "chachaCreate: OpenSSL has no ChaCha20 or Poly1305");
  }
  return wrap_state(env, s, chacha_free, "chachaCreate: cannot wrap the context");
}

/* chachaLength(openState, seq, header: 4+ bytes): the packet length, decrypted with K_1. */
static napi_value chacha_length(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  chacha_state *s;
  uint32_t seq;
  unsigned char *header, plain[LENGTH_FIELD];
  size_t header_length;
  if (argc < 3 || !(s = state_of(env, argv[0], CHACHA_KIND, 0)) || !uint_of(env, argv[1], &seq) || !bytes_of(env, argv[2], &header, &header_length) ||
      header_length < LENGTH_FIELD) {
    return fail(env, "chachaLength(openState, seq, header)");
  }
  if (!chacha_xor(s->header, 0, seq, header, plain, LENGTH_FIELD)) return fail(env, "chachaLength: OpenSSL failed");
  return uint32_value(env, ((uint32_t)plain[0] << 24) | ((uint32_t)plain[1] << 16) | ((uint32_t)plain[2] << 8) | plain[3]);
}

/*
 * chachaSeal(sealState, seq, packet, out, offset): number
 * Writes the encrypted length, the encrypted body and the tag at out[offset..]; returns
 * packet.length + 16.
 */
static napi_value chacha_seal(napi_env env, napi_callback_info info) {
  packet_call c;
  if (!packet_args(env, info, "chachaSeal", CHACHA_KIND, 1, 1, LENGTH_FIELD, POLY_TAG, &c)) return NULL;
  chacha_state *s = c.state;
  int body = (int)(c.in_length - LENGTH_FIELD);
  int ok = chacha_xor(s->header, 0, c.seq, c.in, c.dst, LENGTH_FIELD);
  ok = ok && chacha_xor(s->main, 1, c.seq, c.in + LENGTH_FIELD, c.dst + LENGTH_FIELD, body);
  ok = ok && chacha_tag(s, c.seq, c.dst, c.in_length, c.dst + c.in_length);
  if (!ok) return fail(env, "chachaSeal: OpenSSL failed");
  return uint32_value(env, (uint32_t)(c.in_length + POLY_TAG));
}

/*
 * chachaOpen(openState, seq, wire, out, offset): boolean
 * Checks the tag over the wire bytes, then writes the plaintext body (wire.length - 20 bytes)
 * at out[offset..]; false, with nothing decrypted, when the tag does not verify.
 */
static napi_value chacha_open(napi_env env, napi_callback_info info) {
  packet_call c;
  if (!packet_args(env, info, "chachaOpen", CHACHA_KIND, 0, 1, LENGTH_FIELD + POLY_TAG, -(LENGTH_FIELD + POLY_TAG), &c)) return NULL;
  chacha_state *s = c.state;
  size_t end = c.in_length - POLY_TAG;
  unsigned char tag[POLY_TAG];
  if (!chacha_tag(s, c.seq, c.in, end, tag)) return fail(env, "chachaOpen: OpenSSL failed");
  bool ok = CRYPTO_memcmp(tag, c.in + end, POLY_TAG) == 0;
  if (ok && !chacha_xor(s->main, 1, c.seq, c.in + LENGTH_FIELD, c.dst, (int)(end - LENGTH_FIELD))) return fail(env, "chachaOpen: OpenSSL failed");
  return boolean_value(env, ok);
}

/* The int32 elements of an Int32Array. */
static int int32s_of(napi_env env, napi_value v, int32_t **data, size_t *length) {
  void *p;
  if (!elements_of(env, v, napi_int32_array, &p, length)) return 0;
  *data = p;
  return 1;
}

/* The largest ring degree and modulus the polynomial functions take (sntrup761: 761 and 4591). */
#define POLY_MAX_DEGREE 4096
#define POLY_MAX_MODULUS 32768

/*
 * polyMultiply(a: Int32Array(p), b: Int32Array(p), out: Int32Array(p))
 * out = a * b in Z[x]/(x^p - x - 1), coefficients not reduced (the caller reduces them; in
 * sntrup761 one factor is small, so they stay far inside int32).
 */
static napi_value poly_multiply(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t *a, *b, *out;
  size_t p, pb, po;
  if (argc < 3 || !int32s_of(env, argv[0], &a, &p) || !int32s_of(env, argv[1], &b, &pb) || !int32s_of(env, argv[2], &out, &po) ||
      pb != p || po != p || p < 2 || p > POLY_MAX_DEGREE) {
    return fail(env, "polyMultiply(a, b, out: Int32Arrays of one length p, 2 <= p <= 4096)");
  }
  int64_t *prod = calloc(2 * p - 1, sizeof *prod);
  if (!prod) return fail(env, "polyMultiply: out of memory");
  for (size_t i = 0; i < p; i++) {
    int64_t bi = b[i];
    if (bi == 0) continue;
    for (size_t j = 0; j < p; j++) prod[i + j] += bi * a[j];
  }
  /* x^p = x + 1: fold the top half down, highest degree first */
  for (size_t k = 2 * p - 2; k >= p; k--) {
    prod[k - p] += prod[k];
    prod[k - p + 1] += prod[k];
  }
  for (size_t i = 0; i < p; i++) out[i] = (int32_t)prod[i];
  OPENSSL_cleanse(prod, (2 * p - 1) * sizeof *prod);
  free(prod);
  return NULL;
}

/* a^(m-2) mod m: the inverse of a (not 0 mod m) for a prime m. */
static int32_t inverse_mod(int64_t a, int32_t m) {
  int64_t result = 1, base = ((a % m) + m) % m;
  for (int32_t e = m - 2; e > 0; e >>= 1) {
    if (e & 1) result = result * base % m;
    base = base * base % m;
  }
  return (int32_t)result;
}

static long degree_from(const int32_t *poly, long from) {
  while (from >= 0 && poly[from] == 0) from--;
  return from;
}

/*
 * 1/a in (Z/m)[x]/(x^p - x - 1) into out (coefficients in [0, m)), by the extended Euclidean
 * algorithm on (x^p - x - 1, a), the steps lib/crypto/sntrup761.ts takes; `work` holds 4(p + 1)
 * int32s. Returns 1, 0 when a shares a factor with the modulus, -1 if a degree bound broke.
 * Inlined where m is a constant, so that the reductions compile to multiplications.
 */
static inline __attribute__((always_inline)) int invert_mod(const int32_t *a, size_t p, int32_t m, int32_t *out, int32_t *work) {
  size_t n = p + 1; /* degrees 0..p: r0 starts as x^p - x - 1, and deg t <= p - deg r of the other */
  int32_t *r0 = work, *r1 = work + n, *t0 = work + 2 * n, *t1 = work + 3 * n, *swap;
  r0[0] = m - 1;
  r0[1] = m - 1;
  r0[p] = 1;
  for (size_t i = 0; i < p; i++) r1[i] = ((a[i] % m) + m) % m;
  t1[0] = 1;
  long d0 = (long)p, d1 = degree_from(r1, (long)p - 1), e0 = -1, e1 = 0, tmp;
  /* invariant: r_i = t_i a (mod x^p - x - 1); every value in [0, m), so m^2 + m fits in int32 */
  while (d1 > 0) {
    int32_t lead = inverse_mod(r1[d1], m);
    while (d0 >= d1) {
      int32_t c = m - (int32_t)((int64_t)r0[d0] * lead % m);
      long s = d0 - d1;
      if (e1 + s >= (long)n) return -1; /* cannot happen for a modulus of degree p */
      for (long i = 0; i <= d1; i++) r0[i + s] = (r0[i + s] + c * r1[i]) % m;
      for (long i = 0; i <= e1; i++) t0[i + s] = (t0[i + s] + c * t1[i]) % m;
      if (e1 + s > e0) e0 = e1 + s;
      d0 = degree_from(r0, d0);
    }
    swap = r0, r0 = r1, r1 = swap;
    swap = t0, t0 = t1, t1 = swap;
    tmp = d0, d0 = d1, d1 = tmp;
    tmp = e0, e0 = e1, e1 = tmp;
  }
  if (d1 < 0) return 0;
  int32_t scale = inverse_mod(r1[0], m);
  for (size_t i = 0; i < p; i++) out[i] = (int32_t)((int64_t)t1[i] * scale % m);
  return 1;
}

/*
 * polyInvert(a: Int32Array(p), m: prime below 32768, out: Int32Array(p)): boolean
 * out = 1/a in (Z/m)[x]/(x^p - x - 1) (invert_mod); false when a is not invertible. Running
 * time depends on a, as the TypeScript's does.
 */
static napi_value poly_invert(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t *a, *out;
  size_t p, po;
  uint32_t m;
  if (argc < 3 || !int32s_of(env, argv[0], &a, &p) || !uint_of(env, argv[1], &m) || !int32s_of(env, argv[2], &out, &po) || po != p ||
      p < 2 || p > POLY_MAX_DEGREE || m < 2 || m >= POLY_MAX_MODULUS) {
    return fail(env, "polyInvert(a: Int32Array(p), m: 2 <= m < 32768, out: Int32Array(p)), 2 <= p <= 4096");
  }
  size_t words = 4 * (p + 1);
  int32_t *work = calloc(words, sizeof *work);
  if (!work) return fail(env, "polyInvert: out of memory");
  /* sntrup761's two moduli as constants; any other as a variable */
  int result = m == 3 ? invert_mod(a, p, 3, out, work) : m == 4591 ? invert_mod(a, p, 4591, out, work) : invert_mod(a, p, (int32_t)m, out, work);
  OPENSSL_cleanse(work, words * sizeof *work); /* a key's secret polynomials went through here */
  free(work);
  if (result < 0) return fail(env, "polyInvert: degree bound exceeded");
  return boolean_value(env, result == 1);
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
    {"gcmCreate", NULL, gcm_create, NULL, NULL, NULL, napi_default, NULL},
    {"gcmSeal", NULL, gcm_seal, NULL, NULL, NULL, napi_default, NULL},
    {"gcmOpen", NULL, gcm_open, NULL, NULL, NULL, napi_default, NULL},
    {"chachaCreate", NULL, chacha_create, NULL, NULL, NULL, napi_default, NULL},
    {"chachaLength", NULL, chacha_length, NULL, NULL, NULL, napi_default, NULL},
    {"chachaSeal", NULL, chacha_seal, NULL, NULL, NULL, napi_default, NULL},
    {"chachaOpen", NULL, chacha_open, NULL, NULL, NULL, napi_default, NULL},
    {"polyMultiply", NULL, poly_multiply, NULL, NULL, NULL, napi_default, NULL},
    {"polyInvert", NULL, poly_invert, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  napi_value version;
  napi_create_uint32(env, 3, &version);
  napi_set_named_property(env, exports, "abiVersion", version);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

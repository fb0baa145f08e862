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
 * Wire layout (OpenSSH PROTOCOL, RFC 5647 section 7): uint32 length (clear, the AAD) ||
 * ciphertext || 16-byte tag. The 12-byte nonce is 4 fixed bytes and a 64-bit big-endian
 * invocation counter, incremented after each packet.
 */
#include <node_api.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GCM_TAG 16
#define GCM_NONCE 12
#define LENGTH_FIELD 4

typedef struct {
  EVP_CIPHER_CTX *ctx;
  unsigned char nonce[GCM_NONCE];
  int encrypt;
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

/* The bytes of a Uint8Array (Buffer, or a view of a SharedArrayBuffer). */
static int bytes_of(napi_env env, napi_value v, unsigned char **data, size_t *length) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, length, &p, NULL, NULL) != napi_ok) return 0;
  if (type != napi_uint8_array) return 0;
  *data = p;
  return 1;
}

static int uint_of(napi_env env, napi_value v, uint32_t *out) {
  return napi_get_value_uint32(env, v, out) == napi_ok;
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
  s->ctx = EVP_CIPHER_CTX_new();
  s->encrypt = encrypt;
  memcpy(s->nonce, nonce, GCM_NONCE);
  const EVP_CIPHER *cipher = key_length == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  if (!s->ctx || EVP_CipherInit_ex(s->ctx, cipher, NULL, key, NULL, encrypt) != 1) {
    gcm_free(env, s, NULL);
    return fail(env, "gcmCreate: OpenSSL refused the key");
  }
  napi_value external;
  if (napi_create_external(env, s, gcm_free, NULL, &external) != napi_ok) {
    gcm_free(env, s, NULL);
    return fail(env, "gcmCreate: cannot wrap the context");
  }
  return external;
}

static gcm_state *state_of(napi_env env, napi_value v, int encrypt) {
  void *p;
  if (napi_get_value_external(env, v, &p) != napi_ok || !p) return NULL;
  gcm_state *s = p;
  return s->encrypt == encrypt ? s : NULL;
}

/*
 * gcmSeal(state, packet, out, offset): number
 * packet = uint32 length || body (padding included, a multiple of 16). Writes length ||
 * ciphertext || tag at out[offset..] and returns the bytes written (packet.length + 16).
 */
static napi_value gcm_seal(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *packet, *out;
  size_t packet_length, out_length;
  uint32_t offset;
  gcm_state *s;
  if (argc < 4 || !(s = state_of(env, argv[0], 1)) || !bytes_of(env, argv[1], &packet, &packet_length) ||
      !bytes_of(env, argv[2], &out, &out_length) || !uint_of(env, argv[3], &offset)) {
    return fail(env, "gcmSeal(sealState, packet, out, offset)");
  }
  if (packet_length < LENGTH_FIELD || packet_length > INT32_MAX - GCM_TAG) return fail(env, "gcmSeal: packet too short");
  size_t total = packet_length + GCM_TAG;
  if (offset > out_length || out_length - offset < total) return fail(env, "gcmSeal: output too small");
  int body = (int)(packet_length - LENGTH_FIELD), n = 0;
  unsigned char *dst = out + offset;
  int ok = EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, s->nonce, -1) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, NULL, &n, packet, LENGTH_FIELD) == 1;
  /* The length word is copied after the AAD is taken: packet and out may be the same memory. */
  memmove(dst, packet, LENGTH_FIELD);
  ok = ok && EVP_CipherUpdate(s->ctx, dst + LENGTH_FIELD, &n, packet + LENGTH_FIELD, body) == 1;
  ok = ok && EVP_CipherFinal_ex(s->ctx, dst + LENGTH_FIELD + body, &n) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG, dst + LENGTH_FIELD + body) == 1;
  next_nonce(s->nonce);
  if (!ok) return fail(env, "gcmSeal: OpenSSL failed");
  napi_value result;
  napi_create_uint32(env, (uint32_t)total, &result);
  return result;
}

/*
 * gcmOpen(state, wire, out, offset): boolean
 * wire = uint32 length || ciphertext || tag. Writes the plaintext (wire.length - 20 bytes) at
 * out[offset..]; false when the tag does not verify (out then holds unauthenticated bytes that
 * the caller must not use).
 */
static napi_value gcm_open(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  unsigned char *wire, *out;
  size_t wire_length, out_length;
  uint32_t offset;
  gcm_state *s;
  if (argc < 4 || !(s = state_of(env, argv[0], 0)) || !bytes_of(env, argv[1], &wire, &wire_length) ||
      !bytes_of(env, argv[2], &out, &out_length) || !uint_of(env, argv[3], &offset)) {
    return fail(env, "gcmOpen(openState, wire, out, offset)");
  }
  if (wire_length < LENGTH_FIELD + GCM_TAG || wire_length > INT32_MAX) return fail(env, "gcmOpen: wire packet too short");
  size_t body_length = wire_length - LENGTH_FIELD - GCM_TAG;
  if (offset > out_length || out_length - offset < body_length) return fail(env, "gcmOpen: output too small");
  int body = (int)body_length, n = 0;
  unsigned char tag[GCM_TAG];
  memcpy(tag, wire + LENGTH_FIELD + body, GCM_TAG);
  int ok = EVP_CipherInit_ex(s->ctx, NULL, NULL, NULL, s->nonce, -1) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, NULL, &n, wire, LENGTH_FIELD) == 1;
  ok = ok && EVP_CipherUpdate(s->ctx, out + offset, &n, wire + LENGTH_FIELD, body) == 1;
  ok = ok && EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG, tag) == 1;
  ok = ok && EVP_CipherFinal_ex(s->ctx, out + offset + body, &n) == 1;
  next_nonce(s->nonce);
  napi_value result;
  napi_get_boolean(env, ok, &result);
  return result;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor functions[] = {
    {"gcmCreate", NULL, gcm_create, NULL, NULL, NULL, napi_default, NULL},
    {"gcmSeal", NULL, gcm_seal, NULL, NULL, NULL, napi_default, NULL},
    {"gcmOpen", NULL, gcm_open, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof functions / sizeof functions[0], functions);
  napi_value version;
  napi_create_uint32(env, 1, &version);
  napi_set_named_property(env, exports, "abiVersion", version);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)

// The system OpenSSL (libssl-dev, 3.x) as seen from Swift.
// Function-like macros and cast-built constants are invisible to Swift, so the few the
// project needs are re-exported here as static inline functions.
#ifndef CODEXPOOL_COPENSSL_SHIM_H
#define CODEXPOOL_COPENSSL_SHIM_H

#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/opensslv.h>
#include <openssl/crypto.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/hmac.h>

static inline unsigned long codexpool_openssl_version_number(void) { return OPENSSL_VERSION_NUMBER; }

static inline long codexpool_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long codexpool_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long codexpool_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long codexpool_BIO_set_mem_eof_return(BIO *bio, int value) { return BIO_set_mem_eof_return(bio, value); }
static inline uint64_t codexpool_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t codexpool_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline long codexpool_SSL_MODE_RELEASE_BUFFERS(void) { return SSL_MODE_RELEASE_BUFFERS; }

/// Selects http/1.1 when the client offers it, and no protocol otherwise (never h2: the gateway
/// speaks HTTP/1.1 only).
static inline int codexpool_alpn_select_http11(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                                               const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char http11[] = "\x08http/1.1";
    if (SSL_select_next_proto((unsigned char **)out, outlen, http11, sizeof(http11) - 1, in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void codexpool_SSL_CTX_select_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, codexpool_alpn_select_http11, NULL);
}

/// SHA-256 of the certificate's DER SubjectPublicKeyInfo (what `openssl pkey -pubin -outform der | openssl dgst -sha256` hashes).
static inline int codexpool_spki_sha256(X509 *cert, unsigned char out[32]) {
    unsigned char *der = NULL;
    int length = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
    if (length <= 0) return 0;
    unsigned int digestLength = 0;
    int ok = EVP_Digest(der, (size_t)length, out, &digestLength, EVP_sha256(), NULL);
    OPENSSL_free(der);
    return ok == 1 && digestLength == 32;
}

/// A fresh P-256 key and a self-signed certificate for it (valid from an hour ago for `days`),
/// subject CN `common_name`, subjectAltName `alt_names` ("DNS:localhost,IP:127.0.0.1"), both
/// written as PEM to the two BIOs, and the SHA-256 of its public key (for pinning). For
/// `codexpool demo`; returns 1 on success.
static inline int codexpool_make_self_signed(const char *common_name, const char *alt_names, long days, BIO *certificate_out, BIO *key_out,
                                             unsigned char spki_sha256_out[32]) {
    int ok = 0;
    EVP_PKEY *key = NULL;
    X509 *certificate = NULL;
    X509_EXTENSION *extension = NULL;
    BIGNUM *serial = NULL;
    EVP_PKEY_CTX *generator = EVP_PKEY_CTX_new_id(EVP_PKEY_EC, NULL);
    if (generator == NULL || EVP_PKEY_keygen_init(generator) <= 0
        || EVP_PKEY_CTX_set_ec_paramgen_curve_nid(generator, NID_X9_62_prime256v1) <= 0
        || EVP_PKEY_keygen(generator, &key) <= 0) goto done;
    certificate = X509_new();
    serial = BN_new();
    if (certificate == NULL || serial == NULL || X509_set_version(certificate, 2) != 1) goto done;
    if (BN_rand(serial, 120, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 || BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(certificate)) == NULL) goto done;
    if (X509_gmtime_adj(X509_getm_notBefore(certificate), -3600) == NULL || X509_gmtime_adj(X509_getm_notAfter(certificate), days * 86400L) == NULL) goto done;
    if (X509_set_pubkey(certificate, key) != 1) goto done;
    X509_NAME *name = X509_get_subject_name(certificate);
    if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)common_name, -1, -1, 0) != 1) goto done;
    if (X509_set_issuer_name(certificate, name) != 1) goto done;
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, certificate, certificate, NULL, NULL, 0);
    extension = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, alt_names);
    if (extension == NULL || X509_add_ext(certificate, extension, -1) != 1) goto done;
    if (X509_sign(certificate, key, EVP_sha256()) <= 0) goto done;
    if (codexpool_spki_sha256(certificate, spki_sha256_out) != 1) goto done;
    if (PEM_write_bio_X509(certificate_out, certificate) != 1) goto done;
    if (PEM_write_bio_PrivateKey(key_out, key, NULL, NULL, 0, NULL, NULL) != 1) goto done;
    ok = 1;
done:
    X509_EXTENSION_free(extension);
    BN_free(serial);
    X509_free(certificate);
    EVP_PKEY_free(key);
    EVP_PKEY_CTX_free(generator);
    return ok;
}

#endif

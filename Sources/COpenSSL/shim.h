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

#endif

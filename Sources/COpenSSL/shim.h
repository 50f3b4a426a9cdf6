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

#endif

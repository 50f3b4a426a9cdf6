import COpenSSL

/// Facts about the OpenSSL library the process is linked against at run time.
///
/// The run-time version matters more than the headers' one: Debian security updates replace
/// `libssl.so.3` without a rebuild, and operators ask which one they are running.
public enum OpenSSLLibrary {
    /// For example `OpenSSL 3.0.19 27 Jan 2026`.
    public static var versionText: String {
        guard let text = OpenSSL_version(OPENSSL_VERSION) else { return "OpenSSL (unknown version)" }
        return String(cString: text)
    }

    /// The major version of the library in use; codexpool needs 3 or later.
    public static var majorVersion: Int {
        Int(OpenSSL_version_num() >> 28)
    }
}

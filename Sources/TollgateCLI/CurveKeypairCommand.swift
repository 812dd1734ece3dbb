import ArgumentParser
import TollgateZeroMQ

/// `tollgate curve-keypair`: prints a new CURVE key pair (Z85) for `zeromq.curve`: one for the
/// collectors (the public key goes to every sidecar's config) and one per sidecar (its public key
/// goes into the collectors' `allowed_client_keys`).
struct CurveKeypairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "curve-keypair",
        abstract: "Print a new CURVE key pair (Z85) for zeromq.curve.",
        discussion: """
        Keep the secret key out of config files: put it in an environment variable and name it with
        server_secret_key_env (collector) or client_secret_key_env (sidecar).
        """
    )

    @Flag(help: "Print the pair as shell exports (TOLLGATE_CURVE_PUBLIC_KEY, TOLLGATE_CURVE_SECRET_KEY).")
    var env = false

    func run() throws {
        let pair = try ZMQCurveKeyPair.generate()
        if env {
            // Z85 may contain characters the shell treats specially: single quotes keep them literal.
            print("export TOLLGATE_CURVE_PUBLIC_KEY='\(pair.publicKey.z85)'")
            print("export TOLLGATE_CURVE_SECRET_KEY='\(pair.secretKey.z85)'")
        } else {
            print("public_key: \(pair.publicKey.z85)")
            print("secret_key: \(pair.secretKey.z85)")
        }
    }
}

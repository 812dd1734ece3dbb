/// Where and in what a Tollgate deployment is paid: the server's own side of every x402 challenge.
///
/// Prices live with plans; these settings say which asset on which network, paid to whom, and
/// which facilitator verifies and settles. The token's EIP-712 domain (`extraName`,
/// `extraVersion`) always comes from config: it differs between networks (Base Sepolia USDC is
/// `USDC`/`2`, Base mainnet USDC is `USD Coin`/`2`).
public struct X402Settings: Hashable, Sendable {
    /// The network payments are made on.
    public var network: X402Network
    /// The token contract.
    public var asset: EVMAddress
    /// The recipient of every payment.
    public var payTo: EVMAddress
    /// The token's EIP-712 domain name.
    public var extraName: String
    /// The token's EIP-712 domain version.
    public var extraVersion: String
    /// Decimals of the asset, for display only; amounts stay integer atomic units everywhere.
    public var decimals: Int
    /// How long a signed authorization may stay valid, in seconds (`maxTimeoutSeconds`).
    public var maxTimeoutSeconds: Int
    /// The facilitator's base URL (`/verify`, `/settle`, `/supported` are appended).
    public var facilitatorURL: String
    /// Value of the `Authorization` header sent to the facilitator, when it needs one.
    public var facilitatorAuthorization: String?
    /// Timeout for each facilitator call, in milliseconds.
    public var facilitatorTimeoutMs: Int
    /// How long a payment-identifier id is kept, with its response once settled, in seconds.
    public var idempotencyTTLSeconds = 3_600
    /// Largest paid response (status, headers and body) kept for replay under its
    /// payment-identifier id; a larger one settles as usual but a retry gets 409. 0 keeps none.
    public var idempotencyMaxResponseBytes = 256 * 1_024

    /// Creates settings; `X402Settings.validate` is applied by the config loader.
    public init(
        network: X402Network,
        asset: EVMAddress,
        payTo: EVMAddress,
        extraName: String,
        extraVersion: String,
        decimals: Int = 6,
        maxTimeoutSeconds: Int = 60,
        facilitatorURL: String,
        facilitatorAuthorization: String? = nil,
        facilitatorTimeoutMs: Int = 10_000
    ) {
        self.network = network
        self.asset = asset
        self.payTo = payTo
        self.extraName = extraName
        self.extraVersion = extraVersion
        self.decimals = decimals
        self.maxTimeoutSeconds = maxTimeoutSeconds
        self.facilitatorURL = facilitatorURL
        self.facilitatorAuthorization = facilitatorAuthorization
        self.facilitatorTimeoutMs = facilitatorTimeoutMs
    }
}

extension X402Settings {
    /// The most `idempotencyMaxResponseBytes` may be: a kept response travels to the collector in one
    /// ZeroMQ frame, and a frame must also fit the payment header and the rest of the request.
    public static let idempotencyResponseCeiling = 3 << 20
}

import TollgateX402

/// The asset every amount of a usage report or bill is counted in, so a client can format the
/// integer atomic units (`4000000` with 6 decimals is `4.000000`) without guessing.
///
/// Amounts themselves are never scaled or rounded: they stay integer atomic units.
public struct BillingCurrency: Codable, Sendable, Hashable {
    /// The token contract (the x402 asset), or nil when the collector has no `x402` section.
    public var asset: String?
    /// The token's name (the x402 EIP-712 domain name, e.g. `USDC`), when known.
    public var name: String?
    /// Decimals of the asset: atomic units per whole unit are `10^decimals`.
    public var decimals: Int

    /// A currency; the default is an unnamed asset with 6 decimals (USDC's), what plans are priced in
    /// when no x402 section is configured.
    public init(asset: String? = nil, name: String? = nil, decimals: Int = 6) {
        self.asset = asset
        self.name = name
        self.decimals = decimals
    }

    /// The currency of a deployment's x402 settings (or the default without them).
    public init(x402 settings: X402Settings?) {
        guard let settings else {
            self.init()
            return
        }
        self.init(asset: settings.asset.description, name: settings.extraName, decimals: settings.decimals)
    }
}

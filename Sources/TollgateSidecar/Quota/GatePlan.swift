import TollgateCore

/// A key's effective plan as the quota gate reads it: compiled once into a small array of plain
/// rules, and shared by every request (and every cached key) on the same plan.
///
/// Deciding reads only the rules, which hold numbers and enums and no strings, so a decision copies
/// nothing that is reference counted; the full `EffectiveMeteredFeature` is read on the rare paths
/// (a slot's first period, a refusal's policy).
///
/// Threading: immutable; `Sendable`.
///
/// ```swift
/// let plan = GatePlan(key.effectivePlan)   // once per distinct plan (the key directory shares it)
/// let request = GateRequest(keyID: id, plan: plan, feature: .apiCall)
/// ```
public final class GatePlan: Sendable, Hashable {
    /// The plan this was compiled from.
    public let effectivePlan: EffectivePlan
    /// The plan's name.
    public let planName: String
    /// The rate tier's name, if the plan has a tier (the `RateLimit` policy name).
    public let rateTierName: String?
    /// Whether the plan has a rate tier.
    let hasRateTier: Bool
    /// Feature names, in the order of `rules`.
    let names: [FeatureName]
    /// What deciding needs of each feature.
    let rules: [GateRule]
    /// The metered features in full, indexed by `MeteredRule.index`.
    let metered: [EffectiveMeteredFeature]

    /// Compiles `plan`.
    public init(_ plan: EffectivePlan) {
        self.effectivePlan = plan
        self.planName = plan.planName
        self.rateTierName = plan.rateTier?.name
        self.hasRateTier = plan.rateTier != nil
        var names: [FeatureName] = []
        var rules: [GateRule] = []
        var metered: [EffectiveMeteredFeature] = []
        for (name, feature) in plan.features.sorted(by: { $0.key < $1.key }) {
            names.append(name)
            switch feature {
            case .boolean(let enabled):
                rules.append(.boolean(enabled: enabled))
            case .metered(let feature):
                rules.append(.metered(MeteredRule(index: UInt32(metered.count), feature)))
                metered.append(feature)
            }
        }
        self.names = names
        self.rules = rules
        self.metered = metered
    }

    /// The position of `name` in `rules`, or nil when the plan does not have it.
    func ruleIndex(of name: FeatureName) -> Int? {
        names.firstIndex(of: name)
    }

    /// The `RateLimit` policy name of the quota of `feature` (the metered feature's own name).
    func quotaName(of feature: FeatureName) -> String {
        guard let index = ruleIndex(of: feature), case .metered(let rule) = rules[index] else { return feature.rawValue }
        return metered[Int(rule.index)].name.rawValue
    }

    /// Plans are equal when their effective plans are (the same instance is equal at once).
    public static func == (lhs: GatePlan, rhs: GatePlan) -> Bool {
        lhs === rhs || lhs.effectivePlan == rhs.effectivePlan
    }

    /// Hashes the effective plan.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(effectivePlan)
    }
}

/// What deciding needs of one feature of a plan.
enum GateRule {
    /// A switch.
    case boolean(enabled: Bool)
    /// A metered feature.
    case metered(MeteredRule)
}

/// A metered feature's figures as plain numbers, so that reading them copies no strings.
struct MeteredRule {
    /// Its position in `GatePlan.metered`.
    var index: UInt32
    /// Units included per period.
    var limit: UInt64
    /// `EffectiveMeteredFeature.leaseBudget`: nil when admission is unbounded (uncapped overage).
    var budget: UInt64?
    var mode: QuotaMode
    var whenUnreachable: CollectorUnreachablePolicy

    init(index: UInt32, _ feature: EffectiveMeteredFeature) {
        self.index = index
        self.limit = feature.limit
        self.budget = feature.leaseBudget
        self.mode = feature.quotaMode
        self.whenUnreachable = feature.whenCollectorUnreachable
    }
}

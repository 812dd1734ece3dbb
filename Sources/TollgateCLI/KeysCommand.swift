import ArgumentParser
import Foundation

/// `tollgate keys ...`: the collector's admin API for API keys, from the command line.
///
/// ```
/// tollgate keys list
/// tollgate keys create --name acme --plan pro          # prints the new API key once
/// tollgate keys set-plan acme free
/// tollgate keys set-limit acme api_call=5000 tokens=none
/// tollgate keys credit acme 500 --idempotency-key ticket-1234
/// tollgate keys revoke acme
/// ```
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List and change API keys through a collector's admin API.",
        discussion: "A key is named by its id (64 hex digits) or its name. The token comes from --token or TOLLGATE_ADMIN_TOKEN.",
        subcommands: [List.self, Show.self, Create.self, SetPlan.self, SetLimit.self, Revoke.self, Unrevoke.self, Credit.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every key.")
        @OptionGroup var options: CollectorOptions

        func run() async throws {
            let answer = try await CollectorClient(options).send("GET", "/v1/admin/keys")
            if options.json { return printJSON(answer) }
            KeysOutput.table(answer["keys"] as? [[String: Any]] ?? [])
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one key with its effective plan.")
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String

        func run() async throws {
            let answer = try await CollectorClient(options).send("GET", "/v1/admin/keys/\(CollectorClient.segment(key))")
            if options.json { return printJSON(answer) }
            KeysOutput.details(answer)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a key. Without --key or --key-sha256 the collector makes one and prints it once."
        )
        @OptionGroup var options: CollectorOptions
        @Option(help: "A name for the key (unique).") var name: String
        @Option(help: "The key's plan.") var plan: String
        @Option(help: "The API key itself (it is stored hashed).") var key: String?
        @Option(name: .customLong("key-sha256"), help: "The SHA-256 of the API key, so the key never leaves your machine.") var keySHA256: String?
        @Option(name: .customLong("limit"), help: ArgumentHelp("A limit override, feature=N (repeatable).", valueName: "feature=N"))
        var limits: [String] = []
        @Option(help: "The Stripe customer billed for the key.") var stripeCustomer: String?

        func run() async throws {
            var body: [String: Any] = ["name": name, "plan": plan]
            if let key { body["key"] = key }
            if let keySHA256 { body["key_sha256"] = keySHA256 }
            if let stripeCustomer { body["stripe_customer"] = stripeCustomer }
            let parsed = try KeysOutput.limits(limits)
            if !parsed.isEmpty {
                guard parsed.values.allSatisfy({ $0 != nil }) else { throw ValidationError("--limit takes feature=N") }
                body["limits"] = parsed.mapValues { $0! }
            }
            let answer = try await CollectorClient(options).send("POST", "/v1/admin/keys", body: body)
            if options.json { return printJSON(answer) }
            let created = answer["key"] as? [String: Any] ?? [:]
            print("created key \(created["name"] ?? name) on plan \(created["plan"] ?? plan) (version \(answer["version"] ?? "?"))")
            print("  id: \(created["id"] ?? "?")")
            if let apiKey = answer["api_key"] as? String {
                print("  api key: \(apiKey)")
                print("  (shown once: the collector stores only its SHA-256)")
            }
        }
    }

    struct SetPlan: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set-plan", abstract: "Move a key to another plan.")
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String
        @Argument(help: "The plan.") var plan: String

        func run() async throws {
            let answer = try await CollectorClient(options).send("PUT", "/v1/admin/keys/\(CollectorClient.segment(key))/plan", body: ["plan": plan])
            KeysOutput.change(answer, json: options.json, what: "plan \(plan)")
        }
    }

    struct SetLimit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "set-limit", abstract: "Override a key's limits per feature (feature=N), or clear an override (feature=none)."
        )
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String
        @Argument(help: ArgumentHelp("feature=N or feature=none, one or more.", valueName: "feature=limit")) var limits: [String]

        func run() async throws {
            let parsed = try KeysOutput.limits(limits)
            guard !parsed.isEmpty else { throw ValidationError("give at least one feature=N or feature=none") }
            let body = parsed.mapValues { $0.map { $0 as Any } ?? NSNull() }
            let answer = try await CollectorClient(options).send("PUT", "/v1/admin/keys/\(CollectorClient.segment(key))/limits", body: body)
            KeysOutput.change(answer, json: options.json, what: "limits " + limits.joined(separator: " "))
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a key: its calls are refused fleet-wide.")
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String

        func run() async throws {
            let answer = try await CollectorClient(options).send("POST", "/v1/admin/keys/\(CollectorClient.segment(key))/revoke")
            KeysOutput.change(answer, json: options.json, what: "revoked")
        }
    }

    struct Unrevoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Undo a revocation.")
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String

        func run() async throws {
            let answer = try await CollectorClient(options).send("POST", "/v1/admin/keys/\(CollectorClient.segment(key))/unrevoke")
            KeysOutput.change(answer, json: options.json, what: "unrevoked")
        }
    }

    struct Credit: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Grant units on top of a key's quota for the current period.",
            discussion: "With --idempotency-key, running the same credit again counts once."
        )
        @OptionGroup var options: CollectorOptions
        @Argument(help: "The key's id or name.") var key: String
        @Argument(help: "Units to credit.") var units: UInt64
        @Option(help: "The metered feature (default api_call).") var feature: String?
        @Option(help: "Makes retries safe: the same key, feature and units count once.") var idempotencyKey: String?

        func run() async throws {
            var body: [String: Any] = ["units": units]
            if let feature { body["feature"] = feature }
            if let idempotencyKey { body["idempotency_key"] = idempotencyKey }
            let answer = try await CollectorClient(options).send("POST", "/v1/admin/keys/\(CollectorClient.segment(key))/credit", body: body)
            if options.json { return printJSON(answer) }
            let verb = answer["duplicate"] as? Bool == true ? "already credited" : "credited"
            print("\(verb) \(answer["units"] ?? units) \(answer["feature"] ?? "") units in \(answer["period"] ?? "?"): "
                + "\(answer["credit_total"] ?? "?") credited this period (version \(answer["version"] ?? "?"))")
        }
    }
}

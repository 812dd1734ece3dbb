extension RedisConnection {
    /// Sends `SCRIPT LOAD`, remembers the SHA in `script`, and returns it.
    @discardableResult
    public func loadScript(_ script: RedisScript) throws -> String {
        let reply = try self.send("SCRIPT", "LOAD", RedisArgument(script.source))
        guard let sha = reply.string, case .bulk = reply else {
            throw RedisError(
                code: .unexpectedReply,
                message: "SCRIPT LOAD returned \(reply)",
                command: "SCRIPT",
                endpoint: self.configuration.endpoint.description
            )
        }
        script.remember(sha: sha)
        return sha
    }

    /// Runs `script` with `EVALSHA`; loads it first if needed, and once more if the server answers `NOSCRIPT`.
    ///
    /// Retrying after `NOSCRIPT` is safe: the server refused the call without running anything.
    /// That happens after `SCRIPT FLUSH`, a restart, or a failover to a replica that never saw the script.
    @discardableResult
    public func evalScript(_ script: RedisScript, keys: [RedisArgument] = [], args: [RedisArgument] = []) throws -> RedisReply {
        let sha = try script.sha ?? self.loadScript(script)
        do {
            return try self.send(Self.evalSHA(sha, keys: keys, args: args))
        } catch let error as RedisError where error.code == .noScript {
            let reloaded = try self.loadScript(script)
            return try self.send(Self.evalSHA(reloaded, keys: keys, args: args))
        }
    }

    /// Runs `script` once per call in one pipeline and returns the replies in order; error replies are returned, not thrown.
    ///
    /// Calls answered `NOSCRIPT` did not run, so after reloading the script only those are sent again (once).
    public func pipelineScript(_ script: RedisScript, calls: [RedisScriptCall]) throws -> [RedisReply] {
        let sha = try script.sha ?? self.loadScript(script)
        var replies = try self.pipeline(calls.map { Self.evalSHA(sha, keys: $0.keys, args: $0.args) })
        let missed = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missed.isEmpty else { return replies }
        let reloaded = try self.loadScript(script)
        let retried = try self.pipeline(missed.map { Self.evalSHA(reloaded, keys: calls[$0].keys, args: calls[$0].args) })
        for (index, reply) in zip(missed, retried) {
            replies[index] = reply
        }
        return replies
    }

    /// Runs scripts and plain commands, in order, in one round trip and returns their replies;
    /// error replies are returned, not thrown.
    ///
    /// Scripts not loaded yet are loaded first. Steps answered `NOSCRIPT` did not run, so once
    /// their scripts are reloaded only those are sent again (once), in their order: use this for
    /// steps that do not depend on one another's effects.
    public func pipeline(_ steps: [RedisPipelineStep]) throws -> [RedisReply] {
        for case .script(let script, _) in steps where script.sha == nil {
            try self.loadScript(script)
        }
        var replies = try self.pipeline(try steps.map { try $0.arguments() })
        let missed = replies.indices.filter { replies[$0].errorMessage?.hasPrefix("NOSCRIPT") == true }
        guard !missed.isEmpty else { return replies }
        var reloaded = Set<ObjectIdentifier>()
        for index in missed {
            guard case .script(let script, _) = steps[index], reloaded.insert(ObjectIdentifier(script)).inserted else { continue }
            try self.loadScript(script)
        }
        let retried = try self.pipeline(try missed.map { try steps[$0].arguments() })
        for (index, reply) in zip(missed, retried) {
            replies[index] = reply
        }
        return replies
    }

    /// Runs one step on its own (`send` or `evalScript`); a server error reply is thrown.
    @discardableResult
    public func run(_ step: RedisPipelineStep) throws -> RedisReply {
        switch step {
        case .command(let arguments): try self.send(arguments)
        case .script(let script, let call): try self.evalScript(script, keys: call.keys, args: call.args)
        }
    }

    static func evalSHA(_ sha: String, keys: [RedisArgument], args: [RedisArgument]) -> [RedisArgument] {
        var arguments: [RedisArgument] = ["EVALSHA", RedisArgument(sha), RedisArgument(keys.count)]
        arguments.reserveCapacity(3 + keys.count + args.count)
        arguments.append(contentsOf: keys)
        arguments.append(contentsOf: args)
        return arguments
    }
}

/// One step of a mixed pipeline (`RedisConnection.pipeline(_:)` with steps): a
/// script run or a plain command.
public enum RedisPipelineStep: Sendable {
    /// A plain command: its name and arguments.
    case command([RedisArgument])
    /// A run of a script.
    case script(RedisScript, RedisScriptCall)

    func arguments() throws -> [RedisArgument] {
        switch self {
        case .command(let arguments):
            return arguments
        case .script(let script, let call):
            guard let sha = script.sha else {
                throw RedisError(code: .unexpectedReply, message: "a pipelined script was not loaded", command: "EVALSHA", endpoint: nil)
            }
            return RedisConnection.evalSHA(sha, keys: call.keys, args: call.args)
        }
    }
}

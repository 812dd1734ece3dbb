import Foundation
import Hummingbird
import TollgateConfig
import TollgateCore
import TollgateStore
import TollgateWire

extension AdminAPI {
    func listPlans(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let plans = try await self.redis { connection, registry in try registry.plans(on: connection) }
        return AdminJSON.response(.ok, ["plans": plans.mapValues(PlanDocument.encode)])
    }

    func showPlan(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let plans = try await self.redis { connection, registry in try registry.plans(on: connection) }
        guard let plan = plans[name] else { throw AdminError(.notFound, "unknown_plan", "no plan named \"\(name)\"") }
        return AdminJSON.response(.ok, ["name": name, "plan": PlanDocument.encode(plan)])
    }

    /// Creates or replaces a plan from a document in the config file's shape; publishes PLAN_CHANGED on `u.*`.
    func putPlan(_ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let plan = try PlanDocument.decode(name: name, json: try await self.body(request), decimals: self.moneyDecimals)
        if PlanDocument.asksForPayment(plan), !self.acceptsPayments {
            throw AdminError(.badRequest, "invalid_plan", "plan \(name) asks for payment, but the collector has no x402 section")
        }
        let change = try await self.redis { connection, registry in try registry.upsertPlan(plan, on: connection) }
        if change.changed {
            // Every key on the plan is affected: one fleet-wide update instead of one per key.
            self.publish(.planChanged, version: change.version) { $0.plan = name }
        }
        return AdminJSON.response(.ok, [
            "name": name, "plan": PlanDocument.encode(plan), "changed": change.changed, "version": change.version,
        ])
    }
}

/// How much capacity a plan has relative to Plus, used to weight selection and aggregation.
///
/// Pro has roughly ten times Plus's Codex allowance, so one Pro account at 50 % has more room
/// than one Plus account at 10 %.
public enum PlanWeight {
    /// Weight for a plan name as the backend spells it (`plan_type`).
    public static func weight(forPlan plan: String?) -> Double {
        resolve(plan).weight
    }

    /// The weight and whether the plan name was recognized (unknown plans count as Plus; the
    /// shell logs that once so an operator can tell us about a new plan).
    public static func resolve(_ plan: String?) -> (weight: Double, recognized: Bool) {
        guard let plan = plan?.lowercased(), !plan.isEmpty else { return (1, true) }
        switch plan {
        case "pro": return (10, true)
        case "prolite", "pro_lite", "pro-lite": return (5, true)
        case "plus", "free", "go", "team", "business", "enterprise", "edu", "education", "k12": return (1, true)
        default: return (1, false)
        }
    }

    /// A peer instance's pool counts as ten until it reports its real total.
    public static let externalDefault: Double = 10
}

import Foundation

/// Expands `${NAME}` references in configuration values from the environment.
///
/// Forms: `${NAME}` (the variable must be set), `${NAME:-fallback}` (fallback when unset or
/// empty), and `$${` for a literal `${`. A `$` followed by anything else is kept as is, so
/// passwords containing `$` need no escaping. Expansion runs on scalar values after YAML parsing,
/// so a variable's value can never change the structure of the file.
enum EnvironmentExpansion {
    enum Failure: Error, Hashable {
        case missingVariable(String)
        case unterminatedReference
        case invalidName(String)

        var message: String {
            switch self {
            case .missingVariable(let name):
                "environment variable \(name) is not set (use ${\(name):-fallback} for a default)"
            case .unterminatedReference:
                "unterminated ${ reference (write $${ for a literal ${)"
            case .invalidName(let name):
                "\"\(name)\" is not a valid environment variable name"
            }
        }
    }

    static func expand(_ text: String, environment: [String: String]) -> Result<String, Failure> {
        guard text.contains("${") else { return .success(text) }
        var output = ""
        var rest = Substring(text)
        while let dollar = rest.firstIndex(of: "$") {
            output += rest[..<dollar]
            let afterDollar = rest[rest.index(after: dollar)...]
            if afterDollar.hasPrefix("${") {
                output += "${"
                rest = afterDollar.dropFirst(2)
                continue
            }
            guard afterDollar.hasPrefix("{") else {
                output += "$"
                rest = afterDollar
                continue
            }
            let body = afterDollar.dropFirst()
            guard let close = body.firstIndex(of: "}") else { return .failure(.unterminatedReference) }
            let reference = body[..<close]
            rest = body[body.index(after: close)...]
            let name: Substring
            let fallback: Substring?
            if let separator = reference.range(of: ":-") {
                name = reference[..<separator.lowerBound]
                fallback = reference[separator.upperBound...]
            } else {
                name = reference
                fallback = nil
            }
            guard isValidName(name) else { return .failure(.invalidName(String(name))) }
            if let value = environment[String(name)], !(value.isEmpty && fallback != nil) {
                output += value
            } else if let fallback {
                output += fallback
            } else {
                return .failure(.missingVariable(String(name)))
            }
        }
        output += rest
        return .success(output)
    }

    private static func isValidName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.isASCIILetter else { return false }
        return name.unicodeScalars.allSatisfy { $0 == "_" || $0.isASCIILetter || ("0"..."9").contains($0) }
    }
}

extension Unicode.Scalar {
    var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}

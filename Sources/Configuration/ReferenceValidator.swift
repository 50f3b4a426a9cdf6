import PoolCore
import Yams

/// Rules that relate configuration entries to each other: unique tags, names and tokens, and
/// references from balancers and users to credentials that exist and have the right type.
struct ReferenceValidator {
    let reader: ConfigurationReader

    func check(credentials: [DecodedCredential], users: [DecodedUser]) {
        let byTag = checkUniqueTags(credentials)
        checkBalancerMembers(credentials, byTag: byTag)
        checkReceiverTokens(credentials)
        checkUsers(users, credentials: credentials, byTag: byTag)
    }

    /// The first credential of each tag; later ones are reported as duplicates.
    private func checkUniqueTags(_ credentials: [DecodedCredential]) -> [String: DecodedCredential] {
        var byTag: [String: DecodedCredential] = [:]
        for credential in credentials {
            if let first = byTag[credential.tag] {
                reader.report("duplicate credential tag \(reader.quoted(credential.tag)) (first used\(lineSuffix(first.tagValue)))",
                              at: credential.tagValue)
            } else {
                byTag[credential.tag] = credential
            }
        }
        return byTag
    }

    private func checkBalancerMembers(_ credentials: [DecodedCredential], byTag: [String: DecodedCredential]) {
        for balancer in credentials where balancer.kind == .balancer {
            var seen: Set<String> = []
            for member in balancer.members {
                if !seen.insert(member.tag).inserted {
                    reader.report("\(reader.quoted(member.tag)) is listed twice", at: member.value)
                    continue
                }
                guard let target = byTag[member.tag] else {
                    reader.report("unknown credential \(reader.quoted(member.tag))\(knownTagsHint(byTag, kinds: [.local, .external]))", at: member.value)
                    continue
                }
                if target.kind == .balancer {
                    reader.report("\(reader.quoted(member.tag)) is a balancer; a balancer's members must be default or external credentials",
                                  at: member.value)
                }
            }
        }
    }

    /// A connector dialling in is matched to its credential by token, so receiving tokens must differ.
    private func checkReceiverTokens(_ credentials: [DecodedCredential]) {
        var firstByToken: [String: DecodedCredential] = [:]
        for credential in credentials where credential.kind == .external {
            guard case .external(let external)? = credential.configuration, let tokenValue = credential.tokenValue else { continue }
            if case .connector = external.mode { continue }
            if let first = firstByToken[external.token.value] {
                reader.report("same token as credential \(reader.quoted(first.tag)); every external credential that accepts connectors needs its own token",
                              at: tokenValue)
            } else {
                firstByToken[external.token.value] = credential
            }
        }
    }

    private func checkUsers(_ users: [DecodedUser], credentials: [DecodedCredential], byTag: [String: DecodedCredential]) {
        var firstByName: [String: DecodedUser] = [:]
        var firstByToken: [String: DecodedUser] = [:]
        for user in users {
            if let first = firstByName[user.name] {
                reader.report("duplicate user name \(reader.quoted(user.name)) (first used\(lineSuffix(first.nameValue)))", at: user.nameValue)
            } else {
                firstByName[user.name] = user
            }
            if let first = firstByToken[user.token] {
                reader.report("same token as user \(reader.quoted(first.name)); every user needs their own token", at: user.tokenValue)
            } else {
                firstByToken[user.token] = user
            }
            if let credential = user.credential {
                if byTag[credential.tag] == nil {
                    reader.report("unknown credential \(reader.quoted(credential.tag))\(knownTagsHint(byTag, kinds: nil))", at: credential.value)
                }
            } else if credentials.count > 1 {
                reader.report("required when there is more than one credential\(knownTagsHint(byTag, kinds: nil))",
                              at: user.item.mark, path: user.item.path.appending(key: "credential"))
            }
            if let external = user.externalCredential {
                if let target = byTag[external.tag] {
                    if target.kind != .external {
                        reader.report("\(reader.quoted(external.tag)) is a \(target.kind.rawValue) credential; external_credential must name an external credential",
                                      at: external.value)
                    }
                } else {
                    reader.report("unknown credential \(reader.quoted(external.tag))\(knownTagsHint(byTag, kinds: [.external]))", at: external.value)
                }
            }
        }
    }

    private func lineSuffix(_ value: ConfigurationValue) -> String {
        value.mark.map { " on line \($0.line)" } ?? ""
    }

    private func knownTagsHint(_ byTag: [String: DecodedCredential], kinds: Set<DecodedCredential.Kind>?) -> String {
        let tags = byTag.values.filter { kinds?.contains($0.kind) ?? true }
            .sorted { ($0.tagValue.mark?.line ?? 0) < ($1.tagValue.mark?.line ?? 0) }.map(\.tag)
        return tags.isEmpty ? "" : " (known: \(tags.joined(separator: ", ")))"
    }
}


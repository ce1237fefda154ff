//! Who may do what to a resource: the permission rules of a type, judged for one user.

use crate::auth::Identity;

/// One entry of a permission list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Any authenticated user.
    Authenticated,
    /// The resource's owner (for `create`: anyone, since the creator becomes the owner).
    Owner,
    /// Holders of this role.
    Role(String),
}

/// The permissions of a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rules {
    /// Who may create.
    pub create: Vec<Rule>,
    /// Who may read.
    pub read: Vec<Rule>,
    /// Who may update.
    pub update: Vec<Rule>,
    /// Who may delete.
    pub delete: Vec<Rule>,
}

/// How much of a type a user may reach with one permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every resource of the type.
    All,
    /// Only the resources the user owns.
    Own,
    /// None.
    Nothing,
}

/// How far `rules` let `who` reach.
pub fn reach(rules: &[Rule], who: &Identity) -> Reach {
    let all = rules.iter().any(|rule| match rule {
        Rule::Authenticated => true,
        Rule::Role(role) => who.roles.iter().any(|r| r == role),
        Rule::Owner => false,
    });
    if all {
        Reach::All
    } else if rules.contains(&Rule::Owner) {
        Reach::Own
    } else {
        Reach::Nothing
    }
}

/// Whether `rules` let `who` act on a resource owned by `owner`.
pub fn allows(rules: &[Rule], who: &Identity, owner: &str) -> bool {
    match reach(rules, who) {
        Reach::All => true,
        Reach::Own => who.user_id == owner,
        Reach::Nothing => false,
    }
}

/// Whether `who` holds one of `roles`.
pub fn has_any_role(who: &Identity, roles: &[String]) -> bool {
    who.roles.iter().any(|r| roles.contains(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, roles: &[&str]) -> Identity {
        Identity { user_id: id.to_owned(), roles: roles.iter().map(|r| (*r).to_owned()).collect(), expires_at_ms: 0 }
    }

    #[test]
    fn owners_reach_their_own_and_roles_reach_all() {
        let rules = vec![Rule::Owner, Rule::Role("admin".to_owned())];
        assert_eq!(reach(&rules, &user("alice", &[])), Reach::Own);
        assert_eq!(reach(&rules, &user("root", &["admin"])), Reach::All);
        assert!(allows(&rules, &user("alice", &[]), "alice"));
        assert!(!allows(&rules, &user("bob", &[]), "alice"));
        assert!(allows(&rules, &user("root", &["admin"]), "alice"));
        assert_eq!(reach(&[Rule::Role("admin".to_owned())], &user("alice", &[])), Reach::Nothing);
        assert_eq!(reach(&[Rule::Authenticated], &user("alice", &[])), Reach::All);
    }
}

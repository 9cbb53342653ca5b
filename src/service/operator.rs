//! The operator: whoever runs `arkku` commands on the vault host. The
//! operator holds the vault's key files and its database URL, so the role ×
//! operation matrix does not apply: what the operator may do is what those
//! files let them do. What they do to keys is still audited, under the name
//! this module gives them.

use crate::audit::ActorRef;

/// The operator's context: who the audit entries of an operator's command
/// name.
#[derive(Debug, Clone)]
pub struct Operator {
    actor: ActorRef,
}

impl Operator {
    /// The operator running `arkku <command>` (e.g. `keys rotate`): recorded
    /// as actor `arkku-cli`, role `admin`, client `<command>`.
    pub fn cli(command: &str) -> Self {
        Operator {
            actor: ActorRef {
                sub: "arkku-cli".to_owned(),
                role: "admin".to_owned(),
                client: Some(command.to_owned()),
            },
        }
    }

    /// The actor the operator's audit entries name.
    pub fn actor(&self) -> &ActorRef {
        &self.actor
    }
}

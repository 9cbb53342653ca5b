//! Who is calling, as the edge verified it: parsed once from the token's
//! claims into typed values, never re-parsed downstream.

use uuid::Uuid;

use super::{ChannelId, Purpose, Role};

/// A verified caller.
#[derive(Debug, Clone)]
pub struct Actor {
    /// The token's subject as issued (a staff member's or service's id; for
    /// a customer, the text of [`Actor::customer`]). Recorded in audit entries.
    pub sub: String,
    pub role: Role,
    /// The purposes the token lists.
    pub purposes: Vec<Purpose>,
    /// The channel an agent serves, if the token names one.
    pub channel: Option<ChannelId>,
    /// The integration client the token was issued to, if any.
    pub client: Option<String>,
    /// The customer a customer token speaks for; `None` for every other role.
    pub customer: Option<Uuid>,
}

impl Actor {
    /// Whether the token lists `purpose`.
    pub fn lists(&self, purpose: &str) -> bool {
        self.purposes.iter().any(|p| p.as_str() == purpose)
    }
}

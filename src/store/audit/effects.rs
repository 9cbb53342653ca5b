//! Applies the [`Effect`]s of a batch inside the audit writer's transaction,
//! by calling the insert of each effect's table (consents, interactions,
//! contact points): the SQL of a table stays with its table.

use std::collections::HashSet;

use uuid::Uuid;

use super::Effect;
use crate::store::{consents, customers, interactions, StoreResult};

/// Applies one effect if its customer is live; whether it did.
pub(super) fn apply_sqlite(tx: &rusqlite::Transaction<'_>, effect: &Effect) -> StoreResult<bool> {
    match effect {
        Effect::Consent(c) => consents::insert_if_live_sqlite(tx, c),
        Effect::Interaction(i) => interactions::insert_if_live_sqlite(tx, i),
        Effect::Contact(c) => customers::add_contact_if_new_sqlite(tx, c),
    }
}

/// Applies the effects inside `tx`: one statement for the consent events,
/// two for the interactions (insert, touch contact points), one per contact
/// point; whether each applied (true where there is no effect).
pub(super) async fn apply_postgres(
    tx: &mut sqlx::PgConnection,
    effects: &[Option<Effect>],
) -> StoreResult<Vec<bool>> {
    let consents: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Some(Effect::Consent(c)) => Some(c),
            _ => None,
        })
        .collect();
    let applied_consents = consents::insert_if_live_postgres(&mut *tx, &consents).await?;
    let interactions: Vec<_> = effects
        .iter()
        .filter_map(|e| match e {
            Some(Effect::Interaction(i)) => Some(i),
            _ => None,
        })
        .collect();
    let applied_interactions =
        interactions::insert_if_live_postgres(&mut *tx, &interactions).await?;
    let mut applied_contacts: HashSet<Uuid> = HashSet::new();
    for e in effects {
        if let Some(Effect::Contact(c)) = e {
            if customers::add_contact_if_new_postgres(&mut *tx, c).await? {
                applied_contacts.insert(c.id);
            }
        }
    }
    Ok(effects
        .iter()
        .map(|e| match e {
            Some(Effect::Consent(c)) => applied_consents.contains(&c.id),
            Some(Effect::Interaction(i)) => applied_interactions.contains(&i.id),
            Some(Effect::Contact(c)) => applied_contacts.contains(&c.id),
            None => true,
        })
        .collect())
}

//! Reading interactions: a customer's, each channel decided by the
//! integration rule and opened only when permitted; and the overdue list,
//! which opens nothing.

use uuid::Uuid;

use super::{InteractionsView, OverdueList, OverdueView};
use crate::{
    domain::ChannelId,
    policy::{
        decide_channel, retention_expired, ChannelDecision, Disclosure, PurposeGrant, Retained,
        WithheldReason,
    },
    service::{
        audited::AuditScope,
        input::short_text,
        ledger,
        load::{require_live, retained},
        views::{rfc3339, InteractionView, WithheldView},
        Error, Services,
    },
    store,
    vault::records::CustomerKeys,
};

/// The interactions of customer `id` that `grant` may see.
pub(super) async fn list(
    svc: &Services,
    grant: PurposeGrant,
    id: Uuid,
    reason: Option<&str>,
    scope: &mut AuditScope,
) -> Result<InteractionsView, Error> {
    scope.reason = reason.map(|r| short_text("reason", r, 200)).transpose()?;
    require_live(svc, id).await?;
    let rows = store::interactions::for_customer(&svc.db, id).await?;
    let consents = ledger::load(svc, id).await?;
    let at = svc.clock.now();
    let mut disclosure = Disclosure::default();
    let mut keys = CustomerKeys::new(&svc.keyring, &svc.db, id);
    let mut views = Vec::new();
    for row in &rows {
        let decision = match ChannelId::parse(&row.channel) {
            Ok(ch) => decide_channel(
                &svc.policies,
                &grant,
                &ch,
                &consents,
                retained(row),
                false,
                at,
            ),
            Err(_) => ChannelDecision::Withhold(WithheldReason::IntegrationNever),
        };
        disclosure.record(&row.channel, &decision);
        svc.metrics.decision(&decision);
        if let ChannelDecision::Permit(permit) = &decision {
            let opened = keys.open_interaction(permit, row).await.map_err(|e| {
                tracing::error!(customer_id = %id, interaction_id = %row.id, error = %e, "interaction failed to open");
                Error::from(e)
            })?;
            views.push(InteractionView::from(opened));
        }
    }
    scope.disclosure(&disclosure);
    scope.detail("interactions", views.len());
    Ok(InteractionsView {
        interactions: views,
        withheld: WithheldView::list(&disclosure),
    })
}

/// At most `limit` (1 to 1000, default 100) open contact requests past due
/// and within their retention.
pub(super) async fn overdue(
    svc: &Services,
    limit: Option<u32>,
    scope: &mut AuditScope,
) -> Result<OverdueList, Error> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(Error::InvalidRequest("limit must be 1 to 1000".into()));
    }
    let at = svc.clock.now();
    let rows =
        store::interactions::overdue(&svc.db, store::to_micros(at), i64::from(limit)).await?;
    let overdue: Vec<OverdueView> = rows
        .into_iter()
        .filter(|r| {
            ChannelId::parse(&r.channel).is_ok_and(|ch| {
                let item = Retained::Interaction {
                    kind: &r.kind,
                    since: store::from_micros(r.created_at),
                };
                !retention_expired(&svc.policies, &ch, item, at)
            })
        })
        .map(|r| OverdueView {
            id: r.id,
            customer_id: r.customer_id,
            channel: r.channel,
            kind: r.kind,
            created_at: rfc3339(store::from_micros(r.created_at)),
            due_at: rfc3339(store::from_micros(r.due_at)),
        })
        .collect();
    scope.detail("overdue", overdue.len());
    scope.detail(
        "interaction_ids",
        overdue.iter().map(|o| o.id.to_string()).collect::<Vec<_>>(),
    );
    scope.detail(
        "customer_ids",
        overdue
            .iter()
            .map(|o| o.customer_id.to_string())
            .collect::<Vec<_>>(),
    );
    Ok(OverdueList { overdue })
}

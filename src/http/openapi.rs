//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::{routing::get, Json, Router};
use utoipa::{
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    Modify, OpenApi,
};

use super::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `Idempotency-Key` on every write POST (see [`super::idempotency`]).
struct IdempotencyKey;

impl Modify for IdempotencyKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{
            path::{ParameterBuilder, ParameterIn},
            schema::{ObjectBuilder, Type},
            Required,
        };
        for (path, item) in openapi.paths.paths.iter_mut() {
            let Some(op) = item.post.as_mut() else {
                continue;
            };
            if !super::idempotency::is_write(path) {
                continue;
            }
            let param = ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retry safe: a repeat with the same key and request gets the first \
                     2xx answer again (header `Idempotent-Replayed: true`) for 24 hours; \
                     the same key with another request is 422 `idempotency_key_reused`; \
                     while the first still runs, 409 `idempotency_key_in_use`. \
                     1 to 255 visible ASCII characters, scoped to the caller.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .min_length(Some(1))
                        .max_length(Some(255)),
                ))
                .build();
            op.parameters.get_or_insert_with(Vec::new).push(param);
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "arkku", description = "A privacy vault for customer contact data."),
    paths(
        super::customers::create,
        super::customers::read,
        super::customers::patch,
        super::customers::add_contact,
        super::customers::remove_contact,
        super::lookup::lookup,
        super::consents::record,
        super::consents::list,
        super::consents::record_mine,
        super::consents::list_mine,
        super::dsr::me,
        super::dsr::export_mine,
        super::dsr::export,
        super::dsr::erase_me,
        super::dsr::erase,
        super::interactions::create,
        super::interactions::list,
        super::interactions::resolve,
        super::interactions::overdue,
        super::audit::list,
        super::audit::verify_chain,
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(super::error::Problem)),
    modifiers(&BearerAuth, &IdempotencyKey)
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

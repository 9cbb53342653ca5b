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
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub fn router() -> Router<AppState> {
    Router::new().route("/openapi.json", get(|| async { Json(ApiDoc::openapi()) }))
}

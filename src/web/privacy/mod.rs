//! The customer privacy page, `/privacy/` (DESIGN.md §13): a customer signs
//! in with a one-time code and sees every contact point and interaction the
//! vault holds on them with its deletion date, switches consents, reads who
//! has seen their data, follows their requests, downloads the export and
//! erases everything.
//!
//! The pages stand on the console's frame (the [`Area::Privacy`] frame: own
//! brand link, sign-out and navigation) and call the service operations of
//! `/v1/me…` as a customer token would ([`session::Customer::caller`]), so
//! every read and change is authorised and audited as over the API. No page
//! takes a customer id from the request: the customer is the session's.

mod consents;
mod data;
mod erase;
pub mod session;
mod sign_in;
pub mod words;

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{Redirect, Response},
    routing::{get, post},
    Router,
};

use super::{error_page_in, Area, Lang, NavItem, WebState};
use crate::{http::error::status, service::Error};

const CUSTOMER: &[&str] = &["customer"];

/// The privacy page's navigation.
pub const NAV: &[NavItem] = &[
    NavItem {
        path: "/privacy/",
        key: "privacy_nav_data",
        roles: CUSTOMER,
    },
    NavItem {
        path: "/privacy/consents",
        key: "privacy_nav_consents",
        roles: CUSTOMER,
    },
    NavItem {
        path: "/privacy/access",
        key: "privacy_nav_access",
        roles: CUSTOMER,
    },
    NavItem {
        path: "/privacy/requests",
        key: "privacy_nav_requests",
        roles: CUSTOMER,
    },
    NavItem {
        path: "/privacy/erase",
        key: "privacy_nav_erase",
        roles: CUSTOMER,
    },
];

/// The privacy page's routes.
pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/privacy", get(|| async { Redirect::to("/privacy/") }))
        .route("/privacy/", get(home))
        .route("/privacy/sign-in", post(sign_in::start))
        .route("/privacy/sign-in/code", post(sign_in::verify))
        .route("/privacy/sign-out", post(erase::sign_out))
        .route(
            "/privacy/consents",
            get(consents::show).post(consents::change),
        )
        .route("/privacy/access", get(data::access))
        .route("/privacy/requests", get(data::requests))
        .route("/privacy/export", post(erase::export))
        .route("/privacy/erase", get(erase::show).post(erase::erase))
        .route("/privacy/{*rest}", get(not_found))
}

/// `GET /privacy/`: the customer's data once signed in, else the sign-in form.
async fn home(State(state): State<WebState>, headers: HeaderMap) -> Response {
    match session::Customer::of_request(&headers, &state).await {
        Ok(Some(customer)) => data::show(&state, customer).await,
        Ok(None) => sign_in::start_form(&state, &headers),
        Err(page) => page,
    }
}

async fn not_found(headers: HeaderMap) -> Response {
    let lang = Lang::of_request(&headers);
    error_page_in(
        Area::Privacy,
        lang,
        StatusCode::NOT_FOUND,
        "error_not_found",
    )
}

/// The page for a service operation's refusal or failure.
fn fail(lang: Lang, e: &Error) -> Response {
    let status = status(e);
    let key = match e {
        Error::CustomerErased | Error::NotFound => "privacy_gone",
        Error::RateLimited { .. } => "privacy_throttled",
        _ if status.is_client_error() => "error_bad_request",
        _ => "error_unavailable",
    };
    error_page_in(Area::Privacy, lang, status, key)
}

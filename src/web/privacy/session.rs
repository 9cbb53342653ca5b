//! The privacy page's extractors: [`Customer`] (a signed-in customer, else
//! a redirect to the sign-in form) and [`CustomerForm`] (a POST with origin
//! and CSRF token checked before the handler runs). They share the cookie,
//! the redirect and the form check with the console's ([`crate::web::session`]);
//! only the subject differs: a customer session names the customer, and
//! ends once the customer is erased.

use axum::{
    extract::{FromRequest, FromRequestParts, Request},
    http::{request::Parts, HeaderMap, StatusCode},
    response::Response,
};
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::{
    domain::{Actor, Role},
    service::{
        sessions::{self, SessionId},
        Caller,
    },
    web::{
        csrf, error_page_in,
        session::{checked_fields, presented, refused_origin, to_sign_in},
        Area, Frame, Lang, WebState, Who,
    },
};

/// A signed-in customer.
pub struct Customer {
    /// The customer's id: from the session, never from the request.
    pub id: Uuid,
    pub session: SessionId,
    pub lang: Lang,
    /// The token for this session's forms.
    pub csrf: String,
}

impl Customer {
    /// The customer a request's session belongs to: `Ok(None)` without a
    /// live customer session, `Err` (an error page) if the vault cannot tell.
    pub async fn of_request(
        headers: &HeaderMap,
        state: &WebState,
    ) -> Result<Option<Customer>, Response> {
        let lang = Lang::of_request(headers);
        let unavailable = |_| {
            error_page_in(
                Area::Privacy,
                lang,
                StatusCode::SERVICE_UNAVAILABLE,
                "error_unavailable",
            )
        };
        let Some(session) = presented(headers) else {
            return Ok(None);
        };
        let Some(live) = sessions::resume_customer(&state.app, &session)
            .await
            .map_err(unavailable)?
        else {
            return Ok(None);
        };
        let key = sessions::form_key(&state.app).map_err(unavailable)?;
        let csrf = csrf::session_token(&key, &session);
        let customer = Customer {
            id: live.subject_id,
            session,
            lang,
            csrf,
        };
        if let Ok(actor) = customer.caller() {
            crate::http::access_log::record(&actor);
        }
        Ok(Some(customer))
    }

    /// The actor this customer is to the service layer, as a customer
    /// token of `/v1/me…` is: role `customer`, `sub` and `customer` the
    /// customer's id, no purposes.
    pub fn caller(&self) -> Caller {
        Ok(Actor {
            sub: self.id.to_string(),
            role: Role::Customer,
            purposes: Vec::new(),
            channel: None,
            client: None,
            customer: Some(self.id),
        })
    }

    /// The frame of a page at `here` for this customer.
    pub fn frame(&self, here: &'static str) -> Frame {
        Frame {
            lang: self.lang,
            area: Area::Privacy,
            here,
            who: Some(Who {
                name: String::new(),
                role: "customer",
            }),
            csrf: self.csrf.clone(),
        }
    }
}

impl FromRequestParts<WebState> for Customer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Response> {
        Customer::of_request(&parts.headers, state)
            .await?
            .ok_or_else(|| to_sign_in(Area::Privacy, &parts.headers))
    }
}

/// A form posted by a signed-in customer, its origin and CSRF token
/// checked as the console's forms are.
pub struct CustomerForm<T> {
    pub customer: Customer,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<WebState> for CustomerForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &WebState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        if let Some(refused) = refused_origin(Area::Privacy, &parts.headers) {
            return Err(refused);
        }
        let customer = Customer::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let form = checked_fields(Area::Privacy, request, state, &customer.session).await?;
        Ok(CustomerForm { customer, form })
    }
}

//! The client address of a request, as the connection edge accepted it
//! ([`crate::server`] puts it in the request's extensions). Only the
//! sign-in endpoints read it, for their per-address rate limits. Behind a
//! reverse proxy it is the proxy's address.

use std::{convert::Infallible, net::IpAddr, net::SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::request::Parts,
};

/// The peer's IP address; `None` when the request did not come through
/// [`crate::serve`] (a router driven directly, as in unit tests).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

//! The web pages: the staff console at `/console/` and, on the same frame,
//! the customer privacy page at `/privacy/` (each an [`Area`] with its own
//! brand link, sign-out and navigation). Server-rendered from askama
//! templates compiled into the binary; no CDN, no build step, no JavaScript.
//!
//! What the frame gives every page:
//! - [`Frame`]: the language, the switch to the other one, who is signed in
//!   and the sign-out form's CSRF token, for `templates/base.html`;
//! - [`session::Staff`] (an extractor: a signed-in staff member, or a
//!   redirect to the sign-in page) and [`session::StaffForm`] (the same for
//!   a POST, with its CSRF token and origin checked before the handler runs);
//! - [`render`] / [`error_page`]: a template to a response;
//! - [`headers::secure`]: the security headers on every response here.
//!
//! Handlers here call service operations as the API's do; they never touch
//! the store.

pub mod audit_pages;
pub mod console;
pub mod csrf;
pub mod headers;
pub mod i18n;
pub mod keys_page;
pub mod privacy;
pub mod session;
pub mod static_files;
pub mod subjects;
pub mod throttle;

use std::sync::Arc;

use askama::Template;
use axum::{
    http::{header, HeaderMap, StatusCode},
    middleware,
    response::{Html, IntoResponse, Response},
    routing::get,
    Router,
};

use crate::http::AppState;
pub use i18n::Lang;

/// What the web handlers share: the services, and the sign-in throttle of
/// this process.
#[derive(Clone)]
pub struct WebState {
    pub app: AppState,
    pub throttle: Arc<throttle::Throttle>,
}

/// Every web route, with the security headers on each response.
pub fn router(app: AppState) -> Router<AppState> {
    let state = WebState {
        app,
        throttle: Arc::new(throttle::Throttle::default()),
    };
    Router::new()
        .merge(privacy::routes())
        .merge(keys_page::routes())
        .merge(audit_pages::routes())
        .merge(subjects::routes())
        .merge(console::routes())
        .route("/lang/{code}", get(console::switch_language))
        .route(static_files::CSS_PATH, get(static_files::css))
        .layer(middleware::from_fn(headers::secure))
        .with_state(state)
}

/// A page of the console as the navigation lists it.
pub struct NavItem {
    pub path: &'static str,
    /// Its message key (in both catalogs).
    pub key: &'static str,
    /// The staff roles it is shown to. The page's handler decides access on
    /// its own (through the service layer); this only spares a role links
    /// that would answer "not allowed".
    pub roles: &'static [&'static str],
}

const BOTH: &[&str] = &["compliance", "admin"];
const COMPLIANCE: &[&str] = &["compliance"];
const ADMIN: &[&str] = &["admin"];

/// The console's pages, as the navigation lists them. A new page adds its
/// line here (and its key to both catalogs).
pub const NAV: &[NavItem] = &[
    NavItem {
        path: "/console/",
        key: "nav_home",
        roles: BOTH,
    },
    NavItem {
        path: "/console/audit",
        key: "nav_audit",
        roles: COMPLIANCE,
    },
    NavItem {
        path: "/console/customers",
        key: "nav_customers",
        roles: COMPLIANCE,
    },
    NavItem {
        path: "/console/requests",
        key: "nav_requests",
        roles: COMPLIANCE,
    },
    NavItem {
        path: "/console/keys",
        key: "nav_keys",
        roles: ADMIN,
    },
];

/// The area of the pages a page belongs to: its home (the brand link), its
/// sign-out form and its navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The staff console, `/console/`.
    Console,
    /// The customer privacy page, `/privacy/`.
    Privacy,
}

impl Area {
    /// The area a path belongs to.
    pub fn of_path(path: &str) -> Area {
        if path.starts_with("/privacy") {
            Area::Privacy
        } else {
            Area::Console
        }
    }

    /// Its home page (the brand link, and where sign-in begins).
    pub fn home(self) -> &'static str {
        match self {
            Area::Console => "/console/",
            Area::Privacy => "/privacy/",
        }
    }

    /// Where its sign-out form posts.
    pub fn sign_out(self) -> &'static str {
        match self {
            Area::Console => "/console/sign-out",
            Area::Privacy => "/privacy/sign-out",
        }
    }

    /// Whether this is the customer privacy page (its header differs).
    pub fn is_privacy(self) -> bool {
        self == Area::Privacy
    }

    /// Message keys of its name beside the brand, and of its navigation.
    pub fn name_key(self) -> &'static str {
        match self {
            Area::Console => "console",
            Area::Privacy => "privacy_area",
        }
    }

    pub fn nav_label_key(self) -> &'static str {
        match self {
            Area::Console => "navigation",
            Area::Privacy => "privacy_navigation",
        }
    }

    pub fn back_key(self) -> &'static str {
        match self {
            Area::Console => "error_back",
            Area::Privacy => "privacy_error_back",
        }
    }

    fn nav(self) -> &'static [NavItem] {
        match self {
            Area::Console => NAV,
            Area::Privacy => privacy::NAV,
        }
    }
}

/// The signed-in staff member as the header shows them.
pub struct Who {
    pub name: String,
    pub role: &'static str,
}

/// The parts of every page that `templates/base.html` draws.
pub struct Frame {
    pub lang: Lang,
    /// The area of the pages this page belongs to.
    pub area: Area,
    /// The path of this page, where the language switch comes back to.
    pub here: &'static str,
    /// Who is signed in, if anyone.
    pub who: Option<Who>,
    /// The CSRF token of the session's forms (the sign-out form), if any.
    pub csrf: String,
}

impl Frame {
    /// A frame for a page nobody is signed in to.
    pub fn anonymous(lang: Lang, here: &'static str) -> Self {
        Frame {
            lang,
            area: Area::of_path(here),
            here,
            who: None,
            csrf: String::new(),
        }
    }

    /// The message `key` in the page's language.
    pub fn t(&self, key: &str) -> &'static str {
        self.lang.t(key)
    }

    /// The navigation's entries for the signed-in staff member's role.
    pub fn nav(&self) -> Vec<&'static NavItem> {
        let role = self.who.as_ref().map(|w| w.role).unwrap_or_default();
        let nav = self.area.nav();
        nav.iter().filter(|i| i.roles.contains(&role)).collect()
    }

    /// Whether `path` is this page or one below it (for `aria-current`).
    pub fn is_here(&self, path: &str) -> bool {
        path == self.here || (path != self.area.home() && self.here.starts_with(path))
    }

    /// The stylesheet's URL, with its content hash so it can be cached for good.
    pub fn css(&self) -> &'static str {
        static_files::css_url()
    }
}

/// A rendered template with `status`; a template that fails to render is a
/// logged 500 (templates are checked at compile time, so this is rare).
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub f: Frame,
    pub message: &'static str,
}

/// An error page of the console with `status` and the message `key`, in `lang`.
pub fn error_page(lang: Lang, status: StatusCode, key: &str) -> Response {
    error_page_in(Area::Console, lang, status, key)
}

/// An error page of `area` with `status` and the message `key`, in `lang`.
pub fn error_page_in(area: Area, lang: Lang, status: StatusCode, key: &str) -> Response {
    let page = ErrorPage {
        f: Frame::anonymous(lang, area.home()),
        message: lang.t(key),
    };
    render(status, &page)
}

/// The cookies of a request as (name, value) pairs; malformed ones are skipped.
pub fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (String, String)> + '_ {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| cookie::Cookie::split_parse(v.to_owned()))
        .filter_map(Result::ok)
        .map(|c| (c.name().to_owned(), c.value().to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_navigation_entry_has_its_messages() {
        for item in NAV {
            assert_ne!(Lang::En.t(item.key), "?", "{}", item.key);
            assert_ne!(Lang::Fi.t(item.key), "?", "{}", item.key);
        }
    }

    #[test]
    fn a_hostile_value_renders_as_text() {
        let page = ErrorPage {
            f: Frame {
                lang: Lang::En,
                area: Area::Console,
                here: "/console/",
                who: Some(Who {
                    name: "<script>alert(1)</script>".to_owned(),
                    role: "compliance",
                }),
                csrf: "\"><script>alert(2)</script>".to_owned(),
            },
            message: "<img src=x onerror=alert(3)>",
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
                || html.contains("&lt;script&gt;alert(1)"),
            "{html}"
        );
    }
}

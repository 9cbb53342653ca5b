//! Staff accounts (README, "Staff accounts"): `arkku users …` through the
//! real binary, and the credential check the console calls
//! (`service::staff::sign_in`) through the library on the test vault's own
//! services (built by `arkku::app::open_with_clock` on its config and test
//! clock, as the harness does). The clock stands still at [`T0`] (moved on
//! by the tests that need it), so every TOTP code is computed for a known
//! instant and no test depends on where a 30-second step boundary falls.

pub mod aids;

use std::time::{Duration, Instant};

use arkku::service::staff::{self, SignInError};

use crate::helpers::{spawn_app, Backend, Scenario};
use crate::scenarios;
use aids::{
    add_user, arkku_with_stdin, audit_entries, cli_ok, clock_at, code, qr_in, secret_of, sign_in,
    PASSWORD, T0,
};

pub fn tests() -> Vec<Scenario> {
    scenarios![
        adding_an_account_with_a_short_password_is_refused_and_stores_nothing,
        an_added_account_is_listed_without_secrets_and_its_uri_parses,
        the_right_password_and_a_fresh_code_sign_in_and_each_wrong_part_is_refused_alike,
        a_disabled_account_is_refused_and_its_sessions_end,
        a_password_reset_replaces_the_password_and_ends_sessions,
        a_totp_reset_prints_a_new_uri_and_the_old_codes_stop_working,
        ten_failures_lock_the_account_for_fifteen_minutes,
        an_unknown_name_costs_as_much_as_a_wrong_password,
        sign_ins_and_lockouts_are_in_the_audit_log_without_any_secret,
    ]
}

async fn adding_an_account_with_a_short_password_is_refused_and_stores_nothing(b: Backend) {
    let app = spawn_app(b).await;

    let r = arkku_with_stdin(
        &app,
        &["users", "add", "anna", "--role", "compliance"],
        "elevenchars\n",
    )
    .await;

    r.assert_failed();
    assert!(r.stderr.contains("at least 12 characters"), "{}", r.stderr);
    assert!(!r.stdout.contains("otpauth://"), "{}", r.stdout);
    assert_eq!(app.count("staff_users").await, 0);
    let denied = audit_entries(&app, "user.create").await;
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0]["decision"], "deny");
    assert!(!app.audit_text().await.contains("elevenchars"));
}

async fn an_added_account_is_listed_without_secrets_and_its_uri_parses(b: Backend) {
    let app = spawn_app(b).await;

    let (uri, added) = add_user(&app, "Anna.Virtanen", "compliance", PASSWORD).await;
    let list = cli_ok(&app, &["users", "list"]).await;

    // The URI is what an authenticator app reads.
    assert!(
        uri.starts_with("otpauth://totp/arkku:anna.virtanen?"),
        "{uri}"
    );
    let totp = totp_rs::TOTP::from_url(&uri).expect("the URI parses");
    assert_eq!((totp.digits, totp.step), (6, 30));
    assert_eq!(totp.algorithm, totp_rs::Algorithm::SHA1);
    assert_eq!(totp.issuer.as_deref(), Some("arkku"));
    assert_eq!(qr_in(&added.stdout), uri, "the QR code holds the URI");
    // The list shows the account, and no secret of it.
    let line = list
        .stdout
        .lines()
        .find(|l| l.starts_with("anna.virtanen "))
        .unwrap_or_else(|| panic!("listed: {}", list.stdout));
    assert!(
        line.contains("compliance") && line.contains("enabled"),
        "{line}"
    );
    let secret = secret_of(&uri);
    for out in [&list.stdout, &list.stderr, &added.stderr] {
        assert!(!out.contains(&secret) && !out.contains(PASSWORD), "{out}");
    }
    // Stored: an argon2id hash, and the secret sealed.
    let hash: String = arkku::on_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT password_hash FROM staff_users").fetch_one(pool).await)
    .unwrap();
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    let sealed: Vec<u8> = arkku::on_db!(app.db(), pool => sqlx::query_scalar(
        "SELECT totp_secret FROM staff_users").fetch_one(pool).await)
    .unwrap();
    let raw = totp.secret.clone();
    assert!(!sealed.windows(raw.len()).any(|w| w == raw.as_slice()));
    assert!(!sealed.windows(secret.len()).any(|w| w == secret.as_bytes()));
    // Audited as the operator, and a second account of the name is refused.
    let created = audit_entries(&app, "user.create").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["actor"]["sub"], "arkku-cli");
    assert_eq!(created[0]["detail"]["name"], "anna.virtanen");
    assert_eq!(audit_entries(&app, "user.read").await.len(), 1);
    let again = arkku_with_stdin(
        &app,
        &["users", "add", "anna.virtanen", "--role", "admin"],
        &format!("{PASSWORD}\n"),
    )
    .await;
    again.assert_failed();
    assert!(again.stderr.contains("exists"), "{}", again.stderr);
    assert_eq!(app.count("staff_users").await, 1);
}

async fn the_right_password_and_a_fresh_code_sign_in_and_each_wrong_part_is_refused_alike(
    b: Backend,
) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "anna", "compliance", PASSWORD).await;
    let now = code(&uri, T0);

    // Each wrong part, and an unknown name, gets the same answer.
    let wrong_code = format!("{:06}", (now.parse::<u32>().unwrap() + 1) % 1_000_000);
    let refused = [
        sign_in(&app, "anna", "correct horse battery stapler", &now).await,
        sign_in(&app, "anna", PASSWORD, &wrong_code).await,
        sign_in(&app, "anna", PASSWORD, "12345").await,
        sign_in(&app, "nobody", PASSWORD, &now).await,
        sign_in(&app, "not a name!", PASSWORD, &now).await,
    ];
    for r in refused {
        assert_eq!(r, Err(SignInError::Refused));
    }
    // The right password and code sign in, once: the same code again is a replay.
    let account = sign_in(&app, "Anna", PASSWORD, &now)
        .await
        .expect("signed in");
    let replay = sign_in(&app, "anna", PASSWORD, &now).await;
    // The next step's code (the window allows one step ahead) still works.
    let next = code(&uri, T0 + Duration::from_secs(30));
    let again = sign_in(&app, "anna", PASSWORD, &next).await;

    assert_eq!(account.name.as_str(), "anna");
    assert_eq!(account.role.as_str(), "compliance");
    assert!(account.admits_session(account.epoch));
    assert_eq!(
        account.failed_attempts, 0,
        "a success starts the count again"
    );
    assert_eq!(replay, Err(SignInError::Refused));
    assert!(again.is_ok(), "{again:?}");
    let checked = staff::account(&app.state, account.id)
        .await
        .unwrap()
        .expect("the account");
    assert!(checked.admits_session(account.epoch));
}

async fn a_disabled_account_is_refused_and_its_sessions_end(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "ben", "admin", PASSWORD).await;
    let session = sign_in(&app, "ben", PASSWORD, &code(&uri, T0))
        .await
        .expect("signed in");

    cli_ok(&app, &["users", "disable", "ben"]).await;

    let later = T0 + Duration::from_secs(30);
    let right = sign_in(&app, "ben", PASSWORD, &code(&uri, later)).await;
    let wrong = sign_in(&app, "ben", "not ben's password", &code(&uri, later)).await;
    let account = staff::account(&app.state, session.id)
        .await
        .unwrap()
        .expect("kept");
    assert_eq!(right, Err(SignInError::Disabled));
    assert_eq!(
        wrong,
        Err(SignInError::Refused),
        "disabled is said to both factors only"
    );
    assert!(!account.enabled());
    assert!(!account.admits_session(session.epoch));
    let list = cli_ok(&app, &["users", "list"]).await;
    assert!(list.stdout.contains("disabled"), "{}", list.stdout);
    // Disabling is final: a disabled account is not reset (nor disabled again).
    let reset = arkku_with_stdin(
        &app,
        &["users", "reset-password", "ben"],
        "a brand new password\n",
    )
    .await;
    reset.assert_failed();
    assert!(reset.stderr.contains("disabled"), "{}", reset.stderr);
    app.cli(&["users", "disable", "ben"]).await.assert_failed();
}

async fn a_password_reset_replaces_the_password_and_ends_sessions(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "carl", "compliance", PASSWORD).await;
    let session = sign_in(&app, "carl", PASSWORD, &code(&uri, T0))
        .await
        .expect("signed in");
    let new_password = "a new and longer passphrase";

    let short = arkku_with_stdin(&app, &["users", "reset-password", "carl"], "short\n").await;
    let r = arkku_with_stdin(
        &app,
        &["users", "reset-password", "carl"],
        &format!("{new_password}\n"),
    )
    .await;

    short.assert_failed();
    assert!(r.status.success(), "{}", r.stderr);
    clock_at(&app, T0 + Duration::from_secs(60));
    let at = T0 + Duration::from_secs(60);
    assert_eq!(
        sign_in(&app, "carl", PASSWORD, &code(&uri, at)).await,
        Err(SignInError::Refused)
    );
    let fresh = sign_in(&app, "carl", new_password, &code(&uri, at))
        .await
        .expect("the new password signs in");
    assert!(!fresh.admits_session(session.epoch));
    assert!(fresh.admits_session(fresh.epoch));
    assert_eq!(audit_entries(&app, "user.reset_password").await.len(), 2);
}

async fn a_totp_reset_prints_a_new_uri_and_the_old_codes_stop_working(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (old_uri, _) = add_user(&app, "dora", "admin", PASSWORD).await;
    let session = sign_in(&app, "dora", PASSWORD, &code(&old_uri, T0))
        .await
        .expect("signed in");

    let r = cli_ok(&app, &["users", "reset-totp", "dora"]).await;
    let new_uri = r.stdout.lines().last().expect("a URI").to_owned();

    assert!(
        new_uri.starts_with("otpauth://totp/arkku:dora?"),
        "{new_uri}"
    );
    assert_ne!(secret_of(&new_uri), secret_of(&old_uri));
    let later = T0 + Duration::from_secs(30);
    assert_eq!(
        sign_in(&app, "dora", PASSWORD, &code(&old_uri, later)).await,
        Err(SignInError::Refused)
    );
    // The new secret's codes work, even for a step the old one had used.
    let fresh = sign_in(&app, "dora", PASSWORD, &code(&new_uri, T0))
        .await
        .expect("the new secret signs in");
    assert!(!fresh.admits_session(session.epoch));
    let reset = audit_entries(&app, "user.reset_totp").await;
    assert_eq!(reset.len(), 1);
    assert!(!reset[0].to_string().contains(&secret_of(&new_uri)));
}

async fn ten_failures_lock_the_account_for_fifteen_minutes(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "eve", "compliance", PASSWORD).await;

    // Nine failures leave the account open; the tenth locks it.
    for _ in 0..9 {
        assert_eq!(
            sign_in(&app, "eve", "guess guess guess", "000000").await,
            Err(SignInError::Refused)
        );
    }
    assert_eq!(audit_entries(&app, "auth.lockout").await.len(), 0);
    assert_eq!(
        sign_in(&app, "eve", PASSWORD, "not a code").await,
        Err(SignInError::Refused)
    );

    // Locked: the right password with a wrong code learns nothing; both
    // factors right are told it is locked, and until when.
    let t1 = T0 + Duration::from_secs(60);
    clock_at(&app, t1);
    let half = sign_in(&app, "eve", PASSWORD, "123456").await;
    let both = sign_in(&app, "eve", PASSWORD, &code(&uri, t1)).await;
    // Fifteen minutes after the lock it is lifted.
    let t2 = T0 + Duration::from_secs(15 * 60);
    clock_at(&app, t2);
    let after = sign_in(&app, "eve", PASSWORD, &code(&uri, t2)).await;

    assert_eq!(half, Err(SignInError::Refused));
    assert_eq!(
        both,
        Err(SignInError::Locked {
            until: T0 + Duration::from_secs(15 * 60)
        })
    );
    let account = after.expect("signed in after the lock");
    assert_eq!(account.failed_attempts, 0);
    let lockouts = audit_entries(&app, "auth.lockout").await;
    assert_eq!(lockouts.len(), 1, "{lockouts:?}");
    assert_eq!(lockouts[0]["actor"]["sub"], account.id.to_string());
    assert_eq!(
        lockouts[0]["detail"]["locked_until"],
        "2026-12-02T10:15:10Z"
    );
}

async fn an_unknown_name_costs_as_much_as_a_wrong_password(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    add_user(&app, "fay", "compliance", PASSWORD).await;

    // Alternating, so that load on the machine falls on both alike.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let started = Instant::now();
        let _ = sign_in(&app, "fay", "a wrong password", "000000").await;
        known.push(started.elapsed());
        let started = Instant::now();
        let _ = sign_in(&app, "nobody-here", "a wrong password", "000000").await;
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();

    let (k, u) = (known[2], unknown[2]);
    println!("sign-in medians: known name {k:?}, unknown name {u:?}");
    assert!(
        u * 2 >= k && k * 2 >= u,
        "medians: known {k:?}, unknown {u:?} (all: {known:?} / {unknown:?})"
    );
}

async fn sign_ins_and_lockouts_are_in_the_audit_log_without_any_secret(b: Backend) {
    let app = spawn_app(b).await;
    clock_at(&app, T0);
    let (uri, _) = add_user(&app, "gus", "admin", PASSWORD).await;
    let good = code(&uri, T0);
    let wrong_password = "gus's wrong password";

    sign_in(&app, "gus", PASSWORD, &good).await.expect("in");
    let _ = sign_in(&app, "gus", PASSWORD, &good).await;
    let _ = sign_in(&app, "gus", wrong_password, &good).await;
    let _ = sign_in(&app, "gus", PASSWORD, "999999").await;
    let _ = sign_in(&app, "typed-a-password-here", PASSWORD, &good).await;

    let entries = audit_entries(&app, "auth.sign_in").await;
    let seen: Vec<(String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["decision"].as_str().unwrap().to_owned(),
                e["detail"]["reason"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let want = [
        ("allow", ""),
        ("deny", "replayed_code"),
        ("deny", "wrong_password"),
        ("deny", "wrong_code"),
        ("deny", "unknown_account"),
    ];
    assert_eq!(
        seen,
        want.map(|(d, r)| (d.to_owned(), r.to_owned())).to_vec()
    );
    let id = entries[0]["actor"]["sub"].as_str().unwrap().to_owned();
    assert_eq!(entries[0]["actor"]["role"], "admin");
    assert_eq!(entries[0]["detail"]["peer"], "192.0.2.7");
    assert_eq!(entries[2]["actor"]["sub"], id.as_str());
    assert_eq!(entries[4]["actor"]["sub"], "anonymous");
    // No password, code, secret or typed unknown name, anywhere in the log.
    let log = app.audit_text().await;
    let secret = secret_of(&uri);
    for leak in [
        PASSWORD,
        wrong_password,
        good.as_str(),
        "999999",
        secret.as_str(),
        "typed-a-password-here",
    ] {
        assert!(!log.contains(leak), "the audit log holds {leak:?}");
    }
    app.assert_chain_verifies().await;
}

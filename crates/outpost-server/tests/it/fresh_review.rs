//! Fixes of the fresh-user security review of issue 6 (S4, S12, S13, S8): each test names
//! its finding.

use outpost_domain::access::Role;
use outpost_domain::wire::{LoginRequest, PROTOCOL_VERSION};
use outpost_server::security::accounts::{AuthError, CODE_ALREADY_USED};
use outpost_server::testing::TestServer;

/// S4: the right password with a code already spent answers "this code was already used;
/// wait for the next one", signs nobody in, and is not counted toward the lockout (six of
/// them in a row leave the account usable with the next code); a wrong password with the
/// same code is the usual failure.
#[test]
fn s4_a_replayed_code_with_the_right_password_is_named_and_not_counted() {
    let server = TestServer::start().expect("server");
    let device = server
        .enroll(Role::Administrator, "replay")
        .expect("enroll");
    let user = server.user(Role::Dispatcher).clone();
    let req = LoginRequest {
        protocol: PROTOCOL_VERSION,
        user: user.name.clone(),
        password: user.password.clone(),
        totp: server.fresh_code(Role::Dispatcher),
    };
    let sec = server.security();
    sec.login(Some(&device.peer()), &req).expect("first use");
    for i in 0..6 {
        match sec.login(Some(&device.peer()), &req) {
            Err(AuthError::Unauthenticated(m)) => assert_eq!(m, CODE_ALREADY_USED, "try {i}"),
            other => panic!("try {i}: {other:?}"),
        }
    }
    let wrong = LoginRequest {
        password: "not the password".into(),
        ..req.clone()
    };
    match sec.login(Some(&device.peer()), &wrong) {
        Err(AuthError::Unauthenticated(m)) => assert_eq!(m, "wrong name, password or code"),
        other => panic!("{other:?}"),
    }
    // Not locked: six replays and one wrong password are one failure.
    let next = server
        .login(&device, Role::Dispatcher)
        .expect("next code signs in");
    assert_eq!(next.user, user.name);
}

/// S13: a CSR with an RSA key (or ECDSA on P-384) is refused for its key, not as "its
/// signature does not verify"; the console's own P-256 CSR is still signed. Fixtures made
/// with `openssl req -new -newkey rsa:1024` / `-newkey ec -pkeyopt ec_paramgen_curve:P-384`
/// (the keys were thrown away).
#[test]
fn s13_a_csr_with_an_unsupported_key_names_the_key_types_accepted() {
    use outpost_server::security::pki::{Pki, PkiError, UNSUPPORTED_KEY};
    let server = TestServer::start().expect("server");
    let pki = Pki::load(server.data_dir()).expect("pki");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, what) in [
        ("rsa1024.csr.pem", "an RSA key"),
        ("p384.csr.pem", "an ECDSA key on another curve"),
    ] {
        let csr = std::fs::read_to_string(fixtures.join(file)).expect("fixture");
        match pki.sign_device_csr(&csr, "dev-test", 30) {
            Err(PkiError::BadCsr(m)) => {
                assert_eq!(
                    m,
                    format!("{UNSUPPORTED_KEY} (this request carries {what})")
                );
                assert!(!m.contains("does not verify"), "{m}");
            }
            other => panic!("{file}: {other:?}"),
        }
        // Through enrollment, as a console sees it (400 naming csr_pem).
        let user = server.user(Role::Commander).clone();
        let err = server
            .security()
            .enroll(&outpost_domain::wire::EnrollRequest {
                protocol: PROTOCOL_VERSION,
                user: user.name.clone(),
                password: user.password.clone(),
                totp: server.fresh_code(Role::Commander),
                device_name: "rsa laptop".into(),
                origin: uuid::Uuid::now_v7(),
                csr_pem: csr,
                cache_key: "ab".repeat(32),
            })
            .expect_err("refused");
        assert!(err.to_string().contains(UNSUPPORTED_KEY), "{file}: {err}");
    }
    let (_, csr) = outpost_server::testing::key_and_csr().expect("csr");
    pki.sign_device_csr(&csr, "dev-test", 30)
        .expect("a P-256 request is signed");
}

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

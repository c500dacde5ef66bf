//! Device and position tests (issue 4): bindings, unbound-device reports, out-of-order and
//! duplicate fixes, tracks, rebuild and snapshot paths.

use chrono::{DateTime, Duration, TimeZone, Utc};

use outpost_domain::op::{OpBody, OpEnvelope};
use outpost_domain::unit::UnitKind;

use crate::devices;
use crate::{Store, StoreError};

fn t(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 29, 10, 0, 0)
        .single()
        .expect("valid date")
        + Duration::seconds(secs)
}

fn store() -> Store {
    Store::open_in_memory(t(0)).expect("open in-memory store")
}

fn write(s: &mut Store, at: i64, user: &str, body: OpBody) -> OpEnvelope {
    s.write::<StoreError, _>(t(at), user, |_| Ok(body))
        .expect("write op")
}

fn register_unit(s: &mut Store, at: i64, id: &str, callsign: &str) -> OpEnvelope {
    write(
        s,
        at,
        "admin",
        OpBody::UnitRegister {
            unit_id: id.into(),
            callsign: callsign.into(),
            unit_kind: UnitKind::PatrolCar,
            home_station: None,
        },
    )
}

fn bind(device: &str, unit: Option<&str>) -> OpBody {
    OpBody::DeviceBind {
        device_id: device.into(),
        unit_id: unit.map(str::to_string),
    }
}

#[test]
fn device_bindings_lists_bound_devices_only_newest_write_winning() {
    let mut s = store();
    register_unit(&mut s, 0, "u-01", "东胜01");
    register_unit(&mut s, 0, "u-02", "东胜02");
    write(&mut s, 1, "cmdr.li", bind("phone-7", Some("u-01")));
    write(&mut s, 2, "cmdr.li", bind("tak-ANDROID-3", Some("u-02")));
    write(&mut s, 3, "cmdr.li", bind("gone", Some("u-02")));
    write(&mut s, 4, "cmdr.li", bind("gone", None));
    write(&mut s, 5, "cmdr.wang", bind("phone-7", Some("u-02")));
    assert_eq!(
        devices::device_bindings(s.conn()).expect("bindings"),
        vec![
            ("phone-7".to_string(), "u-02".to_string()),
            ("tak-ANDROID-3".to_string(), "u-02".to_string()),
        ]
    );
    assert_eq!(
        devices::device_binding(s.conn(), "phone-7").expect("binding"),
        Some("u-02".into())
    );
    assert_eq!(devices::device_binding(s.conn(), "gone").expect("b"), None);
    assert_eq!(devices::device_binding(s.conn(), "never").expect("b"), None);
}

use chrono::Duration;
use outpost_devices::MPS_PER_KNOT;
use outpost_devices::osmand::{OsmandError, decode_json, decode_query};
use outpost_domain::device::{DeviceSource, FixError};

use crate::{close, sample, t};

/// The receiving clock for the samples: 2026-11-29T12:00:00Z.
fn now() -> chrono::DateTime<chrono::Utc> {
    t("2026-11-29T12:00:00Z")
}

/// Every line of `osmand_samples.txt`: (form, expectation, payload).
fn samples() -> Vec<(String, String, String)> {
    sample("osmand_samples.txt")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let form = parts.next().unwrap().to_string();
            let expect = parts.next().unwrap().to_string();
            let payload = parts.next().unwrap().to_string();
            (form, expect, payload)
        })
        .collect()
}

#[test]
fn every_sample_has_the_expected_outcome() {
    let all = samples();
    assert_eq!(
        all.len(),
        6,
        "the sample file has 5 query lines and 1 JSON line"
    );
    for (form, expect, payload) in &all {
        let got = match form.as_str() {
            "QUERY" => decode_query(payload, now()),
            "JSON" => decode_json(payload.as_bytes(), now()),
            other => panic!("unknown form {other}"),
        };
        match expect.as_str() {
            "position" => {
                let r = got.unwrap_or_else(|e| panic!("{payload}: {e}"));
                assert_eq!(r.source, DeviceSource::Osmand);
            }
            "reject" => assert_eq!(got, Err(OsmandError::MissingDeviceId), "{payload}"),
            other => panic!("unknown expectation {other}"),
        }
    }
}

#[test]
fn query_with_iso_timestamp_hdop_and_zero_speed() {
    let (_, _, q) = &samples()[0];
    let r = decode_query(q, now()).unwrap();
    assert_eq!(r.device_id, "902064");
    assert_eq!(r.fix.position.lat, 42.06288);
    assert_eq!(r.fix.position.lon, -88.23412);
    // `2016-01-27T18%3A55%3A47Z`: percent-decoded, UTC.
    assert_eq!(r.fix.fix_time, t("2016-01-27T18:55:47Z"));
    assert_eq!(r.fix.speed_mps, Some(0.0));
    assert_eq!(r.fix.heading_deg, None);
    // hdop is not an accuracy (as in Traccar).
    assert_eq!(r.fix.accuracy_m, None);
    assert_eq!(r.battery_pct, None);
    assert_eq!(r.name, None);
}

#[test]
fn query_with_unix_seconds() {
    let all = samples();
    for i in [1, 2] {
        let r = decode_query(&all[i].2, now()).unwrap();
        assert_eq!(r.device_id, "123456");
        assert_eq!(r.fix.fix_time, t("2013-08-22T13:14:27Z"), "1377177267 s");
        assert_eq!((r.fix.position.lat, r.fix.position.lon), (60.0, 30.0));
    }
    let r = decode_query(&all[1].2, now()).unwrap();
    assert_eq!(r.fix.heading_deg, Some(0.0));
    assert_eq!(r.fix.speed_mps, Some(0.0));
    let r = decode_query(&all[2].2, now()).unwrap();
    assert_eq!(r.fix.heading_deg, None);
    assert_eq!(r.fix.speed_mps, None);
}

#[test]
fn query_speed_is_knots() {
    let (_, _, q) = &samples()[3];
    let r = decode_query(q, now()).unwrap();
    assert_eq!(r.device_id, "123456789012345");
    assert_eq!(r.fix.fix_time, t("2017-09-07T05:56:50Z"));
    assert_eq!(r.fix.position.lat, 40.7232948571);
    assert_eq!(r.fix.position.lon, -74.0061408571);
    assert_eq!(r.fix.heading_deg, Some(7.19889788244));
    // 40 kn = 40 × 1852 m / 3600 s = 20.5777… m/s.
    close(r.fix.speed_mps.unwrap(), 20.577_777_777_8, 1e-9);
    close(MPS_PER_KNOT, 0.514_444_444_4, 1e-9);
}

#[test]
fn json_form_of_traccar_client() {
    let (_, _, body) = &samples()[5];
    let r = decode_json(body.as_bytes(), now()).unwrap();
    assert_eq!(r.device_id, "48241179");
    assert_eq!(r.source, DeviceSource::Osmand);
    assert_eq!(r.fix.position.lat, 37.4219983);
    assert_eq!(r.fix.position.lon, -122.084);
    assert_eq!(r.fix.fix_time, t("2025-06-15T13:45:12.862Z"));
    assert_eq!(r.fix.accuracy_m, Some(5.0));
    // JSON speed is already m/s; heading −1 is "unknown".
    assert_eq!(r.fix.speed_mps, Some(0.0));
    assert_eq!(r.fix.heading_deg, None);
    // battery.level 1 = 100 %.
    assert_eq!(r.battery_pct, Some(100.0));
}

#[test]
fn timestamp_forms() {
    let q = |ts: &str| {
        decode_query(&format!("id=a&lat=1&lon=2&timestamp={ts}"), now()).map(|r| r.fix.fix_time)
    };
    assert_eq!(q("1377177267"), Ok(t("2013-08-22T13:14:27Z")));
    // Milliseconds (above 2^31 − 1).
    assert_eq!(q("1377177267500"), Ok(t("2013-08-22T13:14:27.5Z")));
    assert_eq!(q("1377177267.25"), Ok(t("2013-08-22T13:14:27.25Z")));
    assert_eq!(q("2013-08-22%2013:14:27"), Ok(t("2013-08-22T13:14:27Z")));
    assert_eq!(q("2013-08-22+13:14:27"), Ok(t("2013-08-22T13:14:27Z")));
    assert_eq!(
        q("2013-08-22T15:14:27%2B02:00"),
        Ok(t("2013-08-22T13:14:27Z"))
    );
    assert_eq!(q("2013-08-22T13:14:27"), Ok(t("2013-08-22T13:14:27Z")));
    // Missing timestamp: the receiving clock.
    assert_eq!(
        decode_query("id=a&lat=1&lon=2", now()).map(|r| r.fix.fix_time),
        Ok(now())
    );
    let err = q("yesterday").unwrap_err();
    assert!(
        matches!(&err, OsmandError::BadParameter { name, value, .. } if name == "timestamp" && value == "yesterday"),
        "{err}"
    );
}

#[test]
fn location_parameter_battery_accuracy_and_bare_query() {
    let r = decode_query(
        "deviceid=phone-7&location=39.8171,109.9773&batt=42.5&accuracy=8&heading=270",
        now(),
    )
    .unwrap();
    assert_eq!(r.device_id, "phone-7");
    assert_eq!(
        (r.fix.position.lat, r.fix.position.lon),
        (39.8171, 109.9773)
    );
    assert_eq!(r.battery_pct, Some(42.5));
    assert_eq!(r.fix.accuracy_m, Some(8.0));
    assert_eq!(r.fix.heading_deg, Some(270.0));
    // A POST to another path with the query in the target.
    let r = decode_query("/track?id=x%20y&lat=1.5&lon=-2.5", now()).unwrap();
    assert_eq!(r.device_id, "x y");
    // The last of a repeated parameter wins.
    let r = decode_query("id=a&lat=1&lat=3&lon=2", now()).unwrap();
    assert_eq!(r.fix.position.lat, 3.0);
}

#[test]
fn rejects_name_what_is_wrong() {
    let q = |s: &str| decode_query(s, now()).unwrap_err();
    assert_eq!(q("/?lat=1&lon=2"), OsmandError::MissingDeviceId);
    assert_eq!(q("/"), OsmandError::MissingDeviceId);
    assert_eq!(q("id=a&lat=1"), OsmandError::MissingPosition);
    assert_eq!(
        q("id=a&lat=91&lon=0"),
        OsmandError::Fix(FixError::Latitude(91.0))
    );
    assert!(
        matches!(q("id=a&lat=NaN&lon=0"), OsmandError::Fix(FixError::Latitude(x)) if x.is_nan())
    );
    assert_eq!(
        q("id=a&lat=0&lon=181"),
        OsmandError::Fix(FixError::Longitude(181.0))
    );
    let e = q("id=a&lat=north&lon=0");
    assert_eq!(e.to_string(), "parameter lat=\"north\": not a number");
    let e = q("id=a&location=1;2");
    assert_eq!(
        e.to_string(),
        "parameter location=\"1;2\": expected lat,lon"
    );
    let e = q("id=a&lat=1&lon=2&batt=140");
    assert_eq!(
        e.to_string(),
        "parameter batt=\"140\": battery level is outside 0..100 %"
    );
    let e = q("id=a&lat=1&lon=2&valid=false");
    assert!(e.to_string().contains("not valid"), "{e}");
    let e = q("id=&lat=1&lon=2");
    assert!(e.to_string().contains("empty"), "{e}");
    let long = "x".repeat(200);
    let e = q(&format!("id={long}&lat=1&lon=2"));
    // The value is cut to 64 characters in the message.
    assert!(
        e.to_string().contains(&format!("{}…", "x".repeat(64))),
        "{e}"
    );
    assert!(!e.to_string().contains(&"x".repeat(65)), "{e}");
    // A year ahead of the clock.
    let ahead = (now() + Duration::days(365)).timestamp();
    assert!(matches!(
        q(&format!("id=a&lat=1&lon=2&timestamp={ahead}")),
        OsmandError::Fix(FixError::Future { .. })
    ));
    // 1999: before 2000-01-01.
    assert!(matches!(
        q("id=a&lat=1&lon=2&timestamp=935280000"),
        OsmandError::Fix(FixError::Past(_))
    ));
    // Speed in knots of −3 is not a speed.
    assert!(matches!(
        q("id=a&lat=1&lon=2&speed=-3"),
        OsmandError::Fix(FixError::Speed(_))
    ));
}

/// Device ids are kept as `bind_device` takes them (outpost_domain::device::device_id), so a
/// device whose id has stray spaces (a mistyped Traccar Client setting) can still be bound.
#[test]
fn device_ids_are_trimmed_and_blank_or_control_ids_refused() {
    let r = decode_query("/?id=%20%204711%20&lat=1&lon=2", now()).unwrap();
    assert_eq!(r.device_id, "4711");
    let r = decode_query("/?deviceid=+phone+7%09&lat=1&lon=2", now()).unwrap();
    assert_eq!(r.device_id, "phone 7");
    let r = decode_json(
        br#"{"device_id":" 4711 ","location":{"coords":{"latitude":1,"longitude":2}}}"#,
        now(),
    )
    .unwrap();
    assert_eq!(r.device_id, "4711");
    let e = decode_query("/?id=%20%09%20&lat=1&lon=2", now()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"parameter id=" \t ": the device id is empty"#
    );
    let e = decode_query("/?id=ab%07cd&lat=1&lon=2", now()).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"parameter id="ab\u{7}cd": the device id contains a control character"#
    );
    let e = decode_json(
        br#"{"device_id":"  ","location":{"coords":{"latitude":1,"longitude":2}}}"#,
        now(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "parameter device_id=\"  \": the device id is empty"
    );
}

#[test]
fn json_rejects() {
    let j = |s: &str| decode_json(s.as_bytes(), now()).unwrap_err();
    assert!(matches!(j("{"), OsmandError::BadJson(_)));
    assert_eq!(
        j("[]").to_string(),
        "JSON body: the body is an array, not an object"
    );
    assert_eq!(
        j(r#"{"location":{"coords":{"latitude":1,"longitude":2}}}"#),
        OsmandError::MissingDeviceId
    );
    assert_eq!(j(r#"{"device_id":"a"}"#), OsmandError::MissingPosition);
    assert_eq!(
        j(r#"{"device_id":"a","location":{}}"#),
        OsmandError::MissingPosition
    );
    assert_eq!(
        j(r#"{"device_id":"a","location":{"coords":{"latitude":91,"longitude":2}}}"#),
        OsmandError::Fix(FixError::Latitude(91.0))
    );
    assert_eq!(
        j(r#"{"device_id":"a","location":{"coords":{"latitude":"x","longitude":2}}}"#).to_string(),
        "parameter location.coords.latitude=\"x\": not a number"
    );
    assert!(
        j(r#"{"device_id":"a","location":[{"coords":{}}]}"#)
            .to_string()
            .contains("batch")
    );
    assert_eq!(
        j(r#"{"device_id":true,"location":{"coords":{"latitude":1,"longitude":2}}}"#).to_string(),
        "JSON body: device_id is a boolean, not a string"
    );
    assert!(j(r#"{"device_id":"a","location":{"timestamp":"soon","coords":{"latitude":1,"longitude":2}}}"#)
        .to_string()
        .contains("location.timestamp"));
    // Numeric device ids are read as text; no timestamp = now.
    let r = decode_json(
        br#"{"device_id":42,"location":{"coords":{"latitude":1,"longitude":2,"speed":3.5,"heading":90,"accuracy":-1},"battery":{"level":0.37}}}"#,
        now(),
    )
    .unwrap();
    assert_eq!(r.device_id, "42");
    assert_eq!(r.fix.fix_time, now());
    assert_eq!(r.fix.speed_mps, Some(3.5));
    assert_eq!(r.fix.heading_deg, Some(90.0));
    assert_eq!(r.fix.accuracy_m, None);
    close(r.battery_pct.unwrap(), 37.0, 1e-9);
}

#[test]
fn bodies_over_the_limit_are_refused() {
    use outpost_devices::osmand::MAX_BODY_BYTES;
    let big = format!("id=a&lat=1&lon=2&pad={}", "x".repeat(MAX_BODY_BYTES));
    let e = decode_query(&big, now()).unwrap_err();
    assert!(e.to_string().contains("longer than 65536"), "{e}");
    let body = format!(
        r#"{{"device_id":"a","pad":"{}","location":{{"coords":{{"latitude":1,"longitude":2}}}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    let e = decode_json(body.as_bytes(), now()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("JSON body: {} bytes is longer than 65536", body.len())
    );
}

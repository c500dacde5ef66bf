use chrono::Duration;
use outpost_devices::cot::{
    CotError, Framer, INCIDENT_COT_TYPE, INCIDENT_STALE_S, IncidentPicture, MAX_EVENT_BYTES,
    UNIT_STALE_S, UnitPicture, decode_event, encode_incident, encode_pong, encode_unit, is_ping,
    priority_argb,
};
use outpost_domain::device::{DeviceSource, FixError};
use outpost_domain::geo::LatLon;
use outpost_domain::incident::{IncidentType, Priority};
use outpost_domain::op::Fix;
use outpost_domain::unit::{UnitKind, UnitStatus};
use uuid::Uuid;

use crate::{sample, t};

fn now() -> chrono::DateTime<chrono::Utc> {
    t("2020-02-08T18:11:00Z")
}

/// A position event with this uid, type and point.
fn event(uid: &str, ty: &str, lat: &str, lon: &str) -> String {
    format!(
        "<event version=\"2.0\" uid=\"{uid}\" type=\"{ty}\" time=\"2020-02-08T18:10:44Z\" \
         start=\"2020-02-08T18:10:44Z\" stale=\"2020-02-08T18:15:44Z\" how=\"m-g\">\
         <point lat=\"{lat}\" lon=\"{lon}\" hae=\"0\" ce=\"12.5\" le=\"9999999\"/>\
         <detail><contact callsign=\"{uid}-cs\"/></detail></event>"
    )
}

#[test]
fn the_wintak_sample_decodes_to_its_values() {
    let xml = sample("cot_wintak_position.xml");
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(ev.uid, "aa0b0312-b5cd-4c2c-bbbc-9c4c70216261");
    assert_eq!(ev.event_type, "a-f-G-E-V-C");
    assert_eq!(ev.time, t("2020-02-08T18:10:44Z"));
    assert_eq!(ev.start, t("2020-02-08T18:10:44Z"));
    assert_eq!(ev.stale, t("2020-02-08T18:11:11Z"));
    assert_eq!(ev.how, "h-e");
    assert_eq!(
        ev.point,
        LatLon {
            lat: 43.97957317,
            lon: -66.07737696
        }
    );
    assert_eq!(ev.hae_m, Some(26.767999));
    // ce 9999999.0 = unknown.
    assert_eq!(ev.ce_m, None);
    assert_eq!(ev.callsign.as_deref(), Some("Eliopoli HQ"));
    assert_eq!(ev.speed_mps, Some(0.0));
    assert_eq!(ev.course_deg, Some(0.0));
    assert_eq!(ev.battery_pct, Some(100.0));

    let r = ev.to_report(now()).unwrap();
    assert_eq!(r.device_id, "aa0b0312-b5cd-4c2c-bbbc-9c4c70216261");
    assert_eq!(r.source, DeviceSource::Cot);
    assert_eq!(r.name.as_deref(), Some("Eliopoli HQ"));
    assert_eq!(r.battery_pct, Some(100.0));
    assert_eq!(
        r.fix,
        Fix {
            position: LatLon {
                lat: 43.97957317,
                lon: -66.07737696
            },
            fix_time: t("2020-02-08T18:10:44Z"),
            heading_deg: Some(0.0),
            speed_mps: Some(0.0),
            accuracy_m: None,
        }
    );
    // A year later the same event is refused as ahead of… no: behind is fine, ahead is not.
    let err = ev.to_report(t("2020-02-08T18:00:00Z")).unwrap_err();
    assert!(
        matches!(err, CotError::Fix(FixError::Future { .. })),
        "{err}"
    );
}

#[test]
fn the_sample_frames_from_a_stream_cut_at_every_byte() {
    let xml = sample("cot_wintak_position.xml");
    let bytes = xml.as_bytes();
    let body_start = xml.find("<event").unwrap();
    let stream = [bytes, b"\n", bytes].concat();
    for cut in 0..stream.len() {
        let mut f = Framer::new();
        let mut got = Vec::new();
        f.push(&stream[..cut]);
        while let Some(e) = f.next_event() {
            got.push(e.unwrap());
        }
        f.push(&stream[cut..]);
        while let Some(e) = f.next_event() {
            got.push(e.unwrap());
        }
        assert_eq!(got.len(), 2, "cut at {cut}");
        for e in &got {
            // The declaration is skipped; the event is intact.
            assert_eq!(e.as_slice(), &bytes[body_start..], "cut at {cut}");
        }
        assert_eq!(f.pending_bytes(), 0);
    }
}

#[test]
fn framer_skips_garbage_and_handles_odd_but_legal_events() {
    let mut f = Framer::new();
    let a = event("a", "a-f-G-U-C", "1", "2");
    // `>` inside a quoted attribute value, `</event >` with a space, a self-closing event,
    // and `<events>` which is not an event.
    let b = "<event uid='b>c' type='t-x-c-t' time='2020-02-08T18:10:44Z'><point lat='0' lon='0'/></event >";
    let c = "<event uid=\"c\" type=\"t-x-c-t\" time=\"2020-02-08T18:10:44Z\"/>";
    let stream = format!("junk\r\n<events>{a}\x00\x01 noise <?xml version=\"1.0\"?>\n{b}{c}");
    f.push(stream.as_bytes());
    let got: Vec<Vec<u8>> = std::iter::from_fn(|| f.next_event())
        .map(Result::unwrap)
        .collect();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0], a.as_bytes());
    assert_eq!(got[1], b.as_bytes());
    assert_eq!(got[2], c.as_bytes());
    let ping = decode_event(&got[1]).unwrap();
    assert!(is_ping(&ping));
    assert_eq!(ping.uid, "b>c");
    // The self-closing one has no point.
    assert_eq!(decode_event(&got[2]), Err(CotError::Missing("point")));
}

#[test]
fn a_too_long_event_is_refused_once_and_the_stream_goes_on() {
    let mut f = Framer::new();
    f.push(b"<event uid=\"big\" type=\"a-f-G\"><detail><remarks>");
    let chunk = vec![b'x'; 8192];
    let mut errors = 0;
    for _ in 0..(2 * MAX_EVENT_BYTES / chunk.len()) {
        f.push(&chunk);
        while let Some(e) = f.next_event() {
            assert_eq!(e, Err(CotError::TooLong));
            errors += 1;
        }
        assert!(f.pending_bytes() <= MAX_EVENT_BYTES + chunk.len());
    }
    assert_eq!(errors, 1);
    let next = event("after", "a-f-G-U-C", "1", "2");
    f.push(format!("</remarks></detail></event>{next}").as_bytes());
    assert_eq!(f.next_event(), Some(Ok(next.into_bytes())));
    assert_eq!(f.next_event(), None);

    // A complete event over the limit arriving at once.
    let mut f = Framer::new();
    let big = format!(
        "<event uid=\"big\"><detail><remarks>{}</remarks></detail></event>",
        "y".repeat(MAX_EVENT_BYTES)
    );
    f.push(big.as_bytes());
    f.push(event("ok", "a-f-G", "1", "2").as_bytes());
    assert_eq!(f.next_event(), Some(Err(CotError::TooLong)));
    assert!(matches!(f.next_event(), Some(Ok(_))));
    assert_eq!(decode_event(big.as_bytes()), Err(CotError::TooLong));

    // Garbage alone never piles up.
    let mut f = Framer::new();
    for _ in 0..100 {
        f.push(&[b'z'; 10_000]);
        assert_eq!(f.next_event(), None);
    }
    assert!(f.pending_bytes() <= 16, "{}", f.pending_bytes());
}

#[test]
fn a_truncated_stream_yields_nothing_and_holds_the_partial_event() {
    let mut f = Framer::new();
    let a = event("a", "a-f-G-U-C", "1", "2");
    f.push(&a.as_bytes()[..a.len() - 3]);
    assert_eq!(f.next_event(), None);
    assert_eq!(f.pending_bytes(), a.len() - 3);
    // The decoder refuses the same bytes with where it stopped.
    let err = decode_event(&a.as_bytes()[..a.len() - 3]).unwrap_err();
    assert!(matches!(err, CotError::Xml(_)), "{err}");
}

#[test]
fn malformed_and_incomplete_events_are_refused_with_the_reason() {
    let d = |s: &str| decode_event(s.as_bytes()).unwrap_err();
    assert!(
        d("<event uid='a'><point></event>")
            .to_string()
            .starts_with("malformed CoT XML")
    );
    assert_eq!(
        d("<other/>").to_string(),
        "malformed CoT XML: the root element is <other>, not <event>"
    );
    assert!(d("").to_string().contains("no <event>"));
    assert!(
        d("hello <event/>")
            .to_string()
            .contains("text outside <event>")
    );
    assert!(
        d(&format!("{}<event/>", event("a", "a-f-G", "1", "2")))
            .to_string()
            .contains("after </event>")
    );
    assert!(
        d("<!DOCTYPE x [<!ENTITY a 'b'>]><event/>")
            .to_string()
            .contains("DOCTYPE")
    );
    assert_eq!(
        d("<event type='a-f-G' time='2020-02-08T18:10:44Z'><point lat='1' lon='2'/></event>"),
        CotError::Missing("event@uid")
    );
    assert_eq!(
        d("<event uid='u' time='2020-02-08T18:10:44Z'><point lat='1' lon='2'/></event>"),
        CotError::Missing("event@type")
    );
    assert_eq!(
        d("<event uid='u' type='a-f-G'><point lat='1' lon='2'/></event>"),
        CotError::Missing("event@time")
    );
    assert_eq!(
        d("<event uid='u' type='a-f-G' time='2020-02-08T18:10:44Z'><point lon='2'/></event>"),
        CotError::Missing("point@lat")
    );
    assert_eq!(
        d("<event uid='u' type='a-f-G' time='yesterday'><point lat='1' lon='2'/></event>")
            .to_string(),
        "CoT attribute event@time=\"yesterday\": not an ISO 8601 time"
    );
    assert_eq!(
        d(&event("u", "a-f-G", "north", "2")).to_string(),
        "CoT attribute point@lat=\"north\": not a number"
    );
    // Unknown entity.
    assert!(d("<event uid='&bogus;' type='a' time='2020-02-08T18:10:44Z'><point lat='1' lon='2'/></event>")
        .to_string()
        .starts_with("malformed CoT XML"));
}

#[test]
fn what_is_not_a_device_position_is_refused() {
    let now = now();
    let r = |s: &str| decode_event(s.as_bytes()).unwrap().to_report(now);
    assert_eq!(
        r(&event("u", "t-x-c-t", "1", "2")),
        Err(CotError::NotPosition("t-x-c-t".into()))
    );
    assert_eq!(
        r(&event("outpost-unit-7", "a-f-G-U-C", "1", "2")),
        Err(CotError::NotPosition("a-f-G-U-C".into()))
    );
    let placed = event("marker-1", "a-h-G", "1", "2").replace("how=\"m-g\"", "how=\"h-g-i-g-o\"");
    assert_eq!(r(&placed), Err(CotError::NotPosition("a-h-G".into())));
    assert_eq!(
        r(&event("u", "a-f-G", "91", "2")),
        Err(CotError::Fix(FixError::Latitude(91.0)))
    );
    assert!(
        matches!(r(&event("u", "a-f-G", "NaN", "2")), Err(CotError::Fix(FixError::Latitude(x))) if x.is_nan())
    );
    let battery =
        event("u", "a-f-G", "1", "2").replace("<detail>", "<detail><status battery='150'/>");
    assert_eq!(
        r(&battery).unwrap_err().to_string(),
        "CoT attribute status@battery=\"150\": battery level is outside 0..100 %"
    );
    // The uid is kept as bind_device takes it: trimmed; blank or with controls refused.
    assert_eq!(
        r(&event(" ANDROID-7 ", "a-f-G", "1", "2"))
            .unwrap()
            .device_id,
        "ANDROID-7"
    );
    assert_eq!(
        r(&event("  ", "a-f-G", "1", "2")).unwrap_err().to_string(),
        "CoT attribute event@uid=\"  \": the device id is empty"
    );
    assert_eq!(
        r(&event("a&#1;b", "a-f-G", "1", "2"))
            .unwrap_err()
            .to_string(),
        r#"CoT attribute event@uid="a\u{1}b": the device id contains a control character"#
    );
    assert_eq!(
        r(&event(" outpost-unit-7", "a-f-G-U-C", "1", "2")),
        Err(CotError::NotPosition("a-f-G-U-C".into()))
    );
    // Accepted: ce → accuracy, callsign → name.
    let ok = r(&event("phone-1", "a-f-G-U-C", "39.8", "109.98")).unwrap();
    assert_eq!(ok.fix.accuracy_m, Some(12.5));
    assert_eq!(ok.name.as_deref(), Some("phone-1-cs"));
}

fn unit() -> UnitPicture {
    UnitPicture {
        unit_id: "u-7".into(),
        callsign: "巡逻 7 <A&B>".into(),
        kind: UnitKind::PatrolCar,
        status: UnitStatus::EnRoute,
        fix: Fix {
            position: LatLon {
                lat: 39.817_123_4,
                lon: 109.977_5,
            },
            fix_time: t("2026-11-29T12:00:00Z"),
            heading_deg: Some(90.5),
            speed_mps: Some(13.2),
            accuracy_m: Some(4.0),
        },
        incident_number: Some("2026-0042".into()),
    }
}

#[test]
fn a_unit_encodes_to_an_event_that_decodes_back() {
    let now = t("2026-11-29T12:00:30Z");
    let xml = encode_unit(&unit(), now);
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(ev.uid, "outpost-unit-u-7");
    assert_eq!(ev.event_type, "a-f-G-E-V-C");
    assert_eq!(ev.how, "m-g");
    assert_eq!(ev.time, now);
    assert_eq!(ev.start, t("2026-11-29T12:00:00Z"));
    assert_eq!(
        ev.stale,
        t("2026-11-29T12:00:00Z") + Duration::seconds(UNIT_STALE_S)
    );
    assert_eq!(
        ev.point,
        LatLon {
            lat: 39.817_123_4,
            lon: 109.977_5
        }
    );
    assert_eq!(ev.ce_m, Some(4.0));
    assert_eq!(ev.hae_m, None);
    assert_eq!(ev.callsign.as_deref(), Some("巡逻 7 <A&B>"));
    assert_eq!(ev.course_deg, Some(90.5));
    assert_eq!(ev.speed_mps, Some(13.2));
    assert!(
        xml.contains("<remarks>patrol car, en route, incident 2026-0042</remarks>"),
        "{xml}"
    );
    assert!(xml.contains("time=\"2026-11-29T12:00:30.000Z\""), "{xml}");
    // Our own events are never taken as device reports.
    assert!(matches!(ev.to_report(now), Err(CotError::NotPosition(_))));
    // Types by kind.
    for (kind, ty) in [
        (UnitKind::Motorcycle, "a-f-G-E-V-C"),
        (UnitKind::Traffic, "a-f-G-E-V-C"),
        (UnitKind::FootPatrol, "a-f-G-U-C"),
        (UnitKind::PostTeam, "a-f-G-U-C"),
        (UnitKind::Tactical, "a-f-G-U-C-S"),
    ] {
        let mut u = unit();
        u.kind = kind;
        u.fix.heading_deg = None;
        u.fix.speed_mps = None;
        u.fix.accuracy_m = None;
        u.incident_number = None;
        let xml = encode_unit(&u, now);
        let ev = decode_event(xml.as_bytes()).unwrap();
        assert_eq!(ev.event_type, ty);
        assert_eq!((ev.speed_mps, ev.course_deg, ev.ce_m), (None, None, None));
        assert!(!xml.contains("<track"), "{xml}");
    }
}

#[test]
fn an_incident_encodes_open_and_closed() {
    let id = Uuid::parse_str("0190f0e2-0000-7000-8000-000000000001").unwrap();
    let mut inc = IncidentPicture {
        incident_id: id,
        number: "2026-0042".into(),
        incident_type: IncidentType::TrafficAccident,
        priority: Priority::P1,
        location: LatLon {
            lat: 42.5063,
            lon: 1.5218,
        },
        address: "Avinguda Meritxell 'Centre' & co".into(),
        created_at: t("2026-11-29T11:50:00Z"),
        closed: false,
    };
    let now = t("2026-11-29T12:00:30Z");
    let xml = encode_incident(&inc, now);
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(ev.uid, format!("outpost-incident-{id}"));
    assert_eq!(ev.event_type, INCIDENT_COT_TYPE);
    assert_eq!(ev.how, "h-g-i-g-o");
    assert_eq!(ev.time, now);
    assert_eq!(ev.start, t("2026-11-29T11:50:00Z"));
    assert_eq!(ev.stale, now + Duration::seconds(INCIDENT_STALE_S));
    assert_eq!(
        ev.point,
        LatLon {
            lat: 42.5063,
            lon: 1.5218
        }
    );
    assert_eq!(ev.callsign.as_deref(), Some("2026-0042"));
    assert!(
        xml.contains(
            "<remarks>P1 traffic accident: Avinguda Meritxell &apos;Centre&apos; &amp; co</remarks>"
        ),
        "{xml}"
    );
    assert_eq!(priority_argb(Priority::P1), -65536);
    assert!(xml.contains("<color argb=\"-65536\"/>"), "{xml}");
    assert!(
        xml.contains("COT_MAPPING_SPOTMAP/b-m-p-s-m/-65536"),
        "{xml}"
    );
    assert!(matches!(ev.to_report(now), Err(CotError::NotPosition(_))));

    inc.closed = true;
    let ev = decode_event(encode_incident(&inc, now).as_bytes()).unwrap();
    assert_eq!(ev.stale, now, "a closed incident is stale at once");
}

#[test]
fn the_pong_answers_a_ping() {
    let now = t("2026-11-29T12:00:30Z");
    let ev = decode_event(encode_pong(now).as_bytes()).unwrap();
    assert_eq!(ev.event_type, "t-x-c-t-r");
    assert_eq!(ev.uid, "takPong");
    assert_eq!(ev.time, now);
    assert_eq!(ev.start, now);
    assert_eq!(ev.stale, now + Duration::seconds(20));
    assert!(!is_ping(&ev));
}

/// The values of every attribute named `name` in `xml`.
fn attrs<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let key = format!(" {name}=\"");
    xml.match_indices(&key)
        .map(|(i, _)| {
            let rest = &xml[i + key.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect()
}

/// Every number of an encoded event is an `xs:decimal` without exponent:
/// `-?[0-9]+(.[0-9]+)?`.
#[track_caller]
fn numbers_are_plain_decimals(xml: &str) {
    for name in ["lat", "lon", "hae", "ce", "le", "course", "speed"] {
        for v in attrs(xml, name) {
            let digits = v.strip_prefix('-').unwrap_or(v);
            let (int, frac) = digits.split_once('.').unwrap_or((digits, "0"));
            let ok = !int.is_empty()
                && !frac.is_empty()
                && int.bytes().all(|b| b.is_ascii_digit())
                && frac.bytes().all(|b| b.is_ascii_digit());
            assert!(ok, "{name}={v:?} is not a plain decimal in {xml}");
        }
    }
}

/// XML 1.0 `Char` (fifth edition, §2.2), written out independently of the encoder.
fn xml_char(c: char) -> bool {
    let c = u32::from(c);
    c == 0x9
        || c == 0xA
        || c == 0xD
        || (0x20..=0xD7FF).contains(&c)
        || (0xE000..=0xFFFD).contains(&c)
        || (0x10000..=0x10FFFF).contains(&c)
}

#[test]
fn tiny_and_huge_numbers_are_written_without_exponent() {
    let mut u = unit();
    u.fix.position = LatLon {
        lat: 0.000_05,
        lon: -0.000_000_01,
    };
    u.fix.speed_mps = Some(0.000_008);
    u.fix.heading_deg = Some(1e-10);
    u.fix.accuracy_m = Some(1.234_567_890_123_456_8e17);
    let now = t("2026-11-29T12:00:30Z");
    let xml = encode_unit(&u, now);
    numbers_are_plain_decimals(&xml);
    assert_eq!(attrs(&xml, "lat"), ["0.00005"]);
    // −1e-8 rounds to zero at 7 decimals, written without its sign.
    assert_eq!(attrs(&xml, "lon"), ["0.0"]);
    assert_eq!(attrs(&xml, "speed"), ["0.0"]);
    assert_eq!(attrs(&xml, "course"), ["0.0"]);
    assert_eq!(attrs(&xml, "ce"), ["123456789012345680.0"]);
    assert_eq!(attrs(&xml, "hae"), ["9999999.0"]);
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(
        ev.point,
        LatLon {
            lat: 0.000_05,
            lon: 0.0
        }
    );
    // 9999999 and more means "unknown" in CoT.
    assert_eq!(ev.ce_m, None);

    u.fix.position = LatLon {
        lat: -89.999_999_96,
        lon: 179.123_456_789,
    };
    u.fix.speed_mps = Some(1e300);
    u.fix.accuracy_m = Some(f64::MAX);
    let xml = encode_unit(&u, now);
    numbers_are_plain_decimals(&xml);
    assert_eq!(attrs(&xml, "lat"), ["-90.0"]);
    assert_eq!(attrs(&xml, "lon"), ["179.1234568"]);
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(ev.speed_mps, Some(1e300));
    assert_eq!(ev.ce_m, None, "9999999 and more means unknown");
    let ce = attrs(&xml, "ce")[0];
    assert!(
        ce.starts_with("17976931348623157") && ce.ends_with(".0"),
        "{ce}"
    );
    assert_eq!(ce.parse::<f64>().unwrap(), f64::MAX);

    let inc = IncidentPicture {
        incident_id: Uuid::nil(),
        number: "2026-0001".into(),
        incident_type: IncidentType::Fire,
        priority: Priority::P2,
        location: LatLon {
            lat: 1e-5,
            lon: -2.5e-6,
        },
        address: "x".into(),
        created_at: now,
        closed: false,
    };
    let xml = encode_incident(&inc, now);
    numbers_are_plain_decimals(&xml);
    assert_eq!(attrs(&xml, "lat"), ["0.00001"]);
    assert_eq!(attrs(&xml, "lon"), ["-0.0000025"]);
}

#[test]
fn characters_xml_forbids_are_not_sent() {
    let mut u = unit();
    u.callsign = "P\u{FFFE}1\u{FFFF}\u{0}\u{1b}\u{7f}\u{85}\t\r\n\u{FFFD}\u{10FFFF}".into();
    u.incident_number = Some("N\u{FFFF}".into());
    let xml = encode_unit(&u, t("2026-11-29T12:00:30Z"));
    assert!(xml.chars().all(xml_char), "{xml:?}");
    let ev = decode_event(xml.as_bytes()).unwrap();
    assert_eq!(
        ev.callsign.as_deref(),
        Some(format!("P 1{}\u{FFFD}\u{10FFFF}", " ".repeat(8)).as_str())
    );
    assert!(xml.contains("incident N </remarks>"), "{xml}");
}

mod roundtrip {
    use super::*;
    use proptest::prelude::*;

    fn kind() -> impl Strategy<Value = UnitKind> {
        prop_oneof![
            Just(UnitKind::PatrolCar),
            Just(UnitKind::Motorcycle),
            Just(UnitKind::FootPatrol),
            Just(UnitKind::PostTeam),
            Just(UnitKind::Tactical),
            Just(UnitKind::Traffic),
        ]
    }

    /// Any Unicode text, with the characters XML 1.0 forbids and the controls it allows
    /// (tab, LF, CR) well represented.
    fn text() -> impl Strategy<Value = String> {
        let c = prop_oneof![
            4 => any::<char>(),
            1 => Just('\u{FFFE}'),
            1 => Just('\u{FFFF}'),
            1 => prop::char::range('\u{0}', '\u{1f}'),
            1 => prop::char::range('\u{7f}', '\u{9f}'),
            1 => Just('<'),
            1 => Just('&'),
            1 => Just('"'),
        ];
        prop::collection::vec(c, 1..40).prop_map(|v| v.into_iter().collect())
    }

    /// What the decoder reads back for text the encoder was given: controls and characters
    /// XML forbids as spaces.
    fn as_sent(s: &str) -> String {
        s.chars()
            .map(|c| {
                if c.is_control() || !xml_char(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect()
    }

    /// A number as written with `places` decimals, read back.
    fn rounded(x: f64, places: i32) -> f64 {
        format!("{x:.*}", places as usize).parse().unwrap()
    }

    proptest! {
        /// Any unit encodes to a well-formed event (every character an XML 1.0 `Char`, every
        /// number a plain decimal) that decodes to the same values — coordinates to 7
        /// decimals, metres, m/s and degrees to 2 — whatever its callsign holds, and
        /// `time` = now even for fixes at the ends of the time range.
        #[test]
        fn units_roundtrip(
            lat in -90.0f64..=90.0,
            lon in -180.0f64..=180.0,
            secs in 946_684_800i64..4_102_444_800,
            heading in prop::option::of(0.0f64..=360.0),
            speed in prop::option::of(prop_oneof![0.0f64..1000.0, 0.0f64..1e-4, 1e15f64..1e300]),
            acc in prop::option::of(prop_oneof![0.0f64..10_000.0, 0.0f64..1e-4]),
            callsign in text(),
            kind in kind(),
        ) {
            let fix_time = chrono::DateTime::from_timestamp(secs, 0).unwrap();
            let u = UnitPicture {
                unit_id: "u".into(),
                callsign: callsign.clone(),
                kind,
                status: UnitStatus::Available,
                fix: Fix {
                    position: LatLon { lat, lon },
                    fix_time,
                    heading_deg: heading,
                    speed_mps: speed,
                    accuracy_m: acc,
                },
                incident_number: Some(callsign.clone()),
            };
            let now = t("2026-11-29T12:00:00Z");
            let xml = encode_unit(&u, now);
            prop_assert!(xml.chars().all(xml_char), "{:?}", xml);
            numbers_are_plain_decimals(&xml);
            let ev = decode_event(xml.as_bytes()).unwrap();
            prop_assert_eq!(ev.point, LatLon { lat: rounded(lat, 7), lon: rounded(lon, 7) });
            prop_assert!((ev.point.lat - lat).abs() <= 0.6e-7);
            prop_assert!((ev.point.lon - lon).abs() <= 0.6e-7);
            prop_assert_eq!(ev.start, fix_time);
            prop_assert_eq!(ev.time, now);
            prop_assert_eq!(ev.course_deg, heading.map(|x| rounded(x, 2)));
            prop_assert_eq!(ev.speed_mps, speed.map(|x| rounded(x, 2)));
            prop_assert_eq!(ev.ce_m, acc.map(|x| rounded(x, 2)));
            // Attribute values are normalised per XML (tabs/newlines become spaces).
            prop_assert_eq!(ev.callsign, Some(as_sent(&callsign)));
        }

        /// Any incident number and address give a well-formed event that decodes.
        #[test]
        fn incidents_roundtrip(
            lat in -90.0f64..=90.0,
            lon in -180.0f64..=180.0,
            number in text(),
            address in text(),
            closed in any::<bool>(),
        ) {
            let inc = IncidentPicture {
                incident_id: Uuid::nil(),
                number: number.clone(),
                incident_type: IncidentType::Other,
                priority: Priority::P3,
                location: LatLon { lat, lon },
                address,
                created_at: t("2026-11-29T11:00:00Z"),
                closed,
            };
            let xml = encode_incident(&inc, t("2026-11-29T12:00:00Z"));
            prop_assert!(xml.chars().all(xml_char), "{:?}", xml);
            numbers_are_plain_decimals(&xml);
            let ev = decode_event(xml.as_bytes()).unwrap();
            prop_assert_eq!(ev.callsign, Some(as_sent(&number)));
            prop_assert_eq!(ev.point, LatLon { lat: rounded(lat, 7), lon: rounded(lon, 7) });
        }
    }
}

//! The fuzz targets' bodies (`outpost_devices::fuzzing`) on stable: the seed corpora,
//! regressions, and proptest-generated inputs shaped like each protocol.

use outpost_devices::fuzzing::{cot_decode, nmea_feed, osmand_decode};
use proptest::prelude::*;

use crate::sample;

#[test]
fn seeds_run_clean() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let mut n = 0;
    for (target, body) in [
        ("osmand_decode", osmand_decode as fn(&[u8])),
        ("cot_decode", cot_decode),
        ("nmea_feed", nmea_feed),
    ] {
        for entry in std::fs::read_dir(dir.join(target)).unwrap() {
            let path = entry.unwrap().path();
            if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("seed-")
            {
                body(&std::fs::read(&path).unwrap());
                n += 1;
            }
        }
    }
    assert!(n >= 9, "only {n} seeds");
    osmand_decode(sample("osmand_samples.txt").as_bytes());
    cot_decode(sample("cot_wintak_position.xml").as_bytes());
    nmea_feed(sample("mt3339.log").as_bytes());
}

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,4}(\\.[0-9]{0,8})?",
        "[0-9]{9,13}",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]%3A[0-5][0-9]%3A[0-5][0-9]Z",
        "NaN|inf|-inf|true|false|",
        "[ -~]{0,12}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("id"),
        Just("deviceid"),
        Just("lat"),
        Just("lon"),
        Just("location"),
        Just("timestamp"),
        Just("speed"),
        Just("bearing"),
        Just("heading"),
        Just("accuracy"),
        Just("batt"),
        Just("valid"),
        Just("hdop"),
        Just("x"),
    ];
    prop::collection::vec((key, query_value()), 0..10).prop_map(|kv| {
        let parts: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("/?{}", parts.join("&"))
    })
}

fn cot_stream() -> impl Strategy<Value = Vec<u8>> {
    let num = "-?[0-9]{1,3}(\\.[0-9]{0,6})?|NaN|9999999";
    let ev = (
        "[a-z0-9-]{0,10}",
        "a-f-G(-U-C)?|t-x-c-t|b-m-p-s-m",
        num,
        num,
        "20[0-9]{2}-0[1-9]-1[0-9]T1[0-9]:[0-5][0-9]:[0-5][0-9](\\.[0-9]{3})?Z|x",
        prop::option::of("[0-9]{1,3}"),
    )
        .prop_map(|(uid, ty, lat, lon, time, batt)| {
            let status = batt
                .map(|b| format!("<status battery='{b}'/>"))
                .unwrap_or_default();
            format!(
                "<event uid='{uid}' type='{ty}' time='{time}' how='m-g'><point lat='{lat}' \
                 lon='{lon}' ce='5'/><detail>{status}<contact callsign='c'/></detail></event>"
            )
        });
    let piece = prop_oneof![
        4 => ev,
        1 => Just("<?xml version='1.0'?>\n".to_string()),
        1 => "[ -~]{0,20}",
        1 => Just("</event>".to_string()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| p.concat().into_bytes())
}

fn nmea_lines() -> impl Strategy<Value = Vec<u8>> {
    let body = prop_oneof![
        "G[PNLB]RMC,[0-9]{6}\\.[0-9]{2,3},[AVD],[0-9]{4}\\.[0-9]{4},[NS],[0-9]{5}\\.[0-9]{4},[EW],[0-9]{1,2}\\.[0-9]{2},[0-9]{1,3}\\.[0-9]{2},[0-9]{6},,,[ADN]",
        "G[PN]GGA,[0-9]{6}\\.[0-9]{3},[0-9]{4}\\.[0-9]{4},[NS],[0-9]{5}\\.[0-9]{4},[EW],[0-8],[0-9]{2},[0-9]{1,2}\\.[0-9]{2},[0-9]{1,4}\\.[0-9],M,-?[0-9]{1,2}\\.[0-9],M,,",
        "PMTK[0-9]{3},[0-9]",
        "[ -~]{0,30}",
    ];
    prop::collection::vec((body, any::<bool>()), 0..12).prop_map(|lines| {
        lines
            .into_iter()
            .map(|(b, good)| {
                let cs = b.bytes().fold(0u8, |a, x| a ^ x) ^ u8::from(!good);
                format!("${b}*{cs:02X}\r\n")
            })
            .collect::<String>()
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn osmand_queries(q in query()) {
        osmand_decode(q.as_bytes());
    }

    #[test]
    fn osmand_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        osmand_decode(&data);
    }

    #[test]
    fn cot_streams(data in cot_stream()) {
        cot_decode(&data);
    }

    #[test]
    fn cot_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        cot_decode(&data);
    }

    #[test]
    fn nmea_streams(data in nmea_lines()) {
        nmea_feed(&data);
    }

    #[test]
    fn nmea_arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        nmea_feed(&data);
    }
}

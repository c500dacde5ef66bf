//! Decoder throughput on this machine, one core: `cargo run --release -p outpost-devices
//! --example decode_rate`. Decodes the repository's real samples (`data/gps/`) in a loop
//! and prints reports (or fixes) per second for each protocol.

use std::hint::black_box;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use outpost_devices::cot::{Framer, decode_event};
use outpost_devices::nmea::NmeaTracker;
use outpost_devices::osmand::{decode_json, decode_query};

fn sample(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/gps")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `f` (which handles `per_call` reports) for about a second; reports per second.
fn rate(per_call: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0usize;
    while start.elapsed() < Duration::from_secs(1) {
        for _ in 0..100 {
            f();
        }
        calls += 100;
    }
    (calls * per_call) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let now: DateTime<Utc> = "2026-11-29T12:00:00Z".parse().unwrap_or_default();
    let samples = sample("osmand_samples.txt");
    let query = samples
        .lines()
        .find(|l| l.starts_with("QUERY position /?id=123456789012345"))
        .and_then(|l| l.splitn(3, ' ').nth(2))
        .unwrap_or_default()
        .to_string();
    let json = samples
        .lines()
        .find(|l| l.starts_with("JSON "))
        .and_then(|l| l.splitn(3, ' ').nth(2))
        .unwrap_or_default()
        .to_string();
    let cot = sample("cot_wintak_position.xml");
    let cot_now: DateTime<Utc> = "2020-02-08T18:11:00Z".parse().unwrap_or_default();
    let stream: Vec<u8> = cot.repeat(100).into_bytes();
    let nmea = sample("mt3339.log");

    println!(
        "OsmAnd query: {:>10.0} reports/s",
        rate(1, || {
            black_box(decode_query(black_box(&query), now).ok());
        })
    );
    println!(
        "OsmAnd JSON:  {:>10.0} reports/s",
        rate(1, || {
            black_box(decode_json(black_box(json.as_bytes()), now).ok());
        })
    );
    println!(
        "CoT event:    {:>10.0} reports/s (decode + to_report of the WinTAK sample)",
        rate(1, || {
            let r = decode_event(black_box(cot.as_bytes())).and_then(|e| e.to_report(cot_now));
            black_box(r.ok());
        })
    );
    println!(
        "CoT stream:   {:>10.0} reports/s (framed from 100 back-to-back events in 1,460-byte reads)",
        rate(100, || {
            let mut f = Framer::new();
            for chunk in stream.chunks(1460) {
                f.push(chunk);
                while let Some(Ok(ev)) = f.next_event() {
                    black_box(decode_event(&ev).ok());
                }
            }
        })
    );
    println!(
        "NMEA:         {:>10.0} fixes/s (mt3339.log: 145 lines, 30 fixes per pass)",
        rate(30, || {
            let mut t = NmeaTracker::new();
            for l in nmea.lines() {
                black_box(t.feed_line(l));
            }
        })
    );
}

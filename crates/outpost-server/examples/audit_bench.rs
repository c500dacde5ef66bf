//! Appends to an audit trail in a temp dir and prints records per second: `record_many` of
//! 100 events (one transaction, as one push's ops) and single `record` calls (one transaction
//! each, e.g. a login). Every transaction is on disk (`synchronous = FULL`), so the figure is
//! bound by the disk's fsync. `cargo run --release -p outpost-server --example audit_bench`.

use std::time::Instant;

use outpost_server::security::audit::{AuditEvent, AuditLog, AuditOutcome};

fn event(i: usize) -> AuditEvent {
    AuditEvent::new("op:unit.set_status", AuditOutcome::Ok)
        .user(format!("user{}", i % 50))
        .device(format!("dev-0192{:04}", i % 200))
        .target(format!("0192f0a4-7c1e-7b7a-9d3e-{i:012}"))
        .detail("critical lane")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let log = AuditLog::open(dir.path())?;
    let batches = 200;
    let events: Vec<_> = (0..100).map(event).collect();
    let start = Instant::now();
    for _ in 0..batches {
        log.record_many(&events)?;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "record_many(100): {} records in {s:.3} s = {:.0} records/s ({:.2} ms per batch)",
        batches * 100,
        (batches * 100) as f64 / s,
        s * 1000.0 / batches as f64
    );
    let singles = 500;
    let start = Instant::now();
    for i in 0..singles {
        log.record(event(i))?;
    }
    let s = start.elapsed().as_secs_f64();
    println!(
        "record: {singles} records in {s:.3} s = {:.0} records/s ({:.2} ms each)",
        singles as f64 / s,
        s * 1000.0 / singles as f64
    );
    let start = Instant::now();
    let report = log.verify()?;
    println!("verify: {report} in {:.3} s", start.elapsed().as_secs_f64());
    Ok(())
}

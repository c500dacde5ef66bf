//! Runs the demo replay headless against a console on a temp data dir and prints what
//! happened: `cargo run -p outpost-demo --example replay -- PACK.outpost [SECONDS] [TIME_SCALE]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use outpost_app::{Console, ConsoleOptions};
use outpost_demo::{DemoOptions, Roster};
use outpost_domain::SystemClock;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let pack = PathBuf::from(
        args.next()
            .ok_or("usage: replay PACK.outpost [SECONDS] [TIME_SCALE]")?,
    );
    let secs: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(30.0);
    let scale: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1.0);
    let dir = tempfile::tempdir()?;
    let console = Arc::new(Console::open(
        ConsoleOptions {
            pack: Some(pack),
            data_dir: dir.path().to_path_buf(),
            demo: true,
            user: "cmdr".into(),
        },
        Arc::new(SystemClock),
    )?);
    let roster = Roster::andorra()?;
    let opts = DemoOptions {
        time_scale: scale,
        ..DemoOptions::default()
    };
    let t0 = std::time::Instant::now();
    let mut handle = outpost_demo::start(Arc::clone(&console), roster.clone(), opts);
    println!(
        "registered and first-reported in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let steps = (secs / 5.0).ceil() as u32;
    for _ in 0..steps {
        std::thread::sleep(Duration::from_secs(5));
        let state = console.console_state()?;
        let moving = state
            .units
            .iter()
            .filter(|u| u.fix.as_ref().and_then(|f| f.speed_mps).unwrap_or(0.0) > 0.0)
            .count();
        let s = handle.stats();
        println!(
            "roads {} t={:>5.0}s  moving {moving:>2}/{}  incidents {} (open {})  dispatches {}  closed {}  fixes {}  errors {}",
            s.road_nodes,
            t0.elapsed().as_secs_f64() * scale,
            state.units.len(),
            s.incidents_created,
            state
                .incidents
                .iter()
                .filter(|i| i.status != outpost_domain::IncidentStatus::Closed)
                .count(),
            s.dispatches,
            s.incidents_closed,
            s.positions_reported,
            s.errors,
        );
    }
    handle.stop();
    let state = console.console_state()?;
    for u in &state.units {
        if let Some(f) = &u.fix {
            println!(
                "{:<8} {:<12} {:>9.5},{:>8.5}  {:>5.1} km/h  hdg {:>5}  {:?}",
                u.callsign,
                format!("{:?}", u.kind),
                f.position.lat,
                f.position.lon,
                f.speed_mps.unwrap_or(0.0) * 3.6,
                f.heading_deg.map(|h| format!("{h:.0}")).unwrap_or_default(),
                u.status
            );
        }
    }
    for i in state.incidents.iter().take(10) {
        println!(
            "{} {:?} {:?} {:?} {} {:?}",
            i.number, i.priority, i.incident_type, i.status, i.address, i.assigned
        );
    }
    for e in handle.stats().recent_errors {
        println!("error: {e}");
    }
    Ok(())
}

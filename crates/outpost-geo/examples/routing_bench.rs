//! `routing_bench`: the Rust half of `bench/routing.sh` (issue 5's routing measurements) on
//! a real area pack (Andorra).
//!
//! 1. **Load**: the pack's road network read, `RoadGraph::from_network`, `Router::new` with
//!    the pack's stored contraction order (re-contraction) and with none (full CH
//!    preparation).
//! 2. **Rank**: `--units` unit positions (random car-graph nodes offset by up to 50 m,
//!    deterministic seed) against `--incidents` incident points: `Router::etas_to` (what the
//!    console calls: one backward Dijkstra stopped once every unit's segment is settled),
//!    `Router::etas_to_ch` (one contraction-hierarchy query per unit),
//!    `Router::etas_to_dijkstra` (one backward Dijkstra over the whole graph, the reference)
//!    and, for `--p2p-incidents` of them, one `Router::route_dijkstra` per unit. Every answer
//!    is compared with the reference.
//! 3. **Point to point**: `Router::route` vs `Router::route_dijkstra` over `--pairs` pairs.
//! 4. **Isochrone**: `Router::reach(&[one source], 300 s)` over `--sources` sources, the
//!    same unbounded (the whole graph), and the 1-3-5 coverage of `--coverage-sources`
//!    sources at once.
//! 5. **Closures**: a line closure on a middle stretch of the CG-1 (Avinguda de Tarragona,
//!    Andorra la Vella) and an area closure in Escaldes-Engordany; `set_closures` time, then
//!    rank and isochrone again; ETAs compared with the open network (none may fall).
//!
//! Prints one JSON object to stdout (times in milliseconds, counts) with a `problems` list:
//! answers that differ between CH and Dijkstra, ETAs that fell with a closure, reach times
//! that disagree. It exits 0 when it ran (the script fails on problems after printing its
//! table) and 1 on an error (no pack, a point that does not snap...).
//!
//! The pack is opened from `--pack`; when it is missing, does not open, is older than this
//! binary (not checked with `--smoke`), or its stored contraction order does not fit the graph, it is built there first
//! from `--osm` (`outpost_geo::build_pack`, atomic rename).
//!
//! Build with `cargo build --release -p outpost-geo --example routing_bench`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use outpost_domain::LatLon;
use outpost_domain::road_closure::ClosureShape;
use outpost_geo::routing::{EtaProblem, HierarchyOrder, ReachSource, RoadGraph, Router};
use outpost_geo::{BuildOptions, Pack, build_pack};
use serde_json::{Value, json};

type Res<T> = Result<T, String>;

/// Two ETAs (seconds) that differ by more than this count as a mismatch. Edge weights are
/// whole tenths of a second; the partial first and last segments may round differently in
/// the CH's integer source/target weights.
const TOL_S: f64 = 0.25;
/// A unit position is a drivable-road node moved by up to this much, metres.
const OFFSET_M: f64 = 50.0;
/// The isochrone limit, seconds (the 5 of 1-3-5).
const LIMIT_S: f64 = 300.0;
/// "Unbounded": a limit no Andorra drive reaches, seconds.
const UNBOUNDED_S: f64 = 1.0e7;

/// The two ends of the CG-1 stretch (Avinguda de Tarragona, Andorra la Vella, west → east);
/// the line closure is the middle 40 % of the fastest route between them.
const CG1_WEST: LatLon = LatLon {
    lat: 42.502_230,
    lon: 1.513_788,
};
const CG1_EAST: LatLon = LatLon {
    lat: 42.505_995,
    lon: 1.531_675,
};
/// Centre of the area closure (Escaldes-Engordany) and its half-size, metres.
const AREA_CENTRE: LatLon = LatLon {
    lat: 42.509_5,
    lon: 1.539_0,
};
const AREA_HALF_M: f64 = 150.0;

struct Args {
    pack: PathBuf,
    osm: PathBuf,
    units: usize,
    incidents: usize,
    p2p_incidents: usize,
    pairs: usize,
    sources: usize,
    coverage_sources: usize,
    reps: usize,
    full_prep: bool,
    /// Rebuild the pack when it is older than this binary (off with `--smoke`, where a
    /// debug build of the pack takes ~20 s; a stale order that no longer fits still
    /// triggers a rebuild).
    check_age: bool,
    seed: u64,
}

fn parse_args() -> Res<Args> {
    let mut a = Args {
        pack: PathBuf::new(),
        osm: PathBuf::new(),
        units: 500,
        incidents: 200,
        p2p_incidents: 5,
        pairs: 200,
        sources: 200,
        coverage_sources: 20,
        reps: 5,
        full_prep: true,
        check_age: true,
        seed: 5,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "--smoke" {
            (a.units, a.incidents, a.p2p_incidents, a.pairs) = (50, 5, 1, 5);
            (a.sources, a.coverage_sources, a.reps, a.full_prep) = (5, 5, 1, false);
            a.check_age = false;
            continue;
        }
        if flag == "--no-full-prep" {
            a.full_prep = false;
            continue;
        }
        let val = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let num = || {
            val.parse::<usize>()
                .map_err(|e| format!("{flag} {val}: not a count ({e})"))
        };
        match flag.as_str() {
            "--pack" => a.pack = PathBuf::from(&val),
            "--osm" => a.osm = PathBuf::from(&val),
            "--units" => a.units = num()?,
            "--incidents" => a.incidents = num()?,
            "--p2p-incidents" => a.p2p_incidents = num()?,
            "--pairs" => a.pairs = num()?,
            "--sources" => a.sources = num()?,
            "--coverage-sources" => a.coverage_sources = num()?,
            "--reps" => a.reps = num()?.max(1),
            "--seed" => a.seed = num()? as u64,
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    if a.pack.as_os_str().is_empty() || a.osm.as_os_str().is_empty() {
        return Err(
            "usage: routing_bench --pack FILE.outpost --osm FILE.osm.pbf [--smoke] \
                    [--units N] [--incidents N] [--p2p-incidents N] [--pairs N] [--sources N] \
                    [--coverage-sources N] [--reps N] [--seed N] [--no-full-prep]"
                .into(),
        );
    }
    Ok(a)
}

/// SplitMix64: a small deterministic generator (the benchmark needs repeatable points, not
/// cryptographic ones).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in 0..1.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

fn ms_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// p50, p95, max and mean of times in milliseconds (nearest rank).
fn stats(samples: &[f64]) -> Value {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return json!({"n": 0});
    }
    let rank = |p: f64| v[((p * n as f64).ceil() as usize).clamp(1, n) - 1];
    json!({
        "n": n,
        "p50": rank(0.50),
        "p95": rank(0.95),
        "max": v[n - 1],
        "mean": v.iter().sum::<f64>() / n as f64,
    })
}

fn p50(samples: &[f64]) -> f64 {
    stats(samples)["p50"].as_f64().unwrap_or(f64::NAN)
}

/// Opens the pack, building it first when it is missing, unreadable or (`check_age`) older
/// than this binary (`force`: build anyway).
fn open_pack(pack: &Path, osm: &Path, force: bool, check_age: bool) -> Res<(Pack, Option<f64>)> {
    let exe_time = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok();
    let fresh = std::fs::metadata(pack)
        .and_then(|m| m.modified())
        .is_ok_and(|t| !check_age || exe_time.is_none_or(|e| t >= e));
    if !force
        && fresh
        && let Ok(p) = Pack::open(pack)
    {
        return Ok((p, None));
    }
    if let Some(dir) = pack.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    eprintln!(
        "building the pack {} from {}...",
        pack.display(),
        osm.display()
    );
    let mut opts = BuildOptions::new(osm, pack);
    opts.name = Some("Andorra".into());
    opts.progress = false;
    let t = Instant::now();
    build_pack(&opts).map_err(|e| format!("building {}: {e}", pack.display()))?;
    let built_ms = ms_since(t);
    let p = Pack::open(pack).map_err(|e| format!("{}: {e}", pack.display()))?;
    Ok((p, Some(built_ms)))
}

/// The contraction order stored in the pack (table `road_ch`).
fn stored_order(pack: &Pack) -> Res<HierarchyOrder> {
    pack.hierarchy_order()
        .map_err(|e| format!("reading the stored order: {e}"))?
        .ok_or_else(|| "the pack has no stored contraction order".to_string())
}

/// Unit positions: random nodes of the car graph inside the pack's bounds, moved by up
/// to [`OFFSET_M`] in a random direction, kept when they snap.
fn random_points(
    graph: &RoadGraph,
    candidates: &[LatLon],
    bounds: [f64; 4],
    n: usize,
    rng: &mut Rng,
) -> Res<Vec<LatLon>> {
    let mut out = Vec::with_capacity(n);
    let mut tries = 0usize;
    while out.len() < n {
        tries += 1;
        if tries > 100 * n + 1000 {
            return Err(format!("only {} of {n} random points snapped", out.len()));
        }
        let base = candidates[rng.below(candidates.len())];
        let (d, bearing) = (OFFSET_M * rng.unit(), std::f64::consts::TAU * rng.unit());
        let lat = base.lat + d * bearing.cos() / 111_320.0;
        let lon = base.lon + d * bearing.sin() / (111_320.0 * base.lat.to_radians().cos());
        let [w, s, e, nn] = bounds;
        if !(s..=nn).contains(&lat) || !(w..=e).contains(&lon) {
            continue;
        }
        let p = LatLon { lat, lon };
        if graph.snap(p).is_ok() {
            out.push(p);
        }
    }
    Ok(out)
}

type Etas = Vec<Result<outpost_geo::routing::Eta, EtaProblem>>;

/// Compares a reference answer with the CH answer; returns (mismatches, max |Δ| seconds).
fn compare(ch: &Etas, other: &[Option<f64>]) -> (usize, f64) {
    let mut bad = 0;
    let mut max_d: f64 = 0.0;
    for (a, b) in ch.iter().zip(other) {
        match (a, b) {
            (Ok(x), Some(y)) => {
                let d = (x.eta_s - y).abs();
                max_d = max_d.max(d);
                if d > TOL_S || !d.is_finite() {
                    bad += 1;
                }
            }
            (Err(_), None) => {}
            _ => bad += 1,
        }
    }
    (bad + ch.len().abs_diff(other.len()), max_d)
}

fn eta_values(etas: &Etas) -> Vec<Option<f64>> {
    etas.iter()
        .map(|r| r.as_ref().ok().map(|e| e.eta_s))
        .collect()
}

/// One rank phase: per incident `etas_to` (what the console calls), `etas_to_ch` (one CH
/// query per unit) and `etas_to_dijkstra` (one backward Dijkstra over the whole graph, the
/// reference), interleaved so that the machine's load hits all three alike.
struct RankRun {
    etas_ms: Vec<f64>,
    ch_ms: Vec<f64>,
    dij_ms: Vec<f64>,
    /// `etas_to`'s answers per incident.
    answers: Vec<Etas>,
    /// `etas_to` answers that differ from the reference.
    mismatches: usize,
    /// `etas_to_ch` answers that differ from the reference.
    ch_mismatches: usize,
    max_diff_s: f64,
    no_eta: usize,
}

fn rank(router: &Router, units: &[LatLon], incidents: &[LatLon]) -> Res<RankRun> {
    let mut r = RankRun {
        etas_ms: vec![],
        ch_ms: vec![],
        dij_ms: vec![],
        answers: vec![],
        mismatches: 0,
        ch_mismatches: 0,
        max_diff_s: 0.0,
        no_eta: 0,
    };
    // Untimed warm-up queries (page faults, allocations).
    if let Some(&inc) = incidents.first() {
        black_box(router.etas_to(units, inc).map_err(|e| e.to_string())?);
        black_box(router.etas_to_ch(units, inc).map_err(|e| e.to_string())?);
    }
    for &inc in incidents {
        let t = Instant::now();
        let etas = router
            .etas_to(units, inc)
            .map_err(|e| format!("etas_to: {e}"))?;
        r.etas_ms.push(ms_since(t));
        let t = Instant::now();
        let ch = router
            .etas_to_ch(units, inc)
            .map_err(|e| format!("etas_to_ch: {e}"))?;
        r.ch_ms.push(ms_since(t));
        let t = Instant::now();
        let dij = router
            .etas_to_dijkstra(units, inc)
            .map_err(|e| format!("etas_to_dijkstra: {e}"))?;
        r.dij_ms.push(ms_since(t));
        let reference = eta_values(&dij);
        let (bad, d) = compare(&etas, &reference);
        let (ch_bad, ch_d) = compare(&ch, &reference);
        r.mismatches += bad;
        r.ch_mismatches += ch_bad;
        r.max_diff_s = r.max_diff_s.max(d).max(ch_d);
        r.no_eta += etas.iter().filter(|e| e.is_err()).count();
        black_box(ch);
        r.answers.push(black_box(etas));
    }
    Ok(r)
}

/// Reach times per segment, compared bounded vs unbounded: a segment reached within the
/// limit must have the same time unbounded, and one not reached must be beyond the limit.
fn reach_mismatches(bounded: &[Option<f64>], unbounded: &[Option<f64>], limit: f64) -> usize {
    bounded
        .iter()
        .zip(unbounded)
        .filter(|(b, u)| match (b, u) {
            (Some(b), Some(u)) => (b - u).abs() > TOL_S,
            (Some(_), None) => true,
            (None, Some(u)) => *u < limit - TOL_S,
            (None, None) => false,
        })
        .count()
        + bounded.len().abs_diff(unbounded.len())
}

fn square(centre: LatLon, half_m: f64) -> Vec<LatLon> {
    let dlat = half_m / 111_320.0;
    let dlon = half_m / (111_320.0 * centre.lat.to_radians().cos());
    vec![
        LatLon {
            lat: centre.lat - dlat,
            lon: centre.lon - dlon,
        },
        LatLon {
            lat: centre.lat - dlat,
            lon: centre.lon + dlon,
        },
        LatLon {
            lat: centre.lat + dlat,
            lon: centre.lon + dlon,
        },
        LatLon {
            lat: centre.lat + dlat,
            lon: centre.lon - dlon,
        },
    ]
}

/// The part of `line` between `from` and `to` (shares of its length).
fn middle(line: &[LatLon], from: f64, to: f64) -> Vec<LatLon> {
    let total: f64 = line.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
    let mut acc = 0.0;
    let mut out = vec![];
    for (i, p) in line.iter().enumerate() {
        if i > 0 {
            acc += line[i - 1].distance_m(p);
        }
        if acc >= from * total && acc <= to * total {
            out.push(*p);
        }
    }
    if out.len() > 500 {
        let step = out.len().div_ceil(500);
        out = out.into_iter().step_by(step).collect();
    }
    out
}

fn main() {
    match run() {
        Ok(v) => println!("{v}"),
        Err(e) => {
            eprintln!("routing_bench: {e}");
            std::process::exit(1);
        }
    }
}

fn run() -> Res<Value> {
    let args = parse_args()?;
    let mut problems: Vec<String> = vec![];
    let mut rng = Rng(args.seed);

    // ---- 1. load ---------------------------------------------------------------------------
    let mut attempt = 0;
    let (pack, built_ms, net, net_ms, graph, graph_ms, recontract_ms, mut router) = loop {
        attempt += 1;
        let (pack, built_ms) = open_pack(&args.pack, &args.osm, attempt > 1, args.check_age)?;
        let t = Instant::now();
        let net = pack
            .road_network()
            .map_err(|e| format!("road network: {e}"))?;
        let net_ms = ms_since(t);
        let t = Instant::now();
        let graph = RoadGraph::from_network(&net).map_err(|e| format!("road graph: {e}"))?;
        let graph_ms = ms_since(t);
        let graph = Arc::new(graph);
        let mut recontract_ms = vec![];
        let mut router = Err("no router".to_string());
        let order = stored_order(&pack);
        if let Ok(order) = &order {
            for _ in 0..args.reps.min(3) {
                let t = Instant::now();
                router = Router::new(graph.clone(), Some(order))
                    .map_err(|e| format!("the pack's stored order: {e}"));
                recontract_ms.push(ms_since(t));
                if router.is_err() {
                    break;
                }
            }
        }
        match (order, router) {
            (Ok(_), Ok(router)) => {
                break (
                    pack,
                    built_ms,
                    net,
                    net_ms,
                    graph,
                    graph_ms,
                    recontract_ms,
                    router,
                );
            }
            (Err(e), _) | (_, Err(e)) if built_ms.is_some() || attempt > 1 => return Err(e),
            (Err(e), _) | (_, Err(e)) => eprintln!("{e}; rebuilding the pack"),
        }
    };
    let full_prep_ms = if args.full_prep {
        eprintln!("full CH preparation (Router::new(None))...");
        let t = Instant::now();
        black_box(Router::new(graph.clone(), None).map_err(|e| format!("full preparation: {e}"))?);
        Some(ms_since(t))
    } else {
        None
    };
    let graph_info = json!({
        "nodes": graph.node_count(),
        "segments": graph.segment_count(),
        "km": graph.total_length_m() / 1000.0,
        "network_nodes": net.nodes.len(),
        "network_edges": net.edges.len(),
    });
    eprintln!("graph: {graph_info}");

    // ---- points ----------------------------------------------------------------------------
    let bounds = pack.meta().bounds;
    let candidates: Vec<LatLon> = (0..graph.node_count())
        .filter_map(|i| graph.node_position(i))
        .collect();
    if candidates.is_empty() {
        return Err("the car graph has no node".into());
    }
    let units = random_points(&graph, &candidates, bounds, args.units, &mut rng)?;
    let incidents = random_points(&graph, &candidates, bounds, args.incidents.max(1), &mut rng)?;
    let sources = random_points(&graph, &candidates, bounds, args.sources.max(1), &mut rng)?;
    let pair_ends = random_points(&graph, &candidates, bounds, 2 * args.pairs.max(1), &mut rng)?;

    // ---- 2. rank ---------------------------------------------------------------------------
    // Snapping alone (part of every ranking: etas_to snaps each unit).
    let mut snap_ms = vec![];
    for _ in 0..args.reps {
        let t = Instant::now();
        for &u in &units {
            black_box(graph.snap(u).map_err(|e| format!("snap: {e}"))?);
        }
        snap_ms.push(ms_since(t));
    }
    eprintln!(
        "rank: {} units x {} incidents",
        units.len(),
        incidents.len()
    );
    let open = rank(&router, &units, &incidents)?;
    if open.mismatches + open.ch_mismatches > 0 {
        problems.push(format!(
            "rank: {} etas_to and {} etas_to_ch ETAs differ from the full backward Dijkstra (max {:.2} s)",
            open.mismatches, open.ch_mismatches, open.max_diff_s
        ));
    }
    eprintln!(
        "rank: 500 x route_dijkstra for {} incidents",
        args.p2p_incidents
    );
    let mut p2p_rank_ms = vec![];
    let (mut p2p_rank_bad, mut p2p_rank_max_d) = (0usize, 0.0f64);
    for (k, &inc) in incidents.iter().take(args.p2p_incidents).enumerate() {
        let t = Instant::now();
        let mut got = Vec::with_capacity(units.len());
        for &u in &units {
            let r = router
                .route_dijkstra(u, inc)
                .map_err(|e| format!("route_dijkstra: {e}"))?;
            got.push(r.ok().map(|r| r.eta_s));
        }
        p2p_rank_ms.push(ms_since(t));
        let (bad, d) = compare(&open.answers[k], &got);
        p2p_rank_bad += bad;
        p2p_rank_max_d = p2p_rank_max_d.max(d);
    }
    if p2p_rank_bad > 0 {
        problems.push(format!(
            "rank: {p2p_rank_bad} etas_to ETAs differ from point-to-point Dijkstra (max {p2p_rank_max_d:.2} s)"
        ));
    }

    // ---- 3. point to point -----------------------------------------------------------------
    eprintln!("route: {} pairs", args.pairs);
    let (mut route_ms, mut route_dij_ms) = (vec![], vec![]);
    let (mut route_bad, mut route_max_d, mut route_km) = (0usize, 0.0f64, vec![]);
    for w in pair_ends.chunks_exact(2) {
        let t = Instant::now();
        let a = router
            .route(w[0], w[1])
            .map_err(|e| format!("route: {e}"))?;
        route_ms.push(ms_since(t));
        let t = Instant::now();
        let b = router
            .route_dijkstra(w[0], w[1])
            .map_err(|e| format!("route_dijkstra: {e}"))?;
        route_dij_ms.push(ms_since(t));
        match (&a, &b) {
            (Ok(x), Ok(y)) => {
                let d = (x.eta_s - y.eta_s).abs();
                route_max_d = route_max_d.max(d);
                route_bad += usize::from(d > TOL_S);
                route_km.push(x.distance_m / 1000.0);
            }
            (Err(_), Err(_)) => {}
            _ => route_bad += 1,
        }
    }
    if route_bad > 0 {
        problems.push(format!(
            "route: {route_bad} CH routes differ from Dijkstra (max {route_max_d:.2} s)"
        ));
    }

    // ---- 4. isochrone ----------------------------------------------------------------------
    eprintln!("reach: {} sources, 300 s and unbounded", sources.len());
    let one = |i: usize, p: LatLon| {
        vec![ReachSource {
            id: format!("s{i}"),
            at: p,
        }]
    };
    let (mut reach_ms, mut unb_ms, mut reach_bad) = (vec![], vec![], 0usize);
    let mut reach_segments = vec![];
    let mut all_reached = true;
    let mut reach_open = vec![];
    for (i, &p) in sources.iter().enumerate() {
        let src = one(i, p);
        let t = Instant::now();
        let r = router.reach(&src, LIMIT_S);
        reach_ms.push(ms_since(t));
        let t = Instant::now();
        let u = router.reach(&src, UNBOUNDED_S);
        unb_ms.push(ms_since(t));
        reach_bad += reach_mismatches(&r.segment_s, &u.segment_s, LIMIT_S);
        reach_segments.push(r.segment_s.iter().filter(|s| s.is_some()).count() as f64);
        all_reached &= u.segment_s.iter().all(Option::is_some) && u.skipped.is_empty();
        reach_open.push(r.segment_s);
    }
    if reach_bad > 0 {
        problems.push(format!(
            "reach: {reach_bad} segment times differ between the 300 s and the unbounded search"
        ));
    }
    if !all_reached {
        problems.push("reach: an unbounded search from one source left segments unreached (the graph should be one strongly connected component)".into());
    }
    let cov_sources: Vec<ReachSource> = sources
        .iter()
        .take(args.coverage_sources)
        .enumerate()
        .map(|(i, &p)| ReachSource {
            id: format!("post-{i}"),
            at: p,
        })
        .collect();
    let (mut cov_ms, mut cov_reach_ms) = (vec![], vec![]);
    let mut cov = None;
    for _ in 0..args.reps {
        let t = Instant::now();
        black_box(router.reach(&cov_sources, LIMIT_S));
        cov_reach_ms.push(ms_since(t));
        let t = Instant::now();
        cov = Some(router.coverage(&cov_sources));
        cov_ms.push(ms_since(t));
    }
    let cov = cov.ok_or("no coverage")?;
    let bands_lines: Vec<usize> = cov.bands.iter().map(Vec::len).collect();
    if !(cov.share[0] <= cov.share[1] && cov.share[1] <= cov.share[2] && cov.share[2] <= 1.0) {
        problems.push(format!("coverage shares not nested: {:?}", cov.share));
    }

    // ---- 5. closures -----------------------------------------------------------------------
    eprintln!("closures");
    let cg1 = router
        .route(CG1_WEST, CG1_EAST)
        .map_err(|e| format!("CG-1 route: {e}"))?
        .map_err(|e| format!("CG-1 route unreachable on the open network: {e:?}"))?;
    let line = middle(&cg1.line, 0.3, 0.7);
    if line.len() < 2 {
        return Err(format!(
            "the CG-1 route has too few points ({})",
            cg1.line.len()
        ));
    }
    let line_len_m: f64 = line.windows(2).map(|w| w[0].distance_m(&w[1])).sum();
    let closures = vec![
        (
            "cg1-tarragona".to_string(),
            ClosureShape::Line { points: line },
        ),
        (
            "escaldes-area".to_string(),
            ClosureShape::Area {
                ring: square(AREA_CENTRE, AREA_HALF_M),
            },
        ),
    ];
    let line_segments = router.closed_segments(&closures[0].1).len();
    let area_segments = router.closed_segments(&closures[1].1).len();
    let (mut set_ms, mut lift_ms) = (vec![], vec![]);
    let mut closed = 0;
    for i in 0..args.reps.min(3) {
        if i > 0 {
            let t = Instant::now();
            router.set_closures(&[]);
            lift_ms.push(ms_since(t));
        }
        let t = Instant::now();
        closed = router.set_closures(&closures);
        set_ms.push(ms_since(t));
    }
    if closed == 0 {
        problems.push("closures: set_closures closed no segment".into());
    }
    let cg1_after = router
        .route(CG1_WEST, CG1_EAST)
        .map_err(|e| format!("CG-1 route: {e}"))?;
    let cg1_after_s = cg1_after.as_ref().ok().map(|r| r.eta_s);
    if cg1_after_s.is_some_and(|s| s < cg1.eta_s - TOL_S) {
        problems.push("closures: the CG-1 route got faster with the CG-1 closed".into());
    }
    let closed_rank = rank(&router, &units, &incidents)?;
    if closed_rank.mismatches + closed_rank.ch_mismatches > 0 {
        problems.push(format!(
            "rank with closures: {} etas_to and {} etas_to_ch ETAs differ from the full backward Dijkstra (max {:.2} s)",
            closed_rank.mismatches, closed_rank.ch_mismatches, closed_rank.max_diff_s
        ));
    }
    let closed_ids: std::collections::HashSet<usize> = closures
        .iter()
        .flat_map(|(_, shape)| router.closed_segments(shape))
        .collect();
    let on_closed = |p: LatLon| graph.snap(p).is_ok_and(|s| closed_ids.contains(&s.segment));
    let units_on_closed: Vec<bool> = units.iter().map(|p| on_closed(*p)).collect();
    let (mut rose, mut fell, mut cut_off, mut same, mut pairs) =
        (0usize, 0usize, 0usize, 0usize, 0usize);
    let mut cut_off_on_closed = 0usize;
    let mut max_rise_s: f64 = 0.0;
    for ((before, after), inc) in open
        .answers
        .iter()
        .zip(&closed_rank.answers)
        .zip(&incidents)
    {
        let inc_closed = on_closed(*inc);
        for ((b, a), unit_closed) in before.iter().zip(after).zip(&units_on_closed) {
            let Ok(b) = b else { continue };
            pairs += 1;
            match a {
                Ok(a) if a.eta_s > b.eta_s + TOL_S => {
                    rose += 1;
                    max_rise_s = max_rise_s.max(a.eta_s - b.eta_s);
                }
                Ok(a) if a.eta_s < b.eta_s - TOL_S => fell += 1,
                Ok(_) => same += 1,
                Err(_) => {
                    cut_off += 1;
                    cut_off_on_closed += usize::from(inc_closed || *unit_closed);
                }
            }
        }
    }
    if fell > 0 {
        problems.push(format!(
            "closures: {fell} ETAs fell when closures were added"
        ));
    }
    let (mut creach_ms, mut creach_bad, mut creach_earlier) = (vec![], 0usize, 0usize);
    let mut creach_segments = vec![];
    for (i, &p) in sources.iter().enumerate() {
        let src = one(i, p);
        let t = Instant::now();
        let r = router.reach(&src, LIMIT_S);
        creach_ms.push(ms_since(t));
        if i < 20 {
            let u = router.reach(&src, UNBOUNDED_S);
            creach_bad += reach_mismatches(&r.segment_s, &u.segment_s, LIMIT_S);
        }
        creach_earlier += r
            .segment_s
            .iter()
            .zip(&reach_open[i])
            .filter(|(c, o)| match (c, o) {
                (Some(c), Some(o)) => *c < o - TOL_S,
                (Some(_), None) => true,
                _ => false,
            })
            .count();
        creach_segments.push(r.segment_s.iter().filter(|s| s.is_some()).count() as f64);
    }
    if creach_bad > 0 {
        problems.push(format!(
            "reach with closures: {creach_bad} segment times differ between 300 s and unbounded"
        ));
    }
    if creach_earlier > 0 {
        problems.push(format!(
            "reach with closures: {creach_earlier} segments reached earlier than on the open network"
        ));
    }
    let t = Instant::now();
    let ccov = router.coverage(&cov_sources);
    let ccov_ms = ms_since(t);

    let ratio = |a: &[f64], b: &[f64]| p50(b) / p50(a);
    Ok(json!({
        "smoke": args.units < 500,
        "pack_built_ms": built_ms,
        "graph": graph_info,
        "load": {
            "network_ms": net_ms,
            "graph_ms": graph_ms,
            "recontract_ms": stats(&recontract_ms),
            "full_prep_ms": full_prep_ms,
        },
        "rank": {
            "units": units.len(),
            "incidents": incidents.len(),
            "snap_ms": stats(&snap_ms),
            "etas_ms": stats(&open.etas_ms),
            "ch_ms": stats(&open.ch_ms),
            "dijkstra_ms": stats(&open.dij_ms),
            "p2p_incidents": p2p_rank_ms.len(),
            "p2p_dijkstra_ms": stats(&p2p_rank_ms),
            "ch_over_etas": ratio(&open.etas_ms, &open.ch_ms),
            "dijkstra_over_etas": ratio(&open.etas_ms, &open.dij_ms),
            "p2p_over_etas": ratio(&open.etas_ms, &p2p_rank_ms),
            "dijkstra_over_ch": ratio(&open.ch_ms, &open.dij_ms),
            "p2p_over_ch": ratio(&open.ch_ms, &p2p_rank_ms),
            "mismatches": open.mismatches,
            "ch_mismatches": open.ch_mismatches,
            "p2p_mismatches": p2p_rank_bad,
            "max_diff_s": open.max_diff_s.max(p2p_rank_max_d),
            "no_eta": open.no_eta,
        },
        "route": {
            "pairs": route_ms.len(),
            "ch_ms": stats(&route_ms),
            "dijkstra_ms": stats(&route_dij_ms),
            "ratio": ratio(&route_ms, &route_dij_ms),
            "mismatches": route_bad,
            "max_diff_s": route_max_d,
            "km": stats(&route_km),
        },
        "reach": {
            "sources": sources.len(),
            "ms": stats(&reach_ms),
            "unbounded_ms": stats(&unb_ms),
            "ratio": ratio(&reach_ms, &unb_ms),
            "segments_reached": stats(&reach_segments),
            "mismatches": reach_bad,
            "coverage_sources": cov_sources.len(),
            "coverage_reach_ms": stats(&cov_reach_ms),
            "coverage_ms": stats(&cov_ms),
            "coverage_share": cov.share,
            "coverage_reached_km": cov.reached_m.map(|m| m / 1000.0),
            "coverage_band_lines": bands_lines,
        },
        "closures": {
            "line_m": line_len_m,
            "line_segments": line_segments,
            "area_segments": area_segments,
            "closed_segments": closed,
            "set_ms": stats(&set_ms),
            "lift_ms": stats(&lift_ms),
            "cg1_open_s": cg1.eta_s,
            "cg1_closed_s": cg1_after_s,
            "rank_etas_ms": stats(&closed_rank.etas_ms),
            "rank_ch_ms": stats(&closed_rank.ch_ms),
            "rank_dijkstra_ms": stats(&closed_rank.dij_ms),
            "rank_mismatches": closed_rank.mismatches,
            "rank_ch_mismatches": closed_rank.ch_mismatches,
            "pairs": pairs,
            "rose": rose,
            "fell": fell,
            "cut_off": cut_off,
            "cut_off_on_closed": cut_off_on_closed,
            "units_on_closed": units_on_closed.iter().filter(|c| **c).count(),
            "incidents_on_closed": incidents.iter().filter(|p| on_closed(**p)).count(),
            "same": same,
            "max_rise_s": max_rise_s,
            "reach_ms": stats(&creach_ms),
            "reach_segments_reached": stats(&creach_segments),
            "reach_mismatches": creach_bad,
            "reach_earlier": creach_earlier,
            "coverage_ms": ccov_ms,
            "coverage_share": ccov.share,
        },
        "problems": problems,
    }))
}

//! Road routing on the Andorra pack: plausible ETAs, the contraction hierarchy against
//! plain Dijkstra, closures, reach and coverage, bad input.

use std::sync::{Arc, OnceLock};

use outpost_domain::LatLon;
use outpost_domain::road_closure::ClosureShape;
use outpost_geo::routing::{
    EtaProblem, HierarchyOrder, MAX_SNAP_M, OFFROAD_MPS, ReachSource, RoadGraph, Router,
    RoutingError, Unreachable, car_speed_kmh,
};

use super::andorra;

fn ll(lat: f64, lon: f64) -> LatLon {
    LatLon { lat, lon }
}

/// Andorra la Vella centre (Plaça del Poble area).
const ANDORRA_LA_VELLA: LatLon = LatLon {
    lat: 42.5063,
    lon: 1.5218,
};
/// Escaldes-Engordany centre.
const ESCALDES: LatLon = LatLon {
    lat: 42.5103,
    lon: 1.5386,
};
/// Pas de la Casa, at the French border.
const PAS_DE_LA_CASA: LatLon = LatLon {
    lat: 42.5424,
    lon: 1.7336,
};

/// The car graph and a router contracted with the pack's stored order.
fn router() -> &'static (Arc<RoadGraph>, Router) {
    static R: OnceLock<(Arc<RoadGraph>, Router)> = OnceLock::new();
    R.get_or_init(|| {
        let pack = &andorra().pack;
        let net = pack.road_network().expect("roads");
        let graph = Arc::new(RoadGraph::from_network(&net).expect("car graph"));
        let order = pack
            .hierarchy_order()
            .expect("read order")
            .expect("stored order");
        let router = Router::new(graph.clone(), Some(&order)).expect("router");
        (graph, router)
    })
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A random point near a random segment of the graph (up to ~50 m off the road).
fn random_point(g: &RoadGraph, rng: &mut Rng) -> LatLon {
    let s = &g.segments()[rng.below(g.segment_count())];
    let t = rng.unit();
    ll(
        s.a.lat + (s.b.lat - s.a.lat) * t + (rng.unit() - 0.5) * 0.0008,
        s.a.lon + (s.b.lon - s.a.lon) * t + (rng.unit() - 0.5) * 0.0008,
    )
}

/// Length of a line, metres.
fn line_m(line: &[LatLon]) -> f64 {
    line.windows(2).map(|w| w[0].distance_m(&w[1])).sum()
}

/// Smallest distance from `p` to a vertex of `line`, metres.
fn nearest_vertex_m(line: &[LatLon], p: LatLon) -> f64 {
    line.iter()
        .map(|q| q.distance_m(&p))
        .fold(f64::INFINITY, f64::min)
}

#[test]
fn andorra_etas_are_plausible_and_the_hierarchy_equals_dijkstra() {
    let (g, r) = router();
    // The graph: the largest strongly connected part of Andorra's drivable roads.
    assert!(g.node_count() > 10_000, "{}", g.node_count());
    assert!(
        (300_000.0..600_000.0).contains(&g.total_length_m()),
        "{}",
        g.total_length_m()
    );
    // The same pack gives the same graph, and the stored order fits it.
    let again =
        RoadGraph::from_network(&andorra().pack.road_network().expect("roads")).expect("graph");
    assert_eq!(again.node_count(), g.node_count());
    assert_eq!(again.segments(), g.segments());
    let stored = andorra()
        .pack
        .hierarchy_order()
        .expect("read")
        .expect("order");
    assert_eq!(stored.order.len(), g.node_count() + 1);

    // Andorra la Vella to Escaldes-Engordany: ~1.6 km through town, 2-3 minutes.
    let town = r
        .route(ANDORRA_LA_VELLA, ESCALDES)
        .expect("snap")
        .expect("route");
    assert!((90.0..300.0).contains(&town.eta_s), "{}", town.eta_s);
    assert!(
        (1_200.0..3_000.0).contains(&town.distance_m),
        "{}",
        town.distance_m
    );
    assert_eq!(town.line.first(), Some(&ANDORRA_LA_VELLA));
    assert_eq!(town.line.last(), Some(&ESCALDES));
    let drawn = line_m(&town.line);
    assert!(
        (drawn - town.distance_m).abs() < 0.01 * town.distance_m,
        "{drawn} vs {town:?}"
    );
    // ... to Pas de la Casa by the CG-2 (Encamp, Canillo, Soldeu, Port d'Envalira or its
    // tunnel): ~33 km, about half an hour at free flow.
    let pas = r
        .route(ANDORRA_LA_VELLA, PAS_DE_LA_CASA)
        .expect("snap")
        .expect("route");
    assert!((1_500.0..3_000.0).contains(&pas.eta_s), "{}", pas.eta_s);
    assert!(
        (27_000.0..40_000.0).contains(&pas.distance_m),
        "{}",
        pas.distance_m
    );
    for (name, p) in [
        ("Encamp", ll(42.5347, 1.5807)),
        ("Soldeu", ll(42.5766, 1.6672)),
    ] {
        let d = nearest_vertex_m(&pas.line, p);
        assert!(d < 600.0, "the route passes {d:.0} m from {name}");
    }
    // Farther is slower: Escaldes is on the way.
    let from_escaldes = r
        .route(ESCALDES, PAS_DE_LA_CASA)
        .expect("snap")
        .expect("route");
    assert!(from_escaldes.eta_s < pas.eta_s);

    // The hierarchy answers exactly what plain Dijkstra answers.
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..250 {
        let (a, b) = (random_point(g, &mut rng), random_point(g, &mut rng));
        let ch = r.route(a, b).expect("snap").expect("route");
        let dj = r.route_dijkstra(a, b).expect("snap").expect("route");
        assert!(
            (ch.eta_s - dj.eta_s).abs() < 1e-9,
            "{a:?} -> {b:?}: {} vs {}",
            ch.eta_s,
            dj.eta_s
        );
        // Equal-time paths may differ in length, but hardly.
        assert!(
            (ch.distance_m - dj.distance_m).abs() <= 0.05 * dj.distance_m + 1.0,
            "{ch:?} vs {dj:?}"
        );
        assert!(ch.eta_s >= a.distance_m(&b) / (130.0 / 3.6) - 1e-9);
    }
    for _ in 0..10 {
        let to = random_point(g, &mut rng);
        let from: Vec<LatLon> = (0..20).map(|_| random_point(g, &mut rng)).collect();
        // The ranking (bounded backward Dijkstra) is the full backward Dijkstra exactly,
        // and the per-source hierarchy queries give the same times.
        let ranked = r.etas_to(&from, to).expect("snap");
        let ch = r.etas_to_ch(&from, to).expect("snap");
        let dj = r.etas_to_dijkstra(&from, to).expect("snap");
        assert_eq!(ranked, dj);
        assert_eq!(ch.len(), 20);
        for ((c, d), p) in ch.iter().zip(&dj).zip(&from) {
            let (c, d) = (c.clone().expect("eta"), d.clone().expect("eta"));
            assert!((c.eta_s - d.eta_s).abs() < 1e-9, "{p:?}: {c:?} vs {d:?}");
            assert!(
                (c.distance_m - d.distance_m).abs() <= 0.05 * d.distance_m + 1.0,
                "{p:?}: {c:?} vs {d:?}"
            );
            let route = r.route(*p, to).expect("snap").expect("route");
            assert!((route.eta_s - c.eta_s).abs() < 1e-9);
        }
    }
}

/// A middle part of a route's line (its graph nodes from 40 % to 60 %).
fn middle(line: &[LatLon]) -> Vec<LatLon> {
    let n = line.len();
    line[(2 * n / 5).max(2)..=(3 * n / 5).max(3).min(n - 3)].to_vec()
}

#[test]
fn closures_never_speed_a_route_up_and_a_cut_valley_names_its_closure() {
    let (g, base) = router();
    let order = andorra()
        .pack
        .hierarchy_order()
        .expect("read")
        .expect("order");
    let mut r = Router::new(g.clone(), Some(&order)).expect("router");
    let mut rng = Rng(0xc105_ed00_0000_0042);
    let mut detours = 0;
    let mut cut = 0;
    let mut tried = 0;
    while tried < 40 {
        let (a, b) = (random_point(g, &mut rng), random_point(g, &mut rng));
        let open = base.route(a, b).expect("snap").expect("route");
        if open.line.len() < 8 {
            continue;
        }
        tried += 1;
        let shape = ClosureShape::Line {
            points: middle(&open.line),
        };
        let closed = r.set_closures(&[("c".to_string(), shape.clone())]);
        assert!(closed > 0, "the closure on the route closes something");
        // Independently of the mapping, the documented rule holds for every closed segment:
        // its midpoint lies within 12 m of the drawn line, or a midpoint of one of the
        // line's pieces lies within 12 m of it (a long road segment under a short piece);
        // 1 m of slack for rounding.
        let segs = g.segments();
        let pts = shape.points();
        let mid = |a: LatLon, b: LatLon| LatLon {
            lat: (a.lat + b.lat) / 2.0,
            lon: (a.lon + b.lon) / 2.0,
        };
        for i in r.closed_segments(&shape) {
            let s = &segs[i];
            let m = mid(s.a, s.b);
            let to_line = pts
                .windows(2)
                .map(|w| outpost_geo::point_segment_distance_m(m, w[0], w[1]))
                .fold(f64::INFINITY, f64::min);
            let piece_to_segment = pts
                .windows(2)
                .map(|w| outpost_geo::point_segment_distance_m(mid(w[0], w[1]), s.a, s.b))
                .fold(f64::INFINITY, f64::min);
            assert!(
                to_line.min(piece_to_segment) <= 13.0,
                "closed segment {i}: midpoint {to_line:.1} m from the line, nearest piece \
                 midpoint {piece_to_segment:.1} m from it"
            );
        }
        let with = r.route(a, b).expect("snap");
        let eta = |x: &Result<outpost_geo::routing::Route, Unreachable>| {
            x.as_ref().map(|r| r.eta_s).map_err(Clone::clone)
        };
        assert_eq!(eta(&with), eta(&r.route_dijkstra(a, b).expect("snap")));
        match with {
            Ok(route) => {
                assert!(route.eta_s >= open.eta_s - 1e-9, "{route:?} vs {open:?}");
                if route.eta_s > open.eta_s {
                    detours += 1;
                }
            }
            Err(Unreachable::ClosedOff { closures }) => {
                assert_eq!(closures, vec!["c".to_string()]);
                cut += 1;
            }
        }
    }
    // Andorra's valleys often have a single road, so many closures cut; some detour.
    assert!(detours >= 10 && cut >= 1, "{detours} detours, {cut} cut");

    // A dead-end valley road: the longest chain from a dead end (a node with one
    // neighbour) through nodes with two neighbours to the first junction. Its segment at
    // the junction is the only way in.
    let mut neighbours: Vec<Vec<usize>> = vec![Vec::new(); g.node_count()];
    for s in g.segments() {
        for (x, y) in [(s.from, s.to), (s.to, s.from)] {
            if !neighbours[x].contains(&y) {
                neighbours[x].push(y);
            }
        }
    }
    let mut best: Option<(f64, Vec<usize>)> = None;
    for end in 0..g.node_count() {
        if neighbours[end].len() != 1 {
            continue;
        }
        let mut chain = vec![end];
        let mut length = 0.0;
        let (mut prev, mut cur) = (end, neighbours[end][0]);
        loop {
            let pa = g.node_position(prev).expect("node");
            length += pa.distance_m(&g.node_position(cur).expect("node"));
            chain.push(cur);
            if neighbours[cur].len() != 2 {
                break;
            }
            let next = neighbours[cur]
                .iter()
                .copied()
                .find(|n| *n != prev)
                .expect("next");
            (prev, cur) = (cur, next);
        }
        if best.as_ref().is_none_or(|(l, _)| length > *l) {
            best = Some((length, chain));
        }
    }
    let (valley_m, chain) = best.expect("a dead end");
    assert!(valley_m > 1_000.0, "{valley_m}");
    let pos = |i: usize| g.node_position(i).expect("node");
    let (junction, first) = (chain[chain.len() - 1], chain[chain.len() - 2]);
    let valley_end = pos(chain[0]);
    let valley = ClosureShape::Line {
        points: vec![pos(junction), pos(first)],
    };
    // Another closure far away (Pas de la Casa) that cuts nothing here.
    let elsewhere = ClosureShape::Area {
        ring: vec![
            ll(PAS_DE_LA_CASA.lat - 0.001, PAS_DE_LA_CASA.lon - 0.001),
            ll(PAS_DE_LA_CASA.lat - 0.001, PAS_DE_LA_CASA.lon + 0.001),
            ll(PAS_DE_LA_CASA.lat + 0.001, PAS_DE_LA_CASA.lon + 0.001),
        ],
    };
    assert!(
        base.route(ANDORRA_LA_VELLA, valley_end)
            .expect("snap")
            .is_ok()
    );
    r.set_closures(&[
        ("valley".to_string(), valley),
        ("pas".to_string(), elsewhere),
    ]);
    let want = Err(Unreachable::ClosedOff {
        closures: vec!["valley".to_string()],
    });
    assert_eq!(r.route(ANDORRA_LA_VELLA, valley_end).expect("snap"), want);
    assert_eq!(
        r.route_dijkstra(ANDORRA_LA_VELLA, valley_end)
            .expect("snap"),
        want
    );
    let etas = r
        .etas_to(&[ESCALDES, valley_end], ANDORRA_LA_VELLA)
        .expect("snap");
    assert!(etas[0].is_ok());
    assert_eq!(
        etas[1],
        Err(EtaProblem::Unreachable(Unreachable::ClosedOff {
            closures: vec!["valley".to_string()]
        }))
    );
    assert_eq!(
        etas,
        r.etas_to_dijkstra(&[ESCALDES, valley_end], ANDORRA_LA_VELLA)
            .expect("snap")
    );
    let ch = r
        .etas_to_ch(&[ESCALDES, valley_end], ANDORRA_LA_VELLA)
        .expect("snap");
    assert_eq!(ch[1], etas[1]);
    assert_eq!(
        ch[0].clone().map(|e| e.eta_s),
        etas[0].clone().map(|e| e.eta_s)
    );
    // Lifting it restores the route, with the same ETA as before.
    r.set_closures(&[]);
    assert_eq!(
        r.route(ANDORRA_LA_VELLA, valley_end).expect("snap"),
        base.route(ANDORRA_LA_VELLA, valley_end).expect("snap")
    );
}

#[test]
fn reach_is_nested_and_coverage_grows_with_the_bands() {
    let (g, r) = router();
    let src = |id: &str, at: LatLon| ReachSource { id: id.into(), at };
    let sources = [src("alv", ANDORRA_LA_VELLA)];
    let reach: Vec<_> = [60.0, 180.0, 300.0]
        .iter()
        .map(|l| r.reach(&sources, *l))
        .collect();
    let count = |i: usize| reach[i].segment_s.iter().filter(|t| t.is_some()).count();
    assert!(
        0 < count(0) && count(0) < count(1) && count(1) < count(2),
        "{} {} {}",
        count(0),
        count(1),
        count(2)
    );
    for (small, big) in [(0, 1), (1, 2)] {
        for (s, (a, b)) in reach[small]
            .segment_s
            .iter()
            .zip(&reach[big].segment_s)
            .enumerate()
        {
            if let Some(a) = a {
                assert!(*a <= reach[small].limit_s);
                assert_eq!(Some(*a), *b, "segment {s}");
            }
        }
    }
    // A segment is reached when its last point is: from the road ETA to each end, the
    // meeting point of the two fronts on a two-way segment, the far end from the start
    // on a one-way one.
    let own = g.snap(ANDORRA_LA_VELLA).expect("snap").segment;
    let mut checked = 0;
    for (i, t) in reach[2].segment_s.iter().enumerate() {
        let Some(t) = t else { continue };
        if i == own || i % 7 != 0 || checked >= 25 {
            continue;
        }
        let s = &g.segments()[i];
        let etas = r.etas_to_dijkstra(&[ANDORRA_LA_VELLA], s.a).expect("snap");
        let ea = etas[0].clone().expect("eta").eta_s;
        let eb = r.etas_to_dijkstra(&[ANDORRA_LA_VELLA], s.b).expect("snap")[0]
            .clone()
            .expect("eta")
            .eta_s;
        let w = s.travel_s();
        let want = if s.oneway {
            ea + w
        } else {
            // (The ETAs to the ends are rounded per end, so the bounds may cross by a
            // tenth of a second: no `clamp`.)
            ((ea + eb + w) / 2.0).min(ea.min(eb) + w).max(ea.max(eb))
        };
        assert!(
            (t - want).abs() < 0.2,
            "segment {i}: {t} vs {want} ({ea} / {eb}, {w} s)"
        );
        checked += 1;
    }
    assert_eq!(checked, 25);

    let two = [src("alv", ANDORRA_LA_VELLA), src("pas", PAS_DE_LA_CASA)];
    let c = r.coverage(&two);
    assert!(
        c.share[0] > 0.0 && c.share[0] < c.share[1] && c.share[1] < c.share[2] && c.share[2] < 1.0,
        "{:?}",
        c.share
    );
    assert!((c.total_m - g.total_length_m()).abs() < 1e-6);
    for k in 0..3 {
        assert!((c.share[k] * c.total_m - c.reached_m[k]).abs() < 1e-6);
    }
    // Two posts cover more than one.
    let one = r.coverage(&sources);
    assert!(one.share[2] < c.share[2]);
    // Every segment is drawn in exactly one band, chained into lines and simplified
    // within a metre: the drawn length is the network's length.
    let drawn = |bands: &[Vec<Vec<[f64; 2]>>]| -> f64 {
        bands
            .iter()
            .flatten()
            .flat_map(|l| l.windows(2))
            .map(|w| ll(w[0][1], w[0][0]).distance_m(&ll(w[1][1], w[1][0])))
            .sum()
    };
    let all = drawn(&c.bands);
    assert!(
        (all - c.total_m).abs() < 0.001 * c.total_m,
        "{all} vs {}",
        c.total_m
    );
    let within_5 = drawn(&c.bands[..3]);
    assert!(
        (within_5 - c.reached_m[2]).abs() < 0.001 * c.total_m,
        "{within_5} vs {:?}",
        c.reached_m
    );
    let lines: usize = c.bands.iter().map(Vec::len).sum();
    let points: usize = c.bands.iter().flatten().map(Vec::len).sum();
    assert!(
        lines * 3 < g.segment_count() && points < g.segment_count(),
        "{lines} lines, {points} points for {} segments",
        g.segment_count()
    );
    for p in c.bands.iter().flatten().flatten() {
        assert_eq!(p[0], (p[0] * 1e6).round() / 1e6);
        assert!(
            (1.3..1.9).contains(&p[0]) && (42.3..42.7).contains(&p[1]),
            "{p:?}"
        );
    }
    // Nobody: all holes.
    let none = r.coverage(&[]);
    assert_eq!(none.share, [0.0; 3]);
    assert!(none.bands[..3].iter().all(Vec::is_empty));
    let holes = drawn(&none.bands[3..]);
    assert!(
        (holes - none.total_m).abs() < 0.001 * none.total_m,
        "{holes}"
    );
}

#[test]
fn bad_input_fragments_and_orders_are_errors_not_panics() {
    let (g, r) = router();
    for bad in [
        ll(f64::NAN, 1.52),
        ll(91.0, 1.52),
        ll(42.5, f64::INFINITY),
        ll(42.5, 181.0),
    ] {
        assert!(
            matches!(g.snap(bad), Err(RoutingError::InvalidPoint(_))),
            "{bad:?}"
        );
        assert!(matches!(
            r.route(bad, ESCALDES),
            Err(RoutingError::InvalidPoint(_))
        ));
        assert!(matches!(
            r.route(ESCALDES, bad),
            Err(RoutingError::InvalidPoint(_))
        ));
        assert!(r.etas_to(&[ESCALDES], bad).is_err());
        let etas = r
            .etas_to(&[bad, ESCALDES], ANDORRA_LA_VELLA)
            .expect("target snaps");
        assert!(matches!(etas[0], Err(EtaProblem::NoRoad(_))));
        assert!(etas[1].is_ok());
        assert!(g.road_line(&[ESCALDES, bad]).is_err());
    }
    // ~100 km east of Andorra, in the Mediterranean off Roses... well, Girona province.
    let far = ll(42.5063, 2.85);
    match r.route(ANDORRA_LA_VELLA, far) {
        Err(RoutingError::TooFarFromRoad {
            nearest_m, max_m, ..
        }) => {
            assert!(nearest_m > 80_000.0, "{nearest_m}");
            assert_eq!(max_m, MAX_SNAP_M);
        }
        other => panic!("{other:?}"),
    }
    let reach = r.reach(
        &[
            ReachSource {
                id: "far".into(),
                at: far,
            },
            ReachSource {
                id: "nan".into(),
                at: ll(f64::NAN, 0.0),
            },
        ],
        300.0,
    );
    assert_eq!(
        reach
            .skipped
            .iter()
            .map(|s| s.0.as_str())
            .collect::<Vec<_>>(),
        ["far", "nan"]
    );
    assert!(reach.segment_s.iter().all(Option::is_none));
    assert!(
        r.reach(
            &[ReachSource {
                id: "x".into(),
                at: ESCALDES
            }],
            f64::NAN
        )
        .segment_s
        .iter()
        .all(Option::is_none)
    );

    // A node of a drivable road outside the largest component (a one-way dead end, a
    // fragment cut off by access tags...) still gets an ETA: snapped to the main graph.
    let net = andorra().pack.road_network().expect("roads");
    let mut in_graph = vec![false; net.nodes.len()];
    for i in 0..g.node_count() {
        in_graph[g.network_node(i).expect("network node")] = true;
    }
    let outside: Vec<LatLon> = net
        .edges
        .iter()
        .filter(|e| e.car_access && car_speed_kmh(&e.class, e.maxspeed_kmh).is_some())
        .flat_map(|e| [e.from, e.to])
        .filter(|n| !in_graph[*n])
        .map(|n| net.nodes[n].at)
        .collect();
    assert!(outside.len() > 10, "{}", outside.len());
    let mut off_road = 0;
    for p in outside.iter().step_by((outside.len() / 20).max(1)) {
        let snap = g.snap(*p).expect("snaps to the main graph");
        let route = r.route(*p, ANDORRA_LA_VELLA).expect("snap").expect("route");
        assert!(route.eta_s >= snap.offroad_m / OFFROAD_MPS);
        if snap.offroad_m > 1.0 {
            off_road += 1;
        }
    }
    assert!(off_road > 0);

    // Orders that do not fit the graph.
    let stored = andorra()
        .pack
        .hierarchy_order()
        .expect("read")
        .expect("order");
    let mut short = stored.clone();
    short.order.pop();
    let mut twice = stored.clone();
    twice.order[1] = twice.order[0];
    for bad in [short, twice, HierarchyOrder { order: Vec::new() }] {
        assert!(matches!(
            Router::new(g.clone(), Some(&bad)),
            Err(RoutingError::BadOrder(_))
        ));
    }
    // A damaged or missing stored order in a copy of the pack.
    let dir = tempfile::tempdir().expect("temp dir");
    let copy = dir.path().join("copy.outpost");
    std::fs::copy(andorra().pack.path(), &copy).expect("copy the pack");
    let edit = |sql: &str| {
        rusqlite::Connection::open(&copy)
            .and_then(|c| c.execute_batch(sql))
            .expect("edit the copy");
    };
    edit("UPDATE road_ch SET value = x'0102030405' WHERE key = 'order'");
    let err = outpost_geo::Pack::open(&copy)
        .expect("opens")
        .hierarchy_order();
    assert!(
        matches!(&err, Err(outpost_geo::PackError::NotAPack { reason, .. }) if reason.contains("multiple of 4")),
        "{err:?}"
    );
    edit("UPDATE road_ch SET value = x'00000000' WHERE key = 'order'");
    let err = outpost_geo::Pack::open(&copy)
        .expect("opens")
        .hierarchy_order();
    assert!(
        matches!(err, Err(outpost_geo::PackError::NotAPack { .. })),
        "{err:?}"
    );
    edit("DELETE FROM road_ch");
    assert_eq!(
        outpost_geo::Pack::open(&copy)
            .expect("opens")
            .hierarchy_order()
            .expect("read"),
        None
    );
    // A pack of format 1 (before road_ch) is refused, saying why.
    edit("UPDATE metadata SET value = '1' WHERE name = 'outpost_pack_format'");
    let err = outpost_geo::Pack::open(&copy)
        .expect_err("format 1")
        .to_string();
    assert!(
        err.contains("pack format 1, this build reads format 2"),
        "{err}"
    );
    edit("UPDATE metadata SET value = '2' WHERE name = 'outpost_pack_format'");
    edit("DROP TABLE road_ch");
    assert!(outpost_geo::Pack::open(&copy).is_err());

    // The order of a different graph (fewer nodes) does not fit either.
    let mut smaller = net.clone();
    smaller.edges.retain(|e| e.class != "residential");
    let other = Arc::new(RoadGraph::from_network(&smaller).expect("graph"));
    assert!(other.node_count() < g.node_count());
    assert!(matches!(
        Router::new(other, Some(&stored)),
        Err(RoutingError::BadOrder(_))
    ));
}

#[test]
fn road_lines_follow_the_road() {
    let (g, _) = router();
    let line = g.road_line(&[ANDORRA_LA_VELLA, ESCALDES]).expect("line");
    let a = g.snap(ANDORRA_LA_VELLA).expect("snap").on_road;
    let b = g.snap(ESCALDES).expect("snap").on_road;
    assert_eq!(line.first(), Some(&a));
    assert_eq!(line.last(), Some(&b));
    let len = line_m(&line);
    assert!(
        len > a.distance_m(&b) && len < 3.0 * a.distance_m(&b),
        "{len}"
    );
    // Every vertex between the ends is a graph node.
    let nodes: Vec<LatLon> = (0..g.node_count())
        .filter_map(|i| g.node_position(i))
        .collect();
    for p in &line[1..line.len() - 1] {
        assert!(nodes.contains(p), "{p:?}");
    }
    assert!(g.road_line(&[]).expect("empty").is_empty());
    assert_eq!(g.road_line(&[ESCALDES]).expect("one"), vec![b]);
}

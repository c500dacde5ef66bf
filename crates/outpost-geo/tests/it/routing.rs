//! Road routing on the Andorra pack: plausible ETAs, the contraction hierarchy against
//! plain Dijkstra, closures, reach and coverage, bad input.

use std::sync::{Arc, OnceLock};

use outpost_domain::LatLon;

use outpost_geo::routing::{RoadGraph, Router};

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

#[test]
fn andorra_etas_are_plausible_and_the_hierarchy_equals_dijkstra() {
    let (g, r) = router();
    eprintln!(
        "graph: {} nodes, {} segments, {:.0} km",
        g.node_count(),
        g.segment_count(),
        g.total_length_m() / 1000.0
    );
    let town = r
        .route(ANDORRA_LA_VELLA, ESCALDES)
        .expect("snap")
        .expect("route");
    eprintln!("AlV->Escaldes {:.0} s {:.0} m", town.eta_s, town.distance_m);
    let pas = r
        .route(ANDORRA_LA_VELLA, PAS_DE_LA_CASA)
        .expect("snap")
        .expect("route");
    eprintln!("AlV->Pas {:.0} s {:.0} m", pas.eta_s, pas.distance_m);
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut max_diff: f64 = 0.0;
    for _ in 0..300 {
        let (a, b) = (random_point(g, &mut rng), random_point(g, &mut rng));
        let ch = r.route(a, b).expect("snap").expect("route");
        let dj = r.route_dijkstra(a, b).expect("snap").expect("route");
        max_diff = max_diff.max((ch.eta_s - dj.eta_s).abs());
        assert!(
            (ch.eta_s - dj.eta_s).abs() < 1e-6,
            "{a:?} -> {b:?}: {} vs {}",
            ch.eta_s,
            dj.eta_s
        );
    }
    eprintln!("max diff {max_diff}");
}

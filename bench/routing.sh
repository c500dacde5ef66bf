#!/usr/bin/env bash
# Routing benchmarks of issue 5 on the Andorra pack (data/osm/andorra.osm.pbf), one process:
#
#   1. load: the pack's road network read, the car graph built, the router contracted with the
#      pack's stored node order (what a console does at start and on every closure change) and
#      without it (full CH preparation, done once at pack build);
#   2. rank UNITS units for one incident (target < 5 ms) over INCIDENTS incidents:
#      Router::etas_to (one backward Dijkstra stopped once every unit is settled),
#      etas_to_ch (one contraction-hierarchy query per unit), etas_to_dijkstra (one backward
#      plain Dijkstra over the whole graph, the reference) and UNITS point-to-point Dijkstras
#      (route_dijkstra, for P2P_INCIDENTS incidents); every answer compared with the
#      reference (mismatches must be 0);
#   3. point-to-point route: Router::route vs route_dijkstra over PAIRS pairs;
#   4. 5-minute isochrone (target < 50 ms): Router::reach from one source, 300 s, over SOURCES
#      sources, against the same Dijkstra unbounded (the whole graph); the 1-3-5 coverage of
#      COVERAGE_SOURCES sources at once;
#   5. the same with closures active: the middle of Avinguda de Tarragona (CG-1, Andorra la
#      Vella) and a 300 m square in Escaldes-Engordany; set_closures time (re-contraction),
#      rank and isochrone again, ETAs compared with the open network (none may fall).
#
#   bench/routing.sh            # full counts, release build
#   bench/routing.sh --smoke    # tiny counts, debug build, seconds (the test suite runs this)
#   UNITS=2000 INCIDENTS=500 bench/routing.sh
#
# Units are random nodes of the car graph moved by up to 50 m (fixed seed SEED). The pack is
# target/bench/andorra.outpost (TARGET_DIR/bench), built there by `routing_bench`
# (crates/outpost-geo/examples/routing_bench.rs) when missing, unreadable, older than the
# binary (not checked with --smoke) or when its stored order does not fit the graph. Prints
# progress to stderr and the section to stdout (and to BENCH_OUT, see bench/lib.sh); exits
# non-zero when a CH answer differs from Dijkstra, an ETA fell with a closure, or reach times
# disagree.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init routing "$@"
if [ "$SMOKE" = 1 ]; then
  UNITS="${UNITS:-50}" INCIDENTS="${INCIDENTS:-5}" P2P_INCIDENTS="${P2P_INCIDENTS:-1}"
  PAIRS="${PAIRS:-5}" SOURCES="${SOURCES:-5}" COVERAGE_SOURCES="${COVERAGE_SOURCES:-5}" REPS="${REPS:-1}"
else
  UNITS="${UNITS:-500}" INCIDENTS="${INCIDENTS:-200}" P2P_INCIDENTS="${P2P_INCIDENTS:-5}"
  PAIRS="${PAIRS:-200}" SOURCES="${SOURCES:-200}" COVERAGE_SOURCES="${COVERAGE_SOURCES:-20}" REPS="${REPS:-5}"
fi
SEED="${SEED:-5}"
OSM="$ROOT/data/osm/andorra.osm.pbf"

bench_build -p outpost-geo --example routing_bench
bench_built
BENCH="$TARGET/$PROFILE/examples/routing_bench"
PACK="$TARGET/bench/andorra.outpost"

EXTRA=()
[ "$SMOKE" = 1 ] && EXTRA=(--no-full-prep)
R="$("$BENCH" --pack "$PACK" --osm "$OSM" --units "$UNITS" --incidents "$INCIDENTS" \
  --p2p-incidents "$P2P_INCIDENTS" --pairs "$PAIRS" --sources "$SOURCES" \
  --coverage-sources "$COVERAGE_SOURCES" --reps "$REPS" --seed "$SEED" "${EXTRA[@]}")"
echo "$R" | jq . >&2

# j EXPR: a jq expression over the result; r1/r2/r3 round to 1/2/3 decimals, pct a share.
j() {
  jq -r 'def r1: (. * 10 | round) / 10; def r2: (. * 100 | round) / 100;
         def r3: (. * 1000 | round) / 1000; def pct: (. * 1000 | round) / 10 | tostring + " %";
         def ms: "p50 " + (.p50 | r3 | tostring) + " ms, p95 " + (.p95 | r3 | tostring)
                 + " ms, max " + (.max | r3 | tostring) + " ms";
         '"$1" <<<"$R"
}
# met VALUE LIMIT: "met" when VALUE < LIMIT, else "gap".
met() { if [ "$(echo "$1 < $2" | bc -l)" = 1 ]; then echo met; else echo gap; fi; }
# target WHAT LIMIT_MS P95_MS: the bench_target line of a "p95 under LIMIT ms" target.
target() {
  local m; m="$(met "$3" "$2")"
  bench_target "$1" "< $2 ms (p95)" "p95 $(j "$3 | r3") ms" "$m" \
    "$([ "$m" = gap ] && echo "p95 over the limit in this run (load average at start $LOAD_BEFORE); see the notes")"
}
# ratio EXPR: "Dijkstra ÷ CH (p50) **X**" and which is faster, for a jq expression giving X.
ratio() {
  local x; x="$(j "$1 | r2")"
  if [ "$(echo "$x >= 1" | bc -l)" = 1 ]; then echo "**${x}×** (CH faster)"; else echo "**${x}×** (CH slower)"; fi
}

# row WHAT FIGURE TARGET [KNOBS]: a table row whose command is "KNOBS bench/routing.sh".
row() {
  local cmd="bench/routing.sh"
  [ "$SMOKE" = 1 ] && cmd="bench/routing.sh --smoke"
  bench_row "$1" "$2" "$3" "${4:+$4 }$cmd"
}
full="$(j '.load.full_prep_ms // "null"')"
[ "$full" = null ] && full_txt="skipped (smoke)" || full_txt="$(j '.load.full_prep_ms | r1') ms"
row "Load: road network read from the pack; car graph built (\`RoadGraph::from_network\`)" \
  "$(j '.load.network_ms | r1') ms; $(j '.load.graph_ms | r1') ms" ""
row "Load: \`Router::new\` with the pack's stored node order (re-contraction) vs without (full CH preparation)" \
  "**$(j '.load.recontract_ms.p50 | r1') ms** (p50 of $(j '.load.recontract_ms.n')) vs $full_txt" ""

u="$(j .rank.units)"; n="$(j .rank.incidents)"
et_p95="$(j .rank.etas_ms.p95)"
row "Rank $u units for one incident: \`etas_to\` (what the console calls: one backward Dijkstra from the incident, stopped once every unit's road segment is settled), $n incidents" \
  "**$(j '.rank.etas_ms | ms')** (snapping the $u units alone: p50 $(j '.rank.snap_ms.p50 | r3') ms)" \
  "< 5 ms (p95): **$(met "$et_p95" 5)**" "UNITS=$UNITS INCIDENTS=$INCIDENTS"
target "Rank $u units for one incident (\`etas_to\`)" 5 "$et_p95"
row "Rank $u units, one contraction-hierarchy query per unit (\`etas_to_ch\`)" \
  "$(j '.rank.ch_ms | ms'); time ÷ \`etas_to\`'s (p50) **$(j '.rank.ch_over_etas | r2')×**" ""
row "Rank $u units, one backward plain Dijkstra over the whole graph (\`etas_to_dijkstra\`, no early stop)" \
  "$(j '.rank.dijkstra_ms | ms'); time ÷ \`etas_to\`'s **$(j '.rank.dijkstra_over_etas | r2')×**; ÷ CH's **$(j '.rank.dijkstra_over_ch | r2')×** (p50)" ""
row "Rank $u units, $u point-to-point plain Dijkstras (\`route_dijkstra\`), incidents: $(j .rank.p2p_incidents)" \
  "$(j '.rank.p2p_dijkstra_ms | ms'); time ÷ \`etas_to\`'s **$(j '.rank.p2p_over_etas | r1')×**; ÷ CH's **$(j '.rank.p2p_over_ch | r1')×** (p50)" \
  "" "P2P_INCIDENTS=$P2P_INCIDENTS"
row "Answers agree with the full backward Dijkstra: \`etas_to\`, \`etas_to_ch\` ($(grouped "$(( u * n ))") ETAs each), and \`etas_to\` with $(grouped "$(( u * $(j .rank.p2p_incidents) ))") point-to-point Dijkstras (tolerance 0.25 s)" \
  "mismatches **$(j .rank.mismatches)**, **$(j .rank.ch_mismatches)**, **$(j .rank.p2p_mismatches)** (largest difference $(j '.rank.max_diff_s | r3') s)" "0"
row "Point-to-point route (\`route\`, CH, with its line) vs \`route_dijkstra\`, $(j .route.pairs) pairs (p50 $(j '.route.km.p50 | r1') km)" \
  "CH $(j '.route.ch_ms | ms'); Dijkstra $(j '.route.dijkstra_ms | ms'); Dijkstra ÷ CH (p50) $(ratio .route.ratio); mismatches $(j .route.mismatches)" \
  "" "PAIRS=$PAIRS"

re_p95="$(j .reach.ms.p95)"
row "5-minute isochrone: \`reach\` from one source, 300 s, $(j .reach.sources) sources (p50 $(j '.reach.segments_reached.p50 | round') of $(grouped "$(j .graph.segments)") segments reached)" \
  "**$(j '.reach.ms | ms')**" "< 50 ms (p95): **$(met "$re_p95" 50)**" "SOURCES=$SOURCES"
target "5-minute isochrone (\`reach\`, 300 s)" 50 "$re_p95"
row "The same Dijkstra unbounded (the whole graph)" \
  "$(j '.reach.unbounded_ms | ms'); unbounded ÷ 300 s (p50) **$(j '.reach.ratio | r1')×**; segment times disagree: $(j .reach.mismatches)" ""
row "1-3-5 coverage of $(j .reach.coverage_sources) sources at once (\`coverage\`: one multi-source reach + the three band lines)" \
  "$(j '.reach.coverage_ms | ms') (the reach alone p50 $(j '.reach.coverage_reach_ms.p50 | r3') ms); reached 1/3/5 min: $(j '.reach.coverage_share | map(pct) | join(" / ")') of $(j '.graph.km | round') km" \
  "" "COVERAGE_SOURCES=$COVERAGE_SOURCES"

row "Closures: a line on CG-1 (Avinguda de Tarragona, $(j '.closures.line_m | round') m) + a 300 m square in Escaldes-Engordany: \`set_closures\` (re-contraction)" \
  "**$(j '.closures.set_ms.p50 | r1') ms** (p50 of $(j .closures.set_ms.n)); $(j .closures.closed_segments) segments closed (line $(j .closures.line_segments), area $(j .closures.area_segments)); CG-1 end to end $(j '.closures.cg1_open_s | r1') s → $(j '.closures.cg1_closed_s // "unreachable" | if type == "number" then r1 else . end') s" ""
cr_p95="$(j .closures.rank_etas_ms.p95)"
row "Rank $u units with the closures active (\`etas_to\`), $n incidents" \
  "**$(j '.closures.rank_etas_ms | ms')**; CH per unit p50 $(j '.closures.rank_ch_ms.p50 | r3') ms, full backward Dijkstra p50 $(j '.closures.rank_dijkstra_ms.p50 | r3') ms; mismatches $(j .closures.rank_mismatches) and $(j .closures.rank_ch_mismatches); of $(grouped "$(j .closures.pairs)") unit–incident ETAs $(grouped "$(j .closures.rose)") rose (up to $(j '.closures.max_rise_s | r1') s), $(grouped "$(j .closures.cut_off)") cut off ($(grouped "$(j .closures.cut_off_on_closed)") of them with the unit or the incident on a closed segment; units on one: $(j .closures.units_on_closed), incidents: $(j .closures.incidents_on_closed)), **$(j .closures.fell) fell**" \
  "< 5 ms (p95): **$(met "$cr_p95" 5)**"
target "Rank $u units with two closures active (\`etas_to\`)" 5 "$cr_p95"
cre_p95="$(j .closures.reach_ms.p95)"
row "5-minute isochrone with the closures active, $(j .reach.sources) sources" \
  "**$(j '.closures.reach_ms | ms')**; segments reached earlier than without closures: $(j .closures.reach_earlier); 1-3-5 coverage of the $(j .reach.coverage_sources) sources $(j '.closures.coverage_share | map(pct) | join(" / ")')" \
  "< 50 ms (p95): **$(met "$cre_p95" 50)**"
target "5-minute isochrone with two closures active" 50 "$cre_p95"

bench_section "Routing and ETAs (issue 5)" \
  "Graph: the car graph of the Andorra pack (largest strongly connected component of the drivable roads): $(grouped "$(j .graph.nodes)") nodes, $(grouped "$(j .graph.segments)") segments, $(j '.graph.km | r1') km of road (the pack's whole road network: $(grouped "$(j .graph.network_nodes)") nodes, $(grouped "$(j .graph.network_edges)") edges). Units, incidents and sources: seed $SEED."
if [ "$(j '.problems | length')" != 0 ]; then
  echo "routing answers disagree:" >&2
  j '.problems[]' >&2
  exit 1
fi

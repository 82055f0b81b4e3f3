//! The load benchmark (`cargo bench --bench load`, docs/benchmarks.md): the in-memory API server
//! and a load driver acting as the rollout controller run here; the real `rollout-router run`
//! binary runs as a separate process. Phases: reaction latency at N = 1 next to the raw PATCH
//! round trip; start-up, a simultaneous step of every Rollout, requests per step and steady-state
//! writes at N = `--n`; start-up, a simultaneous step and peak RSS at N = `--large-n`. Prints one
//! table with each target and whether it was met.
//!
//! The pure parts on the hot path have criterion benches of their own: `benches/engine.rs`
//! (desired traffic) and `routers/{istio,nginx,alb}/benches/plan.rs` (planning).

mod fixtures;
mod process;
mod report;
mod tracker;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use serde_json::json;
use test_apiserver::{RequestRecord, ResourceType, ServerOptions, TestApiServer};

use fixtures::{Router, STEP_WEIGHTS, name, namespace};
use process::{ControllerProcess, RECONCILE_COUNT, RECONCILE_SECONDS, RECONCILES};
use report::{Report, Row, Stats, mib, ms};
use tracker::{Completion, Tracker};

#[derive(Debug, Parser)]
#[command(about = "rollout-router load benchmark (docs/benchmarks.md)")]
struct Args {
    /// Rollouts for the start-up, throughput, write-amplification and steady-state phase (0
    /// skips it).
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Rollouts for the large start-up / memory phase (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    large_n: usize,
    /// Single steps timed at N = 1 (rotating over one Istio, one NGINX, one ALB Rollout; 0 skips
    /// the phase).
    #[arg(long, default_value_t = 60)]
    latency_steps: usize,
    /// Raw PATCH round trips timed.
    #[arg(long, default_value_t = 300)]
    rtt_samples: usize,
    /// Smaller sizes for a smoke run (N = 200, large N = 2,000, 30 steps).
    #[arg(long)]
    quick: bool,
    /// Passed by `cargo bench`; without it (e.g. `cargo test --benches`) nothing runs.
    #[arg(long)]
    bench: bool,
}

/// Writes the driver sends at once when stepping every Rollout (Argo's default is 10 workers
/// per controller; several controllers and shards write at once in a large cluster).
const STEP_CONCURRENCY: usize = 64;
const RTT_WARM_UP: usize = 20;
/// How long a phase over `n` Rollouts may take before the run fails.
fn deadline(n: usize) -> Duration {
    Duration::from_secs(20) + Duration::from_millis(20 * n as u64)
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if !args.bench {
        println!("load benchmark: run it with `cargo bench --bench load` (skipped)");
        return Ok(());
    }
    if args.quick {
        args.n = 200;
        args.large_n = args.large_n.min(2_000);
        args.latency_steps = 30;
        args.rtt_samples = 100;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("rollout-router-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    println!(
        "rollout-router load benchmark: {} CPUs, Rollout JSON {} bytes, logs in {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        fixtures::rollout_bytes(),
        dir.display()
    );
    let mut report = Report::default();
    if args.latency_steps > 0 {
        latency_phase(&args, &dir, &mut report).await?;
    }
    if args.n > 0 {
        scale_phase(args.n, true, &dir, &mut report).await?;
    }
    if args.large_n > 0 {
        scale_phase(args.large_n, false, &dir, &mut report).await?;
    }
    println!();
    report.print();
    println!("\nwhole run: {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// A fresh API server with `n` seeded Rollouts, and a controller process started against it.
struct Cluster {
    server: TestApiServer,
    client: kube::Client,
    controller: ControllerProcess,
    seed_time: Duration,
}

impl Cluster {
    async fn start(n: usize, dir: &std::path::Path, label: &str) -> anyhow::Result<Self> {
        let server = TestApiServer::start_with(ServerOptions {
            // Every seed and write stays replayable: no watch is answered 410 Gone at scale.
            history_capacity: 1_000_000,
            // The collector rescans every object after each write; nothing is deleted here.
            garbage_collection: false,
            ..ServerOptions::default()
        })
        .await?;
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        for crd in [
            "crds/rollouts.argoproj.io.minimal.yaml",
            "crds/rollouttraffics.rollout-router.io.yaml",
        ] {
            server.register_crd_yaml(repo.join(crd))?;
        }
        for (kind, plural) in [
            ("VirtualService", "virtualservices"),
            ("DestinationRule", "destinationrules"),
        ] {
            server.register(
                ResourceType::namespaced("networking.istio.io/v1beta1", kind, plural).custom(),
            );
        }
        let seeding = Instant::now();
        fixtures::seed(&server, 0..n)?;
        let seed_time = seeding.elapsed();
        let kubeconfig = dir.join(format!("kubeconfig-{label}"));
        server.write_kubeconfig(&kubeconfig)?;
        let controller = ControllerProcess::spawn(
            &kubeconfig,
            dir.join(format!("controller-{label}.log")),
            &[],
        )?;
        let client = server.client()?;
        Ok(Self {
            server,
            client,
            controller,
            seed_time,
        })
    }

    fn rollouts(&self, i: usize) -> Api<DynamicObject> {
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Rollout"),
            "rollouts",
        );
        Api::namespaced_with(self.client.clone(), &namespace(i), &ar)
    }

    /// Moves Rollout `i` to step `index`, as the rollout controller does.
    async fn step(&self, i: usize, index: usize) -> anyhow::Result<Duration> {
        let t = Instant::now();
        self.rollouts(i)
            .patch_status(
                &name(i),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"currentStepIndex": index}})),
            )
            .await
            .with_context(|| format!("stepping {}", name(i)))?;
        Ok(t.elapsed())
    }

    /// Waits until every Rollout in `0..n` reports the weight of step 0 (start-up).
    async fn wait_started(&mut self, n: usize) -> anyhow::Result<(Duration, Duration)> {
        let ready = self.controller.wait_ready(deadline(n)).await?;
        let targets = (0..n).map(|i| (name(i), STEP_WEIGHTS[0])).collect();
        let mut tracker = Tracker::new(&self.server, targets, self.controller.started);
        // The log was empty of controller requests when the tracker was made only if the
        // controller had not started writing yet: replay from the beginning instead.
        tracker.rewind();
        if let Err(e) = tracker.wait(&self.server, deadline(n)).await {
            let first = tracker.pending().first().map(|s| (*s).clone());
            let status = first.as_deref().and_then(|name| self.traffic_status(name));
            anyhow::bail!("start-up: {e:#}; RolloutTraffic status of {first:?}: {status:#?}");
        }
        let last = tracker
            .done
            .values()
            .map(|c| c.reported_at)
            .max()
            .unwrap_or(self.controller.started);
        Ok((ready, last.duration_since(self.controller.started)))
    }

    /// The RolloutTraffic status of Rollout `name`, read from the store (for error messages).
    fn traffic_status(&self, name: &str) -> Option<serde_json::Value> {
        let i: usize = name.trim_start_matches("ro").parse().ok()?;
        let rt = self
            .server
            .get(
                "rollout-router.io/v1alpha1",
                "RolloutTraffic",
                Some(&namespace(i)),
                name,
            )
            .ok()??;
        rt.get("status").cloned()
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        self.controller.stop().await?;
        self.server.shutdown().await;
        Ok(())
    }
}

/// Raw round trip of a merge PATCH of an unrelated object, timed at the client.
async fn patch_rtt(cluster: &Cluster, samples: usize) -> anyhow::Result<Stats> {
    cluster
        .server
        .seed(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "rtt-probe", "namespace": "default"}, "data": {"n": "0"}}))?;
    let api: Api<ConfigMap> = Api::namespaced(cluster.client.clone(), "default");
    let mut times = Vec::with_capacity(samples);
    // The first round trips open connections and warm caches: not timed.
    for k in 0..samples + RTT_WARM_UP {
        let t = Instant::now();
        api.patch(
            "rtt-probe",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"n": k.to_string()}})),
        )
        .await?;
        if k >= RTT_WARM_UP {
            times.push(t.elapsed());
        }
    }
    Ok(Stats::of(times))
}

/// Requests of the controller in `records` (the driver's own Rollout and ConfigMap writes left
/// out), per verb and per `verb resource[/subresource]`.
fn controller_requests(
    records: &[RequestRecord],
) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut by_verb = BTreeMap::new();
    let mut by_resource = BTreeMap::new();
    for r in records {
        let Some(resource) = r.resource.as_deref() else {
            continue;
        };
        if matches!(resource, "rollouts" | "configmaps") && r.verb.is_write() {
            continue;
        }
        *by_verb.entry(r.verb.to_string()).or_insert(0) += 1;
        *by_resource
            .entry(format!("{} {}", r.verb, r.resource_path()))
            .or_insert(0) += 1;
    }
    (by_verb, by_resource)
}

fn per_step(counts: &BTreeMap<String, usize>, steps: usize) -> String {
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, v)| format!("{k} {:.2}", *v as f64 / steps.max(1) as f64))
        .collect();
    if parts.is_empty() {
        "none".to_owned()
    } else {
        parts.join(", ")
    }
}

/// N = 1: one step at a time, rotating over an Istio, an NGINX and an ALB Rollout.
async fn latency_phase(
    args: &Args,
    dir: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    const ROLLOUTS: usize = 3;
    println!(
        "[N=1] reaction latency: {} single steps",
        args.latency_steps
    );
    let mut cluster = Cluster::start(ROLLOUTS, dir, "n1").await?;
    cluster.wait_started(ROLLOUTS).await?;
    let rtt = patch_rtt(&cluster, args.rtt_samples).await?;
    let mut index = [0usize; ROLLOUTS];
    let mut routing = Vec::new();
    let mut reporting = Vec::new();
    let mut by_router: BTreeMap<Router, Vec<Duration>> = BTreeMap::new();
    let mut step_rtt = Vec::new();
    let reconcile_sum_before = cluster.controller.metric_sum(RECONCILE_SECONDS).await?;
    let reconcile_count_before = cluster.controller.metric_sum(RECONCILE_COUNT).await?;
    let mark = cluster.server.mark();
    for k in 0..args.latency_steps {
        let i = k % ROLLOUTS;
        index[i] = (index[i] + 1) % STEP_WEIGHTS.len();
        let targets = HashMap::from([(name(i), STEP_WEIGHTS[index[i]])]);
        let mut tracker = Tracker::new(&cluster.server, targets, Instant::now());
        step_rtt.push(cluster.step(i, index[i]).await?);
        tracker
            .wait(&cluster.server, Duration::from_secs(30))
            .await
            .with_context(|| format!("step {k}"))?;
        let c: Completion = tracker
            .done
            .remove(&name(i))
            .ok_or_else(|| anyhow::anyhow!("step {k}: no completion"))?;
        routing.push(c.routing_latency());
        reporting.push(c.report_latency());
        by_router
            .entry(Router::of(i))
            .or_default()
            .push(c.routing_latency());
    }
    let reconcile_sum_after = cluster.controller.metric_sum(RECONCILE_SECONDS).await?;
    let reconcile_count_after = cluster.controller.metric_sum(RECONCILE_COUNT).await?;
    let records = cluster.server.requests_since(mark);
    let (by_verb, by_resource) = controller_requests(&records);
    let routing = Stats::of(routing);
    let reporting = Stats::of(reporting);
    let step_rtt = Stats::of(step_rtt);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
    report.section("N = 1: reaction latency (one step at a time, Istio/NGINX/ALB in turn)");
    report.push(Row::new(
        "raw PATCH round trip (ConfigMap), p50 / p99 / max",
        rtt.summary(),
    ));
    report.push(Row::new(
        "driver's step PATCH round trip, p50 / p99 / max",
        step_rtt.summary(),
    ));
    report.push(Row::new(
        "step → last routing write, p50 / p99 / max",
        routing.summary(),
    ));
    report.push(Row::new(
        "step → RolloutTraffic status, p50 / p99 / max",
        reporting.summary(),
    ));
    for (router, times) in by_router {
        report.push(Row::new(
            &format!("  {} step → routing write, p50 / p99", router.name()),
            Stats::of(times).p50_p99(),
        ));
    }
    // The strict reading of the target: the slowest 1 % of reactions against a typical
    // (median) round trip. Tail against tail, and median against median, are shown too.
    let strict = ratio(routing.p99, rtt.p50);
    report.push(Row::target(
        "p99 reaction latency / p50 raw PATCH round trip",
        format!("{strict:.1}x"),
        "≤ 3x",
        strict <= 3.0,
    ));
    report.push(Row::new(
        "  p99 / p99, p50 / p50",
        format!(
            "{:.1}x, {:.1}x",
            ratio(routing.p99, rtt.p99),
            ratio(routing.p50, rtt.p50)
        ),
    ));
    report.push(Row::new(
        "mean reconcile duration (controller metric; includes its API calls)",
        ms(Duration::from_secs_f64(
            (reconcile_sum_after - reconcile_sum_before)
                / (reconcile_count_after - reconcile_count_before).max(1.0),
        )),
    ));
    report.push(Row::new(
        "controller requests per step, by verb",
        per_step(&by_verb, args.latency_steps),
    ));
    report.push(Row::new(
        "  by resource",
        per_step(&by_resource, args.latency_steps),
    ));
    cluster.shutdown().await
}

/// N Rollouts: start-up, a simultaneous step, requests per step, steady state, memory.
async fn scale_phase(
    n: usize,
    steady_state: bool,
    dir: &std::path::Path,
    report: &mut Report,
) -> anyhow::Result<()> {
    println!("[N={n}] seeding");
    let mut cluster = Cluster::start(n, dir, &format!("n{n}")).await?;
    println!(
        "[N={n}] seeded in {:.1} s; start-up",
        cluster.seed_time.as_secs_f64()
    );
    let (ready, started) = cluster.wait_started(n).await?;
    let (startup_hwm, _) = cluster.controller.memory_kib()?;
    let startup_cpu = cluster.controller.cpu_time()?;
    report.section(&format!("N = {n}"));
    report.push(Row::new(
        "start-up: process start → /ready (every watch listed)",
        ms(ready),
    ));
    let startup_row = format!(
        "{} (controller CPU {:.1} s)",
        ms(started),
        startup_cpu.as_secs_f64()
    );
    report.push(Row::new(
        "start-up: process start → every Rollout routed and reported (first install)",
        startup_row,
    ));

    // A simultaneous step of every Rollout: 10 % → 20 %.
    println!("[N={n}] stepping every Rollout at once");
    let reconciles_before = cluster.controller.metric_sum(RECONCILES).await?;
    let cpu_before = cluster.controller.cpu_time()?;
    let mark = cluster.server.mark();
    let targets = (0..n).map(|i| (name(i), STEP_WEIGHTS[1])).collect();
    let mut tracker = Tracker::new(&cluster.server, targets, Instant::now());
    let send = async {
        futures::stream::iter(0..n)
            .map(|i| cluster.step(i, 1))
            .buffer_unordered(STEP_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()
    };
    let (sent, waited) = tokio::join!(send, tracker.wait(&cluster.server, deadline(n)));
    sent?;
    waited.context("simultaneous step")?;
    let completions: Vec<&Completion> = tracker.done.values().collect();
    let first_step = completions.iter().map(|c| c.step_at).min();
    let last_step = completions.iter().map(|c| c.step_at).max();
    let last_routed = completions
        .iter()
        .map(|c| c.routed_at.unwrap_or(c.reported_at))
        .max();
    let last_reported = completions.iter().map(|c| c.reported_at).max();
    let (Some(first_step), Some(last_step), Some(last_routed), Some(last_reported)) =
        (first_step, last_step, last_routed, last_reported)
    else {
        anyhow::bail!("no completions");
    };
    let all_routed = last_routed.duration_since(first_step);
    let latency = Stats::of(completions.iter().map(|c| c.routing_latency()).collect());
    let step_cpu = cluster.controller.cpu_time()?.saturating_sub(cpu_before);
    let reconciles = cluster.controller.metric_sum(RECONCILES).await? - reconciles_before;
    report.push(Row::new(
        "simultaneous step: the driver's step writes spread over",
        ms(last_step.duration_since(first_step)),
    ));
    let routed_label = "simultaneous step: first step write → every Rollout routed";
    if n == 1000 {
        report.push(Row::target(
            routed_label,
            ms(all_routed),
            "≤ 2 s",
            all_routed <= Duration::from_secs(2),
        ));
    } else {
        report.push(Row::new(routed_label, ms(all_routed)));
    }
    report.push(Row::new(
        "simultaneous step: first step write → every RolloutTraffic status",
        ms(last_reported.duration_since(first_step)),
    ));
    report.push(Row::new(
        "simultaneous step: per-Rollout step → routing write, p50 / p99 / max",
        latency.summary(),
    ));
    report.push(Row::new(
        "simultaneous step: controller CPU, reconciles",
        format!(
            "{:.2} s CPU ({:.0} µs per Rollout), {reconciles:.0} reconciles",
            step_cpu.as_secs_f64(),
            step_cpu.as_secs_f64() * 1e6 / n as f64
        ),
    ));
    let records = cluster.server.requests_since(mark);
    let (by_verb, by_resource) = controller_requests(&records);
    report.push(Row::new(
        "requests per step, by verb (controller only)",
        per_step(&by_verb, n),
    ));
    report.push(Row::new("  by resource", per_step(&by_resource, n)));

    if steady_state {
        println!("[N={n}] steady state: touching every Rollout");
        let writes = steady_state_writes(&mut cluster, n).await?;
        report.push(Row::target(
            "steady state: writes after every Rollout is reconciled again (annotation touched)",
            writes.len().to_string(),
            "0",
            writes.is_empty(),
        ));
        for w in writes.iter().take(5) {
            println!("  steady-state write: {w}");
        }
    }

    let (hwm, rss) = cluster.controller.memory_kib()?;
    let rss_label = format!("controller peak RSS (VmHWM), current RSS at N = {n}");
    let value = format!(
        "{} peak ({} after start-up), {} now",
        mib(hwm),
        mib(startup_hwm),
        mib(rss)
    );
    if n >= 10_000 {
        report.push(Row::target(
            &rss_label,
            value,
            "< 100 MiB",
            hwm < 100 * 1024,
        ));
    } else {
        report.push(Row::new(&rss_label, value));
    }
    cluster.shutdown().await
}

/// Touches every Rollout (an annotation: a reconcile that must find everything in place) and
/// returns the controller's writes until every touch has been reconciled and the controller is
/// quiet again.
async fn steady_state_writes(cluster: &mut Cluster, n: usize) -> anyhow::Result<Vec<String>> {
    let before = cluster.controller.metric_sum(RECONCILES).await?;
    let mark = cluster.server.mark();
    futures::stream::iter(0..n)
        .map(|i| {
            let api = cluster.rollouts(i);
            async move {
                api.patch(
                    &name(i),
                    &PatchParams::default(),
                    &Patch::Merge(json!({"metadata": {"annotations": {"bench/touched": "1"}}})),
                )
                .await
            }
        })
        .buffer_unordered(STEP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    cluster
        .controller
        .wait_reconciles(before + n as f64, deadline(n))
        .await?;
    // Then until the counter stands still for half a second (queued reconciles drained).
    let mut last = cluster.controller.metric_sum(RECONCILES).await?;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = cluster.controller.metric_sum(RECONCILES).await?;
        if now == last {
            break;
        }
        last = now;
    }
    Ok(cluster
        .server
        .requests_since(mark)
        .into_iter()
        .filter(|r| r.verb.is_write() && r.resource.as_deref() != Some("rollouts"))
        .map(|r| r.to_string())
        .collect())
}

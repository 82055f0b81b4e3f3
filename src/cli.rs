//! The command line: `plan` and `render` (offline, the same code as the controller).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rollout_router_core::{DesiredTraffic, ObjectKey, RouteSpec, RouteState};
use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::input::Input;
use crate::rollout::DEFAULT_PLUGIN_KEY;
use crate::routers;
use crate::simulate::{self, PlanEntry, PlanOutput, Scenario};

/// Exit code for bad input (malformed manifests, invalid configuration, routing objects that do
/// not fit the configuration).
pub const EXIT_BAD_INPUT: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "rollout-router",
    version,
    about = "Make Istio, NGINX and AWS ALB routing follow Argo Rollouts canary steps"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a rollout from a fresh update to completion and print the traffic and the
    /// routing objects at every step (no cluster needed).
    Plan(PlanArgs),
    /// Run one reconcile at the Rollout's current status and print the routing objects and the
    /// weights read back from them (no cluster needed).
    Render(RenderArgs),
    /// Run the controller in a cluster.
    Run(Box<crate::controller::RunArgs>),
    /// Print the CRDs rollout-router serves or needs (RolloutTraffic; a minimal Rollout CRD for
    /// clusters without Argo Rollouts), or write them into a directory.
    Crds(crate::crds::CrdsArgs),
    /// Serve Argo Rollouts' traffic-router plugin protocol (started by Argo Rollouts, not by
    /// hand): Argo delegates routing to rollout-router and gates steps on its applied weights.
    ArgoPlugin(crate::argo_plugin::ArgoPluginArgs),
}

#[derive(Debug, clap::Args)]
pub struct InputArgs {
    /// Manifest files or directories (YAML or JSON): a Rollout, its routing objects, optionally
    /// its ReplicaSets and Experiment.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The `trafficRouting.plugins` key that opts a Rollout in.
    #[arg(long, env = "ROLLOUT_ROUTER_PLUGIN_KEY", default_value = DEFAULT_PLUGIN_KEY)]
    pub plugin_key: String,
}

#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Simulate an abort at this step index.
    #[arg(long, value_name = "STEP")]
    pub abort_at: Option<usize>,
    #[arg(long, short, value_enum, default_value_t = Output::Text)]
    pub output: Output,
}

#[derive(Debug, clap::Args)]
pub struct RenderArgs {
    #[command(flatten)]
    pub input: InputArgs,
    #[arg(long, short, value_enum, default_value_t = Output::Yaml)]
    pub output: Output,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Text,
    Yaml,
    Json,
}

impl Cli {
    pub fn run(self) -> ExitCode {
        let result = match self.command {
            Command::Plan(args) => plan(args),
            Command::Render(args) => render(args),
            Command::Run(args) => return crate::controller::main(*args),
            Command::Crds(args) => crate::crds::main(&args),
            Command::ArgoPlugin(args) => return crate::argo_plugin::main(args),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("error: {message}");
                ExitCode::from(EXIT_BAD_INPUT)
            }
        }
    }
}

fn scenario(input: &Input) -> Scenario<'_> {
    Scenario {
        rollout: &input.rollout,
        rollout_json: &input.rollout_json,
        replica_sets: &input.replica_sets,
        experiments: &input.experiments,
        objects: input.objects.clone(),
        routers: routers::as_dyn(&input.routers),
    }
}

fn plan(args: PlanArgs) -> Result<(), String> {
    let input =
        Input::load(&args.input.paths, &args.input.plugin_key).map_err(|e| e.to_string())?;
    let output = simulate::plan(scenario(&input), args.abort_at)
        .map_err(|e| format!("{}: {e}", input.source))?;
    match args.output {
        Output::Json => print_json(&output),
        Output::Yaml => print_yaml(&output),
        Output::Text => print(&plan_text(&input, &output)),
    }
}

fn render(args: RenderArgs) -> Result<(), String> {
    let input =
        Input::load(&args.input.paths, &args.input.plugin_key).map_err(|e| e.to_string())?;
    let output =
        simulate::render(scenario(&input)).map_err(|e| format!("{}: {e}", input.source))?;
    match args.output {
        Output::Json => print_json(&output),
        // Text is YAML for render: the objects are the point.
        Output::Yaml | Output::Text => print_yaml(&output),
    }
}

fn print(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| format!("writing output: {e}"))
}

fn print_json(value: &impl Serialize) -> Result<(), String> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| e.to_string())?;
    text.push('\n');
    print(&text)
}

fn print_yaml(value: &impl Serialize) -> Result<(), String> {
    // Through serde_json::Value so the YAML has exactly the JSON's shape.
    let value = serde_json::to_value(value).map_err(|e| e.to_string())?;
    print(&to_yaml(&value))
}

fn to_yaml(value: &Value) -> String {
    serde_saphyr::to_string(value).unwrap_or_else(|e| format!("# cannot render as YAML: {e}\n"))
}

/// One line describing the desired traffic of an entry.
fn traffic_line(d: &DesiredTraffic) -> String {
    let mut line = format!("canary {} / stable {}", d.canary.weight, d.stable.weight);
    if d.total != 100 {
        line.push_str(&format!(" (of {})", d.total));
    }
    for a in &d.additional {
        line.push_str(&format!(" / {} {}", a.service_name, a.weight));
    }
    line
}

fn routes_line(d: &DesiredTraffic) -> Option<String> {
    if d.managed_routes.is_empty() {
        return None;
    }
    let parts: Vec<String> = d
        .managed_routes
        .iter()
        .map(|r| match &r.state {
            RouteState::Active {
                route: RouteSpec::SetHeaderRoute(_),
            } => format!("{} header route active", r.name),
            RouteState::Active {
                route: RouteSpec::SetMirrorRoute(m),
            } => {
                format!(
                    "{} mirror route active ({}%)",
                    r.name,
                    m.percentage_or_default()
                )
            }
            RouteState::Absent => format!("{} absent", r.name),
            RouteState::Unchanged => format!("{} unchanged", r.name),
        })
        .collect();
    Some(parts.join(", "))
}

fn title(entry: &PlanEntry) -> String {
    let step = entry
        .step
        .as_ref()
        .and_then(|s| serde_json::from_value::<crate::rollout::CanaryStep>(s.clone()).ok())
        .map(|s| s.describe());
    match (entry.phase, step) {
        (simulate::Phase::Step, Some(step)) => format!("step {}: {step}", entry.index),
        (simulate::Phase::Initial, _) => {
            "update applied: new ReplicaSet, no pods available yet".into()
        }
        (simulate::Phase::Promoting, _) => "all steps done, not yet promoted".into(),
        (simulate::Phase::Completed, _) => "promoted: the new ReplicaSet is stable".into(),
        (simulate::Phase::Aborted, _) => "aborted".into(),
        (simulate::Phase::Step, None) => format!("step {}", entry.index),
    }
}

fn plan_text(input: &Input, output: &PlanOutput) -> String {
    let r = &input.rollout;
    let routers: Vec<&str> = input.routers.iter().map(|r| r.name()).collect();
    let mut text = format!(
        "Rollout {}/{} · routers: {} · {} steps\n",
        r.metadata.namespace,
        r.metadata.name,
        routers.join(", "),
        r.canary().map_or(0, |c| c.steps.len())
    );
    let mut previous: Vec<Value> = Vec::new();
    let mut first = true;
    for entry in &output.steps {
        let d = &entry.desired;
        text.push_str(&format!(
            "\n── {} ── case {:?}: {}\n",
            title(entry),
            d.case,
            traffic_line(d)
        ));
        if let Some(routes) = routes_line(d) {
            text.push_str(&format!("   routes: {routes}\n"));
        }
        if let Some(hold) = &d.hold {
            text.push_str(&format!("   hold ({:?}): {}\n", hold.reason, hold.message));
        }
        if let Some(waiting) = &entry.waiting {
            text.push_str(&format!("   waiting: {waiting}\n"));
        }
        let base = if first {
            // The objects as the user wrote them.
            let keys: Vec<ObjectKey> = entry.objects.iter().filter_map(ObjectKey::of).collect();
            keys.iter()
                .filter_map(|k| input.objects.get(k).cloned())
                .collect()
        } else {
            std::mem::take(&mut previous)
        };
        let diff = objects_diff(&base, &entry.objects);
        if diff.is_empty() {
            text.push_str("   (no change to routing objects)\n");
        } else {
            text.push_str(&diff);
        }
        previous = entry.objects.clone();
        first = false;
    }
    text
}

/// A unified diff per routing object that changed, was created or was deleted.
fn objects_diff(before: &[Value], after: &[Value]) -> String {
    let key = |v: &Value| ObjectKey::of(v);
    let mut out = String::new();
    for a in after {
        let old = before.iter().find(|b| key(b) == key(a));
        let (old_text, new_text) = (old.map(to_yaml).unwrap_or_default(), to_yaml(a));
        if old_text == new_text {
            continue;
        }
        let name = key(a).map(|k| k.to_string()).unwrap_or_default();
        let verb = if old.is_some() { "changed" } else { "created" };
        out.push_str(&format!("   {name} ({verb})\n"));
        out.push_str(&indent(&unified(&old_text, &new_text)));
    }
    for b in before {
        if !after.iter().any(|a| key(a) == key(b)) {
            let name = key(b).map(|k| k.to_string()).unwrap_or_default();
            out.push_str(&format!("   {name} (deleted)\n"));
        }
    }
    out
}

fn unified(old: &str, new: &str) -> String {
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(2)
        .to_string()
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("     {l}\n")).collect()
}

//! Benchmark of the service: trip event lateness with a few and with many
//! route actors, the memory, idle CPU and start-up of many route actors,
//! and the throughput of the LOGOUT → CHANGE_MAP pipeline against a bare
//! consume→produce loop. Prints one markdown table.
//!
//! `cargo bench --bench transports` runs the full sizes;
//! `cargo bench --bench transports -- --quick` runs shorter and smaller.
//! Each scenario runs in a fresh child process (this binary, started again
//! with `--scenario`), so memory and CPU read from /proc belong to that
//! scenario alone. The children print `RESULT name value` lines. The route
//! scenarios' in-process cluster runs in this parent process, outside the
//! measured one.

#[path = "support/configs.rs"]
mod configs;
#[path = "support/measure.rs"]
mod measure;
#[path = "support/pipeline_scenario.rs"]
mod pipeline_scenario;
#[path = "support/routes_scenario.rs"]
mod routes_scenario;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant as WallInstant;

use atlas_transports::clock::{Clock, SystemClock};

use configs::BURST_ROUTES_PER_TENANT;
use measure::RESULT_PREFIX;
use pipeline_scenario::PipelineOptions;
use routes_scenario::RoutesOptions;

/// Sizes of one run.
struct Mode {
    name: &'static str,
    /// Length of each route scenario's measured run.
    route_seconds: i64,
    /// Tenants of the many-routes scenario, each running every burst route.
    many_tenants: usize,
    /// LOGOUTs of the pipeline's throughput run. librdkafka's mock broker
    /// keeps at most 5 MB per partition, about 20,000 LOGOUTs, and the
    /// input topic has 3 partitions: larger backlogs lose their start.
    pipeline_backlog: u32,
    /// LOGOUTs of the pipeline's latency run, sent one by one.
    pipeline_paced: u32,
    pipeline_paced_per_second: u32,
}

const FULL: Mode = Mode {
    name: "full",
    route_seconds: 60,
    many_tenants: 10_000,
    pipeline_backlog: 50_000,
    pipeline_paced: 5_000,
    pipeline_paced_per_second: 1_000,
};

const QUICK: Mode = Mode {
    name: "quick",
    route_seconds: 20,
    many_tenants: 2_000,
    pipeline_backlog: 30_000,
    pipeline_paced: 2_000,
    pipeline_paced_per_second: 1_000,
};

type Results = HashMap<String, f64>;

fn main() {
    // Warnings and errors only: the service logs every trip event at info.
    env_logger::Builder::new()
        .parse_filters(&std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()))
        .format_timestamp_micros()
        .init();

    // Cargo adds `--bench` to the arguments; it is ignored like any flag
    // this binary does not know.
    let args: Vec<String> = std::env::args().skip(1).collect();
    match option(&args, "--scenario").as_deref() {
        Some("routes") => routes_scenario::run(RoutesOptions {
            bootstrap: required(&args, "--bootstrap"),
            config_dir: PathBuf::from(required(&args, "--config")),
            seconds: number(&args, "--seconds"),
            spawned_at: number(&args, "--spawned-at-ms"),
        }),
        Some("pipeline") => pipeline_scenario::run(PipelineOptions {
            config_dir: configs::shipped_config_dir(),
            backlog: number(&args, "--backlog"),
            paced: number(&args, "--paced"),
            paced_per_second: number(&args, "--paced-per-second"),
        }),
        Some(other) => panic!("unknown scenario `{other}`; expected routes or pipeline"),
        None => {
            let mode = if args.iter().any(|arg| arg == "--quick") {
                QUICK
            } else {
                FULL
            };
            run_all(&mode, option(&args, "--only").as_deref());
        }
    }
}

/// Runs every scenario, or only those listed in `only` (comma-separated
/// `twelve`, `many`, `pipeline`; the rows of the others read n/a), and
/// prints the table.
fn run_all(mode: &Mode, only: Option<&str>) {
    let started = WallInstant::now();
    let runs = |name: &str| only.is_none_or(|only| only.split(',').any(|part| part == name));
    let work_dir =
        std::env::temp_dir().join(format!("atlas-transports-bench-{}", std::process::id()));

    let mut twelve = Results::new();
    if runs("twelve") {
        let twelve_dir = work_dir.join("twelve-routes");
        configs::write_seconds_scale_shipped(&twelve_dir);
        twelve = run_routes_scenario(&twelve_dir, mode, "twelve seconds-scale routes");
    }

    let mut many = Results::new();
    if runs("many") {
        let many_dir = work_dir.join("many-routes");
        configs::write_burst_routes(&many_dir, mode.many_tenants);
        let many_label = format!(
            "{} route actors",
            mode.many_tenants * BURST_ROUTES_PER_TENANT
        );
        many = run_routes_scenario(&many_dir, mode, &many_label);
    }

    let mut pipeline = Results::new();
    if runs("pipeline") {
        pipeline = run_pipeline_scenario(mode);
    }
    let _ = fs::remove_dir_all(&work_dir);

    print_table(mode, &twelve, &many, &pipeline);
    eprintln!(
        "bench: {} mode finished in {:.0} s",
        mode.name,
        started.elapsed().as_secs_f64()
    );
}

fn run_pipeline_scenario(mode: &Mode) -> Results {
    eprintln!("bench: running the pipeline scenario");
    run_scenario(&[
        "--scenario".to_string(),
        "pipeline".to_string(),
        "--backlog".to_string(),
        mode.pipeline_backlog.to_string(),
        "--paced".to_string(),
        mode.pipeline_paced.to_string(),
        "--paced-per-second".to_string(),
        mode.pipeline_paced_per_second.to_string(),
    ])
}

fn run_routes_scenario(config_dir: &Path, mode: &Mode, label: &str) -> Results {
    eprintln!("bench: running the route scenario with {label}");
    let broker = routes_scenario::start_broker(config_dir);
    run_scenario(&[
        "--scenario".to_string(),
        "routes".to_string(),
        "--bootstrap".to_string(),
        broker.bootstrap_servers(),
        "--config".to_string(),
        config_dir.display().to_string(),
        "--seconds".to_string(),
        mode.route_seconds.to_string(),
        "--spawned-at-ms".to_string(),
        SystemClock.now().to_string(),
    ])
}

/// Runs this binary again with `args` and collects its result lines.
fn run_scenario(args: &[String]) -> Results {
    let executable = std::env::current_exe().expect("path of the bench binary");
    let output = Command::new(executable)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .expect("start the scenario process");
    assert!(
        output.status.success(),
        "scenario process {args:?} failed with {}",
        output.status
    );

    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            if words.next() != Some(RESULT_PREFIX) {
                return None;
            }
            let name = words.next()?.to_string();
            let value = words.next()?.parse().ok()?;
            Some((name, value))
        })
        .collect()
}

fn print_table(mode: &Mode, twelve: &Results, many: &Results, pipeline: &Results) {
    let value = |results: &Results, name: &str| results.get(name).copied().unwrap_or(f64::NAN);
    let many_actors = value(many, "route_actors");
    let twelve_actors = value(twelve, "route_actors");
    let per_route =
        |rss: &str| (value(many, rss) - value(twelve, rss)) / (many_actors - twelve_actors);

    let rows: Vec<(&str, f64, &str)> = vec![
        ("lateness_p50_ms", value(twelve, "lateness_p50_ms"), "ms"),
        ("lateness_p99_ms", value(twelve, "lateness_p99_ms"), "ms"),
        (
            "lateness_p99_many_routes_ms",
            value(many, "lateness_p99_ms"),
            "ms",
        ),
        ("bytes_per_route", per_route("rss_idle_bytes"), "bytes"),
        (
            "idle_cpu_percent_many_routes",
            value(many, "idle_cpu_percent"),
            "% of one core",
        ),
        ("startup_many_routes_ms", value(many, "startup_ms"), "ms"),
        (
            "pipeline_records_per_s",
            value(pipeline, "pipeline_records_per_s"),
            "records/s",
        ),
        ("pipeline_p99_ms", value(pipeline, "pipeline_p99_ms"), "ms"),
        (
            "raw_pipe_records_per_s",
            value(pipeline, "raw_pipe_records_per_s"),
            "records/s",
        ),
        (
            "pipeline_ratio",
            value(pipeline, "pipeline_records_per_s") / value(pipeline, "raw_pipe_records_per_s"),
            "",
        ),
        ("lateness_max_ms", value(twelve, "lateness_max_ms"), "ms"),
        (
            "lateness_batches",
            value(twelve, "lateness_batches"),
            "batches",
        ),
        (
            "lateness_p50_many_routes_ms",
            value(many, "lateness_p50_ms"),
            "ms",
        ),
        (
            "lateness_max_many_routes_ms",
            value(many, "lateness_max_ms"),
            "ms",
        ),
        (
            "lateness_batches_many_routes",
            value(many, "lateness_batches"),
            "batches",
        ),
        (
            "lateness_batches_many_routes_expected",
            value(many, "lateness_batches_expected"),
            "batches",
        ),
        ("many_routes", many_actors, "route actors"),
        (
            "bytes_per_route_at_startup",
            per_route("rss_startup_bytes"),
            "bytes",
        ),
        ("idle_seconds_many_routes", value(many, "idle_seconds"), "s"),
        ("pipeline_p50_ms", value(pipeline, "pipeline_p50_ms"), "ms"),
        (
            "pipeline_paced_rate",
            value(pipeline, "pipeline_paced_per_s"),
            "records/s",
        ),
        (
            "pipeline_records",
            value(pipeline, "pipeline_records"),
            "records",
        ),
    ];

    println!("transports bench, {} mode", mode.name);
    println!();
    println!("| measure | value | unit |");
    println!("|---|---|---|");
    for (name, value, unit) in rows {
        println!("| {name} | {} | {unit} |", format_value(value));
    }
}

/// Formats with three significant digits below 100, whole numbers above.
fn format_value(value: f64) -> String {
    if value.is_nan() {
        return "n/a".to_string();
    }
    if value.abs() >= 100.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else if value.abs() >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn option(args: &[String], name: &str) -> Option<String> {
    let position = args.iter().position(|arg| arg == name)?;
    args.get(position + 1).cloned()
}

fn required(args: &[String], name: &str) -> String {
    option(args, name).unwrap_or_else(|| panic!("missing {name} VALUE"))
}

fn number<T: std::str::FromStr>(args: &[String], name: &str) -> T {
    let text = required(args, name);
    text.parse()
        .unwrap_or_else(|_| panic!("invalid {name} `{text}`: expected a number"))
}
